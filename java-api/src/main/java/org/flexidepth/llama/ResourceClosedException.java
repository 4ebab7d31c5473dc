package org.flexidepth.llama;

/** A model, session or generation was used after it was closed. */
public class ResourceClosedException extends LlamaException {
    private static final long serialVersionUID = 1L;

    public ResourceClosedException(String message) {
        super(message);
    }

    public ResourceClosedException(String message, Throwable cause) {
        super(message, cause);
    }
}
