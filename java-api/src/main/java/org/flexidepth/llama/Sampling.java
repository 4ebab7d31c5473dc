package org.flexidepth.llama;

import java.util.Optional;

/**
 * How the next token is chosen. Immutable; {@link #greedy()} or {@link #builder()}.
 * Stages run in llama.cpp's usual order: grammar, repetition penalties, top-k, top-p, min-p,
 * temperature, then a seeded random draw (or argmax when temperature is 0).
 *
 * @param temperature      0 for greedy (argmax), otherwise the softmax temperature
 * @param topK             keep the k most likely tokens, 0 to disable
 * @param topP             keep the smallest set with this cumulative probability, 1 to disable
 * @param minP             drop tokens below this fraction of the top probability, 0 to disable
 * @param repeatPenalty    divide logits of recently seen tokens by this, 1 to disable
 * @param repeatLastN      how many recent tokens the penalties look at
 * @param frequencyPenalty subtract this times the count of a recent token, 0 to disable
 * @param presencePenalty  subtract this once for any recent token, 0 to disable
 * @param seed             seed of the random draw
 * @param grammar          a GBNF grammar that the output must follow (root rule {@code root})
 */
public record Sampling(float temperature, int topK, float topP, float minP, float repeatPenalty, int repeatLastN,
                       float frequencyPenalty, float presencePenalty, long seed, Optional<String> grammar) {

    /**
     * Checks the options; a {@code null} grammar means none.
     *
     * @throws InvalidArgumentException if a value is outside the range its component describes, the
     *         seed does not fit in 32 unsigned bits, or the grammar is blank
     */
    public Sampling {
        if (!(temperature >= 0) || !Float.isFinite(temperature)) {
            throw new InvalidArgumentException("temperature must be finite and >= 0, was " + temperature);
        }
        if (topK < 0) {
            throw new InvalidArgumentException("topK must be >= 0, was " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new InvalidArgumentException("topP must be in (0, 1], was " + topP);
        }
        if (!(minP >= 0 && minP < 1)) {
            throw new InvalidArgumentException("minP must be in [0, 1), was " + minP);
        }
        if (!(repeatPenalty > 0) || !Float.isFinite(repeatPenalty)) {
            throw new InvalidArgumentException("repeatPenalty must be finite and > 0, was " + repeatPenalty);
        }
        if (repeatLastN < 0) {
            throw new InvalidArgumentException("repeatLastN must be >= 0, was " + repeatLastN);
        }
        if (!Float.isFinite(frequencyPenalty) || !Float.isFinite(presencePenalty)) {
            throw new InvalidArgumentException("penalties must be finite");
        }
        if (seed < 0 || seed > 0xFFFFFFFFL) {
            throw new InvalidArgumentException("seed must fit in 32 unsigned bits, was " + seed);
        }
        grammar = grammar == null ? Optional.empty() : grammar;
        // llama.cpp treats an empty grammar as none at all, which would silently drop a constraint
        // the caller asked for (a grammar file that came out empty, say)
        if (grammar.isPresent() && grammar.get().isBlank()) {
            throw new InvalidArgumentException("the grammar is empty; a GBNF grammar needs at least a root rule (leave it unset for none)");
        }
        grammar.ifPresent(g -> TextChecks.requireWellFormed(g, "the grammar"));
    }

    /** {@return always the most likely token: deterministic} */
    public static Sampling greedy() {
        return builder().temperature(0).build();
    }

    /**
     * {@return a builder with llama.cpp's usual defaults: temperature 0.8, top-k 40, top-p 0.95, min-p
     * 0.05, no penalties, seed 42}
     */
    public static Builder builder() {
        return new Builder();
    }

    /** {@return whether the temperature is 0, so that the most likely token is always chosen} */
    public boolean isGreedy() {
        return temperature == 0;
    }

    /** {@return a builder starting from these options} */
    public Builder toBuilder() {
        Builder b = new Builder().temperature(temperature).topK(topK).topP(topP).minP(minP).repeatPenalty(repeatPenalty)
                .repeatLastN(repeatLastN).frequencyPenalty(frequencyPenalty).presencePenalty(presencePenalty).seed(seed);
        grammar.ifPresent(b::grammar);
        return b;
    }

    /** Builds {@link Sampling}; each setter says its default. Not thread-safe. */
    public static final class Builder {
        private float temperature = 0.8f;
        private int topK = 40;
        private float topP = 0.95f;
        private float minP = 0.05f;
        private float repeatPenalty = 1.0f;
        private int repeatLastN = 64;
        private float frequencyPenalty = 0;
        private float presencePenalty = 0;
        private long seed = 42;
        private String grammar;

        private Builder() {
        }

        /**
         * Sets the softmax temperature; 0 chooses the most likely token, and top-k, top-p and min-p are then unused.
         *
         * @param v the temperature, finite and {@code >= 0}; above 1 flattens the distribution; default 0.8
         * @return this builder
         */
        public Builder temperature(float v) { temperature = v; return this; }

        /**
         * Sets top-k: keep only the {@code v} most likely tokens.
         *
         * @param v the number of tokens, {@code >= 0}; 0 to disable; default 40
         * @return this builder
         */
        public Builder topK(int v) { topK = v; return this; }

        /**
         * Sets top-p (nucleus): keep the smallest set of tokens whose probabilities add up to {@code v}.
         *
         * @param v the cumulative probability in (0, 1]; 1 to disable; default 0.95
         * @return this builder
         */
        public Builder topP(float v) { topP = v; return this; }

        /**
         * Sets min-p: drop tokens less likely than {@code v} times the most likely one.
         *
         * @param v the fraction in [0, 1); 0 to disable; default 0.05
         * @return this builder
         */
        public Builder minP(float v) { minP = v; return this; }

        /**
         * Sets the repetition penalty: positive logits of recently seen tokens are divided by it, negative ones multiplied.
         *
         * @param v the penalty, finite and {@code > 0}; 1 to disable; default 1
         * @return this builder
         */
        public Builder repeatPenalty(float v) { repeatPenalty = v; return this; }

        /**
         * Sets how many recent tokens the penalties look at.
         *
         * @param v the number of tokens, {@code >= 0}; 0 disables all penalties; default 64
         * @return this builder
         */
        public Builder repeatLastN(int v) { repeatLastN = v; return this; }

        /**
         * Sets the frequency penalty: subtracted from a token's logit once per time it was seen recently.
         *
         * @param v the penalty, finite; 0 to disable; default 0
         * @return this builder
         */
        public Builder frequencyPenalty(float v) { frequencyPenalty = v; return this; }

        /**
         * Sets the presence penalty: subtracted once from the logit of any recently seen token.
         *
         * @param v the penalty, finite; 0 to disable; default 0
         * @return this builder
         */
        public Builder presencePenalty(float v) { presencePenalty = v; return this; }

        /**
         * Sets the seed of the random draw; the same seed, prompt and options give the same output.
         *
         * @param v the seed, 0 to 2<sup>32</sup>-1; default 42
         * @return this builder
         */
        public Builder seed(long v) { seed = v; return this; }

        /**
         * Sets a GBNF grammar that the output must follow, starting from its rule {@code root}.
         *
         * @param gbnf the grammar text, not blank; {@code null} for none; default none
         * @return this builder
         */
        public Builder grammar(String gbnf) { grammar = gbnf; return this; }

        /**
         * Creates the options.
         *
         * @return the sampling options
         * @throws InvalidArgumentException if a value is out of range
         */
        public Sampling build() {
            return new Sampling(temperature, topK, topP, minP, repeatPenalty, repeatLastN, frequencyPenalty,
                    presencePenalty, seed, Optional.ofNullable(grammar));
        }
    }
}
