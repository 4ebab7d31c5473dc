package org.flexidepth.llama;

import java.util.ArrayList;
import java.util.List;

/**
 * When generation stops and how tokens are sampled. Immutable; build with {@link #builder()}.
 *
 * @param maxTokens   most tokens to generate
 * @param stopStrings generation stops before the first occurrence of any of these in the output
 * @param sampling    the sampling chain
 * @param topLogProbabilities how many of the most likely tokens each {@link Token} lists as its
 *                    {@link Token#alternatives()}, 0 to 20
 * @param flexiDepthThreshold the FlexiDepth threshold tau for this generation's tokens in place
 *                    of the one the plug-in was attached with (a server's requests share one
 *                    engine, and each may ask for its own); empty for that one
 */
public record GenerationOptions(int maxTokens, List<String> stopStrings, Sampling sampling, int topLogProbabilities,
                                java.util.Optional<Float> flexiDepthThreshold) {
    /** The defaults of {@link #builder()}: up to 256 tokens, no stop strings, greedy sampling. */
    public static final GenerationOptions DEFAULT = builder().build();

    /**
     * Checks the options and copies {@code stopStrings} into an unmodifiable list.
     *
     * @throws InvalidArgumentException if {@code maxTokens} is below 1, a stop string is null, empty or
     *         holds an unpaired surrogate, or {@code stopStrings} or {@code sampling} is null
     */
    public GenerationOptions {
        if (maxTokens < 1) {
            throw new InvalidArgumentException("maxTokens must be >= 1, was " + maxTokens);
        }
        if (stopStrings == null || stopStrings.stream().anyMatch(java.util.Objects::isNull)) {
            throw new InvalidArgumentException("stop strings must not be null");
        }
        stopStrings = List.copyOf(stopStrings);
        stopStrings.forEach(stop -> TextChecks.requireWellFormed(stop, "the stop string"));
        if (stopStrings.stream().anyMatch(String::isEmpty)) {
            throw new InvalidArgumentException("stop strings must not be empty");
        }
        if (sampling == null) {
            throw new InvalidArgumentException("sampling must not be null");
        }
        if (topLogProbabilities < 0 || topLogProbabilities > 20) {
            throw new InvalidArgumentException("topLogProbabilities must be in [0, 20], was " + topLogProbabilities);
        }
        if (flexiDepthThreshold == null) {
            throw new InvalidArgumentException("flexiDepthThreshold must not be null (empty for the attached one)");
        }
        flexiDepthThreshold.ifPresent(FlexiDepthPlugin::checkThreshold);
    }

    /** {@return a builder with the defaults, which are those of {@link #DEFAULT}} */
    public static Builder builder() {
        return new Builder();
    }

    /** {@return a builder starting from these options, stop strings included} */
    public Builder toBuilder() {
        Builder b = new Builder().maxTokens(maxTokens).sampling(sampling).topLogProbabilities(topLogProbabilities);
        stopStrings.forEach(b::stopString);
        b.flexiDepthThreshold = flexiDepthThreshold;
        return b;
    }

    /** Builds {@link GenerationOptions}; each setter says its default. Not thread-safe. */
    public static final class Builder {
        private int maxTokens = 256;
        private final List<String> stopStrings = new ArrayList<>();
        private Sampling sampling = Sampling.greedy();
        private int topLogProbabilities;
        private java.util.Optional<Float> flexiDepthThreshold = java.util.Optional.empty();

        private Builder() {
        }

        /**
         * Sets the FlexiDepth threshold for this generation's tokens (its prompt's and its reply's),
         * in place of the one the session's or engine's plug-in was attached with. Prompt tokens a
         * session or engine reuses from its cache keep the routing they were computed with.
         *
         * @param tau in [0, 1]; default: the attached one
         * @return this builder
         */
        public Builder flexiDepthThreshold(float tau) {
            this.flexiDepthThreshold = java.util.Optional.of(tau);
            return this;
        }

        /**
         * Sets how many of the most likely tokens, with their log-probabilities under the model's raw
         * distribution, each generated token lists (OpenAI's {@code top_logprobs}).
         *
         * @param n 0 to 20; default 0
         * @return this builder
         */
        public Builder topLogProbabilities(int n) {
            this.topLogProbabilities = n;
            return this;
        }

        /**
         * Sets the most tokens to generate; generation may end earlier at an end-of-generation token or a stop string.
         *
         * @param maxTokens the limit, {@code >= 1}; default 256
         * @return this builder
         */
        public Builder maxTokens(int maxTokens) {
            this.maxTokens = maxTokens;
            return this;
        }

        /**
         * Adds a stop string: generation stops before its first occurrence in the output, which it is not part of.
         *
         * @param stop the string, not empty
         * @return this builder
         * @throws InvalidArgumentException if {@code stop} is null
         */
        public Builder stopString(String stop) {
            if (stop == null) {
                throw new InvalidArgumentException("a stop string must not be null");
            }
            stopStrings.add(stop);
            return this;
        }

        /**
         * Sets how tokens are chosen.
         *
         * @param sampling the sampling chain, not {@code null}; default {@link Sampling#greedy()}
         * @return this builder
         */
        public Builder sampling(Sampling sampling) {
            this.sampling = sampling;
            return this;
        }

        /**
         * Creates the options.
         *
         * @return the options
         * @throws InvalidArgumentException if a value is out of range
         */
        public GenerationOptions build() {
            return new GenerationOptions(maxTokens, stopStrings, sampling, topLogProbabilities, flexiDepthThreshold);
        }
    }
}
