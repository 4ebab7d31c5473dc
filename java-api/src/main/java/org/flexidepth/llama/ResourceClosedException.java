package org.flexidepth.llama;

/** A model, session or generation was used after it was closed. */
public class ResourceClosedException extends LlamaException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates an exception.
     *
     * @param message what was closed
     */
    public ResourceClosedException(String message) {
        super(message);
    }

    /**
     * Creates an exception with the failure that caused it.
     *
     * @param message what was closed
     * @param cause   the underlying failure, or {@code null} if none is known
     */
    public ResourceClosedException(String message, Throwable cause) {
        super(message, cause);
    }
}
