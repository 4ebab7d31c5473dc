package org.flexidepth.llama;

/** An option or argument is outside what the model or the library accepts. */
public class InvalidArgumentException extends LlamaException {
    private static final long serialVersionUID = 1L;

    public InvalidArgumentException(String message) {
        super(message);
    }

    public InvalidArgumentException(String message, Throwable cause) {
        super(message, cause);
    }
}
