package org.flexidepth.llama;

/** A FlexiDepth plug-in could not be loaded, attached or trained; {@link #reason()} says why. */
public class FlexiDepthException extends LlamaException {
    private static final long serialVersionUID = 1L;

    /** The native status codes of {@code llama-flexidepth.h}. */
    public enum Reason {
        /** The file is missing or unreadable. */
        IO,
        /** Not GGUF, truncated, or not a FlexiDepth plug-in. */
        FORMAT,
        /** The base architecture is not supported (llama, qwen2 and qwen3 are). */
        ARCHITECTURE,
        /** The plug-in was built for another base model. */
        WRONG_BASE,
        /** A tensor is missing, misshapen or of a forbidden type. */
        TENSOR,
        /** An argument was out of range. */
        INVALID_ARGUMENT,
        /** Backend memory could not be allocated. */
        ALLOCATION,
        /** Training data is missing, malformed or too short. */
        DATA,
        /** Training was cancelled. */
        CANCELLED;

        static Reason of(int status) {
            return switch (status) {
                case -1 -> IO;
                case -2 -> FORMAT;
                case -3 -> ARCHITECTURE;
                case -4 -> WRONG_BASE;
                case -5 -> TENSOR;
                case -7 -> ALLOCATION;
                case -8 -> DATA;
                case -9 -> CANCELLED;
                default -> INVALID_ARGUMENT;
            };
        }
    }

    /** Why it failed; see {@link #reason()}. */
    private final Reason reason;

    /**
     * Creates an exception.
     *
     * @param reason  the kind of failure
     * @param message what failed, usually the native library's last error
     */
    public FlexiDepthException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    /** {@return the kind of failure, from the native status code} */
    public Reason reason() {
        return reason;
    }

    /** Throws for a failed status of the native FlexiDepth API, with its last error as the message. */
    static void throwIfFailed(int status) {
        if (status != 0) {
            throw new FlexiDepthException(Reason.of(status), org.flexidepth.llama.bindings.llama_h.llama_flexidepth_last_error().getString(0));
        }
    }
}
