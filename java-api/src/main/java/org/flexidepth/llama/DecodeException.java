package org.flexidepth.llama;

/**
 * Evaluating tokens failed: {@code llama_decode} returned an error ({@link #code()}), or it
 * returned logits that are not finite. The session's cache is left as it was before the call.
 */
public class DecodeException extends LlamaException {
    private static final long serialVersionUID = 1L;
    /** The native error code; see {@link #code()}. */
    private final int code;

    /**
     * Creates an exception for an error code of {@code llama_decode}.
     *
     * @param code    what {@code llama_decode} returned: negative for errors, 2 when aborted
     * @param message what was being evaluated; the code is appended to it
     */
    public DecodeException(int code, String message) {
        super(message + " (llama_decode returned " + code + ")");
        this.code = code;
    }

    /**
     * The decode itself succeeded but what it computed is unusable (NaN or infinite logits).
     * {@link #code()} is then 0.
     *
     * @param message what was found, and where
     */
    public DecodeException(String message) {
        super(message);
        this.code = 0;
    }

    /** {@return the native error code: negative for errors, 2 when aborted, 0 when the logits were not finite} */
    public int code() {
        return code;
    }
}
