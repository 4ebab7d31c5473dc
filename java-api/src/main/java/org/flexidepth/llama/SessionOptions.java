package org.flexidepth.llama;

import java.util.Optional;

/**
 * The shape of a session's context. Immutable; build with {@link #builder()}.
 *
 * @param contextSize   tokens the session can hold, 0 for the model's training context or 4096, whichever is smaller
 * @param batchSize     most tokens evaluated in one native call (prompt chunks)
 * @param threads       threads for generation, 0 for the number of available processors
 * @param threadsBatch  threads for prompt processing, 0 for the same as {@code threads}
 * @param embeddings    for an embedding session ({@link Session#embed(java.util.List)}), how token
 *                      vectors are pooled into one per text; empty for a generation session
 * @param sequences     texts an embedding session evaluates together in one native call (sequences
 *                      of the context); 1 for a generation session
 * @param dmtd          direct multi-token decoding of generated tokens; empty: every token at full depth
 */
public record SessionOptions(int contextSize, int batchSize, int threads, int threadsBatch, Optional<Pooling> embeddings,
                             int sequences, Optional<Dmtd> dmtd) {
    /** The defaults of {@link #builder()}: the model's training context up to 4096, batches of 512, all processors. */
    public static final SessionOptions DEFAULT = builder().build();

    /**
     * Checks the options.
     *
     * @throws InvalidArgumentException if a size or count is negative, or {@code batchSize} is below 1
     */
    public SessionOptions {
        if (contextSize < 0) {
            throw new InvalidArgumentException("contextSize must be >= 0 (0 = model's, up to 4096), was " + contextSize);
        }
        if (batchSize < 1) {
            throw new InvalidArgumentException("batchSize must be >= 1, was " + batchSize);
        }
        if (threads < 0 || threadsBatch < 0) {
            throw new InvalidArgumentException("thread counts must be >= 0 (0 = automatic), were " + threads + ", " + threadsBatch);
        }
        embeddings = embeddings == null ? Optional.empty() : embeddings;
        dmtd = dmtd == null ? Optional.empty() : dmtd;
        if (dmtd.isPresent() && embeddings.isPresent()) {
            throw new InvalidArgumentException("DMTD decodes generated tokens; an embedding session generates none");
        }
        if (sequences < 1 || sequences > 256) {
            throw new InvalidArgumentException("sequences must be in [1, 256], was " + sequences);
        }
        if (sequences > 1 && embeddings.isEmpty()) {
            throw new InvalidArgumentException("several sequences are for embedding sessions; a generation session decodes one");
        }
    }

    /** {@return a builder with the defaults, which are those of {@link #DEFAULT}} */
    public static Builder builder() {
        return new Builder();
    }

    /** {@return a builder starting from these options} */
    public Builder toBuilder() {
        Builder b = new Builder().contextSize(contextSize).batchSize(batchSize).threads(threads).threadsBatch(threadsBatch);
        embeddings.ifPresent(p -> b.embeddings(p, sequences));
        dmtd.ifPresent(b::dmtd);
        return b;
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
        private Pooling embeddings;
        private int sequences = 1;
        private Dmtd dmtd;

        private Builder() {
        }

        /**
         * Decodes generated tokens with direct multi-token decoding ({@link Dmtd}).
         *
         * @param dmtd the cycle, split and phase, not {@code null}; default: none, every token at full depth
         * @return this builder
         */
        public Builder dmtd(Dmtd dmtd) {
            if (dmtd == null) {
                throw new InvalidArgumentException("the DMTD options must not be null");
            }
            this.dmtd = dmtd;
            return this;
        }

        /**
         * Makes the session an embedding session: {@link Session#embed(java.util.List)} turns texts into vectors,
         * {@code sequences} texts per native call; it does not generate.
         *
         * @param pooling   how token vectors become one per text ({@link Pooling#MODEL}: the model's own)
         * @param sequences texts evaluated together, 1 to 256; each batch of them shares the context
         * @return this builder
         */
        public Builder embeddings(Pooling pooling, int sequences) {
            if (pooling == null) {
                throw new InvalidArgumentException("the pooling must not be null (Pooling.MODEL for the model's own)");
            }
            this.embeddings = pooling;
            this.sequences = sequences;
            return this;
        }

        /**
         * Sets how many tokens the session's context holds: prompt, history and generated tokens together.
         *
         * @param contextSize the size in tokens, {@code >= 0}; 0 for the model's training context or 4096, whichever
         *                    is smaller (a 128k-context model would otherwise allocate a 128k-token cache); default 0
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
            return new SessionOptions(contextSize, batchSize, threads, threadsBatch, Optional.ofNullable(embeddings), sequences,
                    Optional.ofNullable(dmtd));
        }
    }
}
