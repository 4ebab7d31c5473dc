package org.flexidepth.llama;

/** {@code llama_decode} failed; {@link #code()} is its return value. */
public class DecodeException extends LlamaException {
    private static final long serialVersionUID = 1L;
    private final int code;

    public DecodeException(int code, String message) {
        super(message + " (llama_decode returned " + code + ")");
        this.code = code;
    }

    /** The native error code: negative for errors, 2 when aborted. */
    public int code() {
        return code;
    }
}
