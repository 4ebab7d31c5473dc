package org.flexidepth.llama;

import java.util.ArrayList;
import java.util.List;

/**
 * When generation stops and how tokens are sampled. Immutable; build with {@link #builder()}.
 *
 * @param maxTokens   most tokens to generate
 * @param stopStrings generation stops before the first occurrence of any of these in the output
 * @param sampling    the sampling chain
 */
public record GenerationOptions(int maxTokens, List<String> stopStrings, Sampling sampling) {
    public static final GenerationOptions DEFAULT = builder().build();

    public GenerationOptions {
        if (maxTokens < 1) {
            throw new InvalidArgumentException("maxTokens must be >= 1, was " + maxTokens);
        }
        if (stopStrings == null || stopStrings.contains(null)) {
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
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        Builder b = new Builder().maxTokens(maxTokens).sampling(sampling);
        stopStrings.forEach(b::stopString);
        return b;
    }

    public static final class Builder {
        private int maxTokens = 256;
        private final List<String> stopStrings = new ArrayList<>();
        private Sampling sampling = Sampling.greedy();

        private Builder() {
        }

        public Builder maxTokens(int maxTokens) {
            this.maxTokens = maxTokens;
            return this;
        }

        public Builder stopString(String stop) {
            if (stop == null) {
                throw new InvalidArgumentException("a stop string must not be null");
            }
            stopStrings.add(stop);
            return this;
        }

        public Builder sampling(Sampling sampling) {
            this.sampling = sampling;
            return this;
        }

        public GenerationOptions build() {
            return new GenerationOptions(maxTokens, stopStrings, sampling);
        }
    }
}
