package org.flexidepth.llama;

/** The tokens do not fit in the session's context window. */
public class ContextFullException extends LlamaException {
    private static final long serialVersionUID = 1L;

    public ContextFullException(String message) {
        super(message);
    }

    public ContextFullException(String message, Throwable cause) {
        super(message, cause);
    }
}
