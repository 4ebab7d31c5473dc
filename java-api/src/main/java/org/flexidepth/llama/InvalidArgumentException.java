package org.flexidepth.llama;

/** An option or argument is outside what the model or the library accepts. */
public class InvalidArgumentException extends LlamaException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates an exception.
     *
     * @param message which argument is wrong, and what is accepted
     */
    public InvalidArgumentException(String message) {
        super(message);
    }

    /**
     * Creates an exception with the failure that caused it.
     *
     * @param message which argument is wrong, and what is accepted
     * @param cause   the underlying failure, or {@code null} if none is known
     */
    public InvalidArgumentException(String message, Throwable cause) {
        super(message, cause);
    }
}
