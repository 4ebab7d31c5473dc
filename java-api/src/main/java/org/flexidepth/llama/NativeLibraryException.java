package org.flexidepth.llama;

/** The native libraries could not be found or loaded. */
public class NativeLibraryException extends LlamaException {
    private static final long serialVersionUID = 1L;

    public NativeLibraryException(String message) {
        super(message);
    }

    public NativeLibraryException(String message, Throwable cause) {
        super(message, cause);
    }
}
