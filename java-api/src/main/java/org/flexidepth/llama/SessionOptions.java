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
    public static final SessionOptions DEFAULT = builder().build();

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

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        return new Builder().contextSize(contextSize).batchSize(batchSize).threads(threads).threadsBatch(threadsBatch);
    }

    int effectiveThreads() {
        return threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
    }

    int effectiveThreadsBatch() {
        return threadsBatch > 0 ? threadsBatch : effectiveThreads();
    }

    public static final class Builder {
        private int contextSize = 0;
        private int batchSize = 512;
        private int threads = 0;
        private int threadsBatch = 0;

        private Builder() {
        }

        public Builder contextSize(int contextSize) {
            this.contextSize = contextSize;
            return this;
        }

        public Builder batchSize(int batchSize) {
            this.batchSize = batchSize;
            return this;
        }

        public Builder threads(int threads) {
            this.threads = threads;
            return this;
        }

        public Builder threadsBatch(int threadsBatch) {
            this.threadsBatch = threadsBatch;
            return this;
        }

        public SessionOptions build() {
            return new SessionOptions(contextSize, batchSize, threads, threadsBatch);
        }
    }
}
