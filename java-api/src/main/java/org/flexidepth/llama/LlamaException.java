package org.flexidepth.llama;

/** Base of every exception the library throws for a failure in or around native code. */
public class LlamaException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public LlamaException(String message) {
        super(message);
    }

    public LlamaException(String message, Throwable cause) {
        super(message, cause);
    }
}
