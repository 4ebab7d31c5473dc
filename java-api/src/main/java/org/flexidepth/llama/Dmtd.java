package org.flexidepth.llama;

/**
 * Direct multi-token decoding for a session ({@code ../shared/dmtd/SPEC.md}): every {@code cycle}
 * generated tokens, one is decoded at full depth (a cycle head) and the others by the model's last
 * layers (its decoding layers) only. Meant for models fine-tuned for it, whose files say how many
 * layers think ({@code dmtd.thinking_layers}); a model trained at one cycle runs at a shorter one.
 * Immutable; start from {@link #cycle(int)}.
 *
 * @param cycle          tokens per cycle, {@code >= 1} (1: every token at full depth)
 * @param thinkingLayers the first layers that think, the others decode; 0: as the model's file says
 * @param phase          where cycles start
 * @param refill         whether a cycle head first runs the thinking layers for the tokens decoded
 *                       since the last one (the paper's method); without, heads decode alone and the
 *                       thinking layers see the prompts and the heads only: cheaper, lower quality
 */
public record Dmtd(int cycle, int thinkingLayers, Phase phase, boolean refill) {
    /** Where cycles start. */
    public enum Phase {
        /** The first token generated after a prompt is a cycle head (the authors' vLLM port). */
        PROMPT_END,
        /** Positions that are multiples of the cycle are heads (the authors' training code). */
        ABSOLUTE
    }

    /**
     * Checks the values.
     *
     * @throws InvalidArgumentException if the cycle is below 1, thinkingLayers negative or phase null
     */
    public Dmtd {
        if (cycle < 1) {
            throw new InvalidArgumentException("the DMTD cycle must be >= 1, was " + cycle);
        }
        if (thinkingLayers < 0) {
            throw new InvalidArgumentException("thinkingLayers must be >= 0 (0: the model's), was " + thinkingLayers);
        }
        if (phase == null) {
            throw new InvalidArgumentException("the phase must not be null");
        }
    }

    /**
     * {@return cycles of {@code tau} tokens, with the model's split, starting at the end of each prompt}
     *
     * @param tau tokens per cycle, {@code >= 1}
     */
    public static Dmtd cycle(int tau) {
        return new Dmtd(tau, 0, Phase.PROMPT_END, true);
    }

    /**
     * {@return these options with another split}
     *
     * @param layers the first layers that think, 1 to the model's layers - 1; 0: the model's
     */
    public Dmtd withThinkingLayers(int layers) {
        return new Dmtd(cycle, layers, phase, refill);
    }

    /**
     * {@return these options with cycles phased otherwise}
     *
     * @param phase where cycles start
     */
    public Dmtd withPhase(Phase phase) {
        return new Dmtd(cycle, thinkingLayers, phase, refill);
    }

    /**
     * {@return these options with heads that refill or not (SPEC section 4, "no refill")}
     *
     * @param refill whether a cycle head first runs the thinking layers for the tokens decoded since the last one
     */
    public Dmtd withRefill(boolean refill) {
        return new Dmtd(cycle, thinkingLayers, phase, refill);
    }
}
