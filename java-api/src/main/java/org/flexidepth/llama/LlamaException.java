package org.flexidepth.llama;

/** Base of every exception the library throws for a failure in or around native code. */
public class LlamaException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates an exception.
     *
     * @param message what failed
     */
    public LlamaException(String message) {
        super(message);
    }

    /**
     * Creates an exception with the failure that caused it.
     *
     * @param message what failed
     * @param cause   the underlying failure, or {@code null} if none is known
     */
    public LlamaException(String message, Throwable cause) {
        super(message, cause);
    }
}
