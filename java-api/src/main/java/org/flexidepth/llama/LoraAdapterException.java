package org.flexidepth.llama;

/** A LoRA adapter could not be loaded or applied; {@link #reason()} says why. */
public class LoraAdapterException extends LlamaException {
    private static final long serialVersionUID = 1L;

    /** Why it failed. */
    public enum Reason {
        /** The file is missing or unreadable. */
        IO,
        /** Not GGUF, or not a LoRA adapter (a model, a FlexiDepth plug-in, another adapter type). */
        FORMAT,
        /** The adapter was made for another base model: another architecture, or tensors of other shapes. */
        WRONG_BASE
    }

    /** Why it failed; see {@link #reason()}. */
    private final Reason reason;

    /**
     * Creates an exception.
     *
     * @param reason  the kind of failure
     * @param message what failed, naming the file
     */
    public LoraAdapterException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    /** {@return the kind of failure} */
    public Reason reason() {
        return reason;
    }
}
