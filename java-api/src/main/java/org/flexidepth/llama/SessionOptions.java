package org.flexidepth.llama;

/**
 * The shape of a session's context. Immutable; build with {@link #builder()}.
 *
 * @param contextSize   tokens the session can hold, 0 for the model's training context
 * @param batchSize     most tokens evaluated in one native call (prompt chunks)
 * @param threads       threads for generation, 0 for the number of available processors
 * @param threadsBatch  threads for prompt processing, 0 for the same as {@code threads}
 */
public record SessionOptions(int contextSize, int batchSize, int threads, int threadsBatch) {
    /** The defaults of {@link #builder()}: the model's training context, batches of 512, all processors. */
    public static final SessionOptions DEFAULT = builder().build();

    /**
     * Checks the options.
     *
     * @throws InvalidArgumentException if a size or count is negative, or {@code batchSize} is below 1
     */
    public SessionOptions {
        if (contextSize < 0) {
            throw new InvalidArgumentException("contextSize must be >= 0 (0 = model's), was " + contextSize);
        }
        if (batchSize < 1) {
            throw new InvalidArgumentException("batchSize must be >= 1, was " + batchSize);
        }
        if (threads < 0 || threadsBatch < 0) {
            throw new InvalidArgumentException("thread counts must be >= 0 (0 = automatic), were " + threads + ", " + threadsBatch);
        }
    }

    /** {@return a builder with the defaults, which are those of {@link #DEFAULT}} */
    public static Builder builder() {
        return new Builder();
    }

    /** {@return a builder starting from these options} */
    public Builder toBuilder() {
        return new Builder().contextSize(contextSize).batchSize(batchSize).threads(threads).threadsBatch(threadsBatch);
    }

    int effectiveThreads() {
        return threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
    }

    int effectiveThreadsBatch() {
        return threadsBatch > 0 ? threadsBatch : effectiveThreads();
    }

    /** Builds {@link SessionOptions}; each setter says its default. Not thread-safe. */
    public static final class Builder {
        private int contextSize = 0;
        private int batchSize = 512;
        private int threads = 0;
        private int threadsBatch = 0;

        private Builder() {
        }

        /**
         * Sets how many tokens the session's context holds: prompt, history and generated tokens together.
         *
         * @param contextSize the size in tokens, {@code >= 0}; 0 for the model's training context; default 0
         * @return this builder
         */
        public Builder contextSize(int contextSize) {
            this.contextSize = contextSize;
            return this;
        }

        /**
         * Sets the most tokens evaluated in one native call; longer prompts are evaluated in chunks.
         *
         * @param batchSize the size in tokens, {@code >= 1}; default 512
         * @return this builder
         */
        public Builder batchSize(int batchSize) {
            this.batchSize = batchSize;
            return this;
        }

        /**
         * Sets the threads used to generate tokens.
         *
         * @param threads the count, {@code >= 0}; 0 for the number of available processors; default 0
         * @return this builder
         */
        public Builder threads(int threads) {
            this.threads = threads;
            return this;
        }

        /**
         * Sets the threads used to process prompts.
         *
         * @param threadsBatch the count, {@code >= 0}; 0 for the same as {@link #threads(int)}; default 0
         * @return this builder
         */
        public Builder threadsBatch(int threadsBatch) {
            this.threadsBatch = threadsBatch;
            return this;
        }

        /**
         * Creates the options.
         *
         * @return the options
         * @throws InvalidArgumentException if a value is out of range
         */
        public SessionOptions build() {
            return new SessionOptions(contextSize, batchSize, threads, threadsBatch);
        }
    }
}
