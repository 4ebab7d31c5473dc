package org.flexidepth.llama;

import java.util.Optional;

/**
 * The shape of a {@link BatchEngine}: how many requests decode together, how long each may grow,
 * how many may wait. Immutable; {@link #builder()}.
 *
 * @param slots          requests decoded together, one sequence of the shared context each
 * @param contextPerSlot tokens each request may hold (prompt and reply)
 * @param batchSize      most tokens in one decode: a token of every generating request, then
 *                       chunks of the prompts that wait
 * @param queueCapacity  requests that may wait for a slot; beyond it {@link BatchEngine#submit}
 *                       throws {@link QueueFullException}
 * @param threads        CPU threads of each decode; 0 for all cores
 * @param flexiDepth     a FlexiDepth plug-in of the engine's model and its threshold, for every request
 */
public record BatchEngineOptions(int slots, int contextPerSlot, int batchSize, int queueCapacity, int threads,
                                 Optional<FlexiDepth> flexiDepth) {
    /**
     * A plug-in and its threshold.
     *
     * @param plugin the plug-in, loaded onto the engine's model
     * @param tau    the threshold in [0, 1]
     */
    public record FlexiDepth(FlexiDepthPlugin plugin, float tau) {
        /**
         * Checks the pair.
         *
         * @throws InvalidArgumentException if the plug-in is null or tau is outside [0, 1]
         */
        public FlexiDepth {
            if (plugin == null) {
                throw new InvalidArgumentException("a FlexiDepth engine needs a plug-in");
            }
            FlexiDepthPlugin.checkThreshold(tau);
        }
    }

    /**
     * Checks the options.
     *
     * @throws InvalidArgumentException if a size is out of range
     */
    public BatchEngineOptions {
        if (slots < 1 || slots > 256 || contextPerSlot < 2 || batchSize < slots || queueCapacity < 0 || threads < 0) {
            throw new InvalidArgumentException("slots must be 1..256, contextPerSlot >= 2, batchSize >= slots, queueCapacity"
                    + " and threads >= 0; got " + slots + ", " + contextPerSlot + ", " + batchSize + ", " + queueCapacity + ", " + threads);
        }
        if (flexiDepth == null) {
            throw new InvalidArgumentException("flexiDepth must not be null (Optional.empty() for none)");
        }
    }

    /** {@return a builder: 4 slots of 2048 tokens, batches of 512, 64 waiting, all cores, no plug-in} */
    public static Builder builder() {
        return new Builder();
    }

    int effectiveThreads() {
        return threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
    }

    /** Builds {@link BatchEngineOptions}. */
    public static final class Builder {
        private int slots = 4, contextPerSlot = 2048, batchSize = 512, queueCapacity = 64, threads;
        private Optional<FlexiDepth> flexiDepth = Optional.empty();

        private Builder() {
        }

        /**
         * Sets how many requests decode together.
         *
         * @param slots requests decoded together; default 4
         * @return this builder
         */
        public Builder slots(int slots) {
            this.slots = slots;
            return this;
        }

        /**
         * Sets how many tokens each request may hold.
         *
         * @param tokens tokens each request may hold; default 2048
         * @return this builder
         */
        public Builder contextPerSlot(int tokens) {
            this.contextPerSlot = tokens;
            return this;
        }

        /**
         * Sets the most tokens in one decode.
         *
         * @param tokens most tokens in one decode; default 512
         * @return this builder
         */
        public Builder batchSize(int tokens) {
            this.batchSize = tokens;
            return this;
        }

        /**
         * Sets how many requests may wait for a slot.
         *
         * @param requests requests that may wait for a slot; default 64
         * @return this builder
         */
        public Builder queueCapacity(int requests) {
            this.queueCapacity = requests;
            return this;
        }

        /**
         * Sets the CPU threads of each decode.
         *
         * @param threads CPU threads of each decode; default 0, all cores
         * @return this builder
         */
        public Builder threads(int threads) {
            this.threads = threads;
            return this;
        }

        /**
         * Applies a FlexiDepth plug-in to every request.
         *
         * @param plugin a plug-in loaded onto the engine's model
         * @param tau    its threshold
         * @return this builder
         */
        public Builder flexiDepth(FlexiDepthPlugin plugin, float tau) {
            this.flexiDepth = Optional.of(new FlexiDepth(plugin, tau));
            return this;
        }

        /**
         * Builds the options.
         *
         * @return the options
         * @throws InvalidArgumentException if a size is out of range
         */
        public BatchEngineOptions build() {
            return new BatchEngineOptions(slots, contextPerSlot, batchSize, queueCapacity, threads, flexiDepth);
        }
    }
}
