package org.flexidepth.llama;

/** A model file is missing, unreadable, corrupt or of an unsupported architecture. */
public class ModelLoadException extends LlamaException {
    private static final long serialVersionUID = 1L;

    public ModelLoadException(String message) {
        super(message);
    }

    public ModelLoadException(String message, Throwable cause) {
        super(message, cause);
    }
}
