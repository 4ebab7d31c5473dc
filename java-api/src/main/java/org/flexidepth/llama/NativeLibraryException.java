package org.flexidepth.llama;

/** The native libraries could not be found or loaded. */
public class NativeLibraryException extends LlamaException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates an exception.
     *
     * @param message which library failed to load, and where it was looked for
     */
    public NativeLibraryException(String message) {
        super(message);
    }

    /**
     * Creates an exception with the failure that caused it.
     *
     * @param message which library failed to load, and where it was looked for
     * @param cause   the underlying failure, or {@code null} if none is known
     */
    public NativeLibraryException(String message, Throwable cause) {
        super(message, cause);
    }
}
