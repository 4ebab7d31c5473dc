package org.flexidepth.llama;

/** A model file is missing, unreadable, corrupt or of an unsupported architecture. */
public class ModelLoadException extends LlamaException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates an exception.
     *
     * @param message what went wrong, naming the file
     */
    public ModelLoadException(String message) {
        super(message);
    }

    /**
     * Creates an exception with the failure that caused it.
     *
     * @param message what went wrong, naming the file
     * @param cause   the underlying failure, or {@code null} if none is known
     */
    public ModelLoadException(String message, Throwable cause) {
        super(message, cause);
    }
}
