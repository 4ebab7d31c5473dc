package org.flexidepth.llama;

/**
 * What a token that skips a routed layer leaves out, as a plug-in file declares it
 * ({@code flexidepth.skip}; native/README.md gives each family's formula).
 */
public enum SkipFamily {
    /** FlexiDepth: attention and FFN; the token's K/V are still written and attended; an adapter replaces the FFN. */
    LAYER,
    /** As {@link #LAYER}, but no later token attends to the skipped token's K/V in that layer. */
    LAYER_NO_KV,
    /** Attention only (MindSkip): a running token adds {@code g} times the attention output; the FFN always runs; no adapter. */
    ATTENTION,
    /** FFN only: attention always runs; an adapter replaces the FFN. */
    FFN;

    /** {@return whether an adapter replaces the FFN for skipped tokens} */
    public boolean hasAdapter() {
        return this != ATTENTION;
    }

    /**
     * {@return whether the family's skipped tokens still write K/V that later tokens attend to};
     * state snapshots of a session need it ({@link Session#saveState()})
     */
    public boolean keepsSkippedKv() {
        return this != LAYER_NO_KV;
    }

    /** The native value (llama_flexidepth_skip). */
    int nativeValue() {
        return ordinal();
    }

    static SkipFamily ofNative(int value) {
        if (value < 0 || value >= values().length) {
            throw new IllegalArgumentException("unknown skip family " + value);
        }
        return values()[value];
    }
}
