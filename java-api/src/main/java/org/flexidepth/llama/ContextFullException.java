package org.flexidepth.llama;

/** The tokens do not fit in the session's context window. */
public class ContextFullException extends LlamaException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates an exception.
     *
     * @param message how many tokens were needed and how many fit
     */
    public ContextFullException(String message) {
        super(message);
    }

    /**
     * Creates an exception with the failure that caused it.
     *
     * @param message how many tokens were needed and how many fit
     * @param cause   the underlying failure, or {@code null} if none is known
     */
    public ContextFullException(String message, Throwable cause) {
        super(message, cause);
    }
}
