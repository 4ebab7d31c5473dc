package org.flexidepth.llama;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * Options of {@link FlexiDepthTrainer}: the plug-in's shape, the objective
 * {@code alpha * L_skip + L_lm}, the optimizer (AdamW, linear warm-up then cosine decay), the
 * data budget and checkpoints. Immutable; build with {@link #builder()}.
 *
 * @param routedLayers      model layers to route, ascending; empty: the latter half
 * @param routerSize        router width; 0: hidden size / 16
 * @param adapterSize       adapter width; 0: FFN size / 16 (a family without an adapter has none)
 * @param skipFamily        what a skipped token leaves out, for a new plug-in
 * @param threshold         tau of the decisions during training, stored in the plug-in
 * @param initialRouterBias router logit at the start: every layer runs with g = sigmoid(bias)
 * @param alpha             weight of the skip loss; larger skips more layers
 * @param learningRate      peak learning rate
 * @param minLearningRateRatio the cosine schedule ends at this fraction of the peak
 * @param weightDecay       AdamW weight decay
 * @param warmupSteps       steps of linear warm-up
 * @param contextLength     tokens per training sequence, a multiple of 256; one sequence per optimizer step
 * @param epochs            passes over the data, used when tokenBudget is 0
 * @param tokenBudget       training tokens in all; 0: {@code epochs} passes
 * @param seed              initialisation and data order
 * @param threads           CPU threads; 0: all cores
 * @param checkpoint        checkpoint file; empty: the output path + ".checkpoint"
 * @param checkpointEvery   steps between checkpoints; 0: only when cancelled
 * @param resume            continue from the checkpoint if it exists
 */
public record TrainingOptions(List<Integer> routedLayers, int routerSize, int adapterSize, SkipFamily skipFamily, float threshold,
                              float initialRouterBias, float alpha, float learningRate, float minLearningRateRatio,
                              float weightDecay, int warmupSteps, int contextLength, int epochs, long tokenBudget,
                              int seed, int threads, Optional<Path> checkpoint, int checkpointEvery, boolean resume) {

    /** The defaults of {@link #builder()}: one epoch of the data, contexts of 256 tokens. */
    public static final TrainingOptions DEFAULT = builder().build();

    /**
     * Checks the options and copies {@code routedLayers}; a {@code null} checkpoint means empty.
     *
     * @throws InvalidArgumentException if an option is outside the range its component describes
     */
    public TrainingOptions {
        routedLayers = List.copyOf(routedLayers);
        require(skipFamily != null, "the skip family must not be null");
        for (int i = 0; i < routedLayers.size(); i++) {
            if (routedLayers.get(i) < 0 || (i > 0 && routedLayers.get(i) <= routedLayers.get(i - 1))) {
                throw new InvalidArgumentException("routed layers must be ascending, distinct and >= 0: " + routedLayers);
            }
        }
        require(routerSize >= 0 && adapterSize >= 0, "router and adapter sizes must be >= 0 (0: default)");
        require(threshold >= 0 && threshold <= 1, "the threshold must be in [0, 1], was " + threshold);
        require(Float.isFinite(initialRouterBias), "the initial router bias must be finite");
        require(alpha >= 0 && Float.isFinite(alpha), "alpha must be >= 0, was " + alpha);
        require(learningRate > 0 && Float.isFinite(learningRate), "the learning rate must be > 0, was " + learningRate);
        require(minLearningRateRatio >= 0 && minLearningRateRatio <= 1, "the minimum learning rate ratio must be in [0, 1]");
        require(weightDecay >= 0 && weightDecay < 1, "weight decay must be in [0, 1)");
        require(warmupSteps >= 0, "warm-up steps must be >= 0");
        // llama.cpp pads every context to a multiple of 256, and training uses whole contexts
        require(contextLength >= 256 && contextLength % 256 == 0, "the context length must be a positive multiple of 256, was " + contextLength);
        require(tokenBudget >= 0, "the token budget must be >= 0");
        require(tokenBudget > 0 || epochs > 0, "give a token budget or at least one epoch");
        require(threads >= 0, "threads must be >= 0 (0: all cores)");
        require(checkpointEvery >= 0, "checkpointEvery must be >= 0");
        checkpoint = checkpoint == null ? Optional.empty() : checkpoint;
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new InvalidArgumentException(message);
        }
    }

    /** {@return a builder with the defaults, which are those of {@link #DEFAULT}} */
    public static Builder builder() {
        return new Builder();
    }

    /** {@return a builder starting from these options} */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.routedLayers = routedLayers;
        b.routerSize = routerSize;
        b.adapterSize = adapterSize;
        b.skipFamily = skipFamily;
        b.threshold = threshold;
        b.initialRouterBias = initialRouterBias;
        b.alpha = alpha;
        b.learningRate = learningRate;
        b.minLearningRateRatio = minLearningRateRatio;
        b.weightDecay = weightDecay;
        b.warmupSteps = warmupSteps;
        b.contextLength = contextLength;
        b.epochs = epochs;
        b.tokenBudget = tokenBudget;
        b.seed = seed;
        b.threads = threads;
        b.checkpoint = checkpoint;
        b.checkpointEvery = checkpointEvery;
        b.resume = resume;
        return b;
    }

    /** Builds {@link TrainingOptions}; each setter says its default. Not thread-safe. */
    public static final class Builder {
        private List<Integer> routedLayers = List.of();
        private int routerSize, adapterSize;
        private SkipFamily skipFamily = SkipFamily.LAYER;
        private float threshold = 0.5f, initialRouterBias = 3.0f, alpha = 0.003f, learningRate = 1e-4f;
        private float minLearningRateRatio = 0.1f, weightDecay = 0f;
        private int warmupSteps = 10, contextLength = 256, epochs = 1, seed = 42, threads, checkpointEvery = 50;
        private long tokenBudget;
        private Optional<Path> checkpoint = Optional.empty();
        private boolean resume;

        private Builder() {
        }

        /**
         * Sets the model layers that get a router and adapter.
         *
         * @param layers layer indices, ascending, distinct and {@code >= 0}; default empty: the latter half of the layers
         * @return this builder
         */
        public Builder routedLayers(List<Integer> layers) { this.routedLayers = layers; return this; }

        /**
         * Sets the width of each router's hidden layer.
         *
         * @param size the width, {@code >= 0}; default 0: the model's hidden size / 16
         * @return this builder
         */
        public Builder routerSize(int size) { this.routerSize = size; return this; }

        /**
         * Sets the width of each adapter, which runs for the tokens that skip a layer.
         *
         * @param size the width, {@code >= 0}; default 0: the model's FFN size / 16
         * @return this builder
         */
        public Builder adapterSize(int size) { this.adapterSize = size; return this; }

        /**
         * Sets what a token that skips a routed layer leaves out, for a new plug-in (a resumed
         * checkpoint keeps its own).
         *
         * @param family the family, not {@code null}; default {@link SkipFamily#LAYER} (FlexiDepth)
         * @return this builder
         */
        public Builder skipFamily(SkipFamily family) { this.skipFamily = family; return this; }

        /**
         * Sets the threshold tau: a layer runs in full for a token when its gate is above tau.
         *
         * @param tau the threshold in [0, 1], stored in the plug-in as its default; default 0.5
         * @return this builder
         */
        public Builder threshold(float tau) { this.threshold = tau; return this; }

        /**
         * Sets the router logit at the start, so that every gate starts at {@code sigmoid(bias)}.
         *
         * @param bias a finite logit; default 3 (gates near 0.95, every layer runs)
         * @return this builder
         */
        public Builder initialRouterBias(float bias) { this.initialRouterBias = bias; return this; }

        /**
         * Sets the weight of the skip loss against the language-model loss.
         *
         * @param alpha the weight, finite and {@code >= 0}; larger skips more layers; default 0.003
         * @return this builder
         */
        public Builder alpha(float alpha) { this.alpha = alpha; return this; }

        /**
         * Sets the peak learning rate, reached after the warm-up.
         *
         * @param lr the rate, finite and {@code > 0}; default 1e-4
         * @return this builder
         */
        public Builder learningRate(float lr) { this.learningRate = lr; return this; }

        /**
         * Sets where the cosine decay ends, as a fraction of the peak learning rate.
         *
         * @param ratio the fraction in [0, 1]; default 0.1
         * @return this builder
         */
        public Builder minLearningRateRatio(float ratio) { this.minLearningRateRatio = ratio; return this; }

        /**
         * Sets the AdamW weight decay.
         *
         * @param decay the decay in [0, 1); default 0
         * @return this builder
         */
        public Builder weightDecay(float decay) { this.weightDecay = decay; return this; }

        /**
         * Sets the number of steps of linear warm-up.
         *
         * @param steps the steps, {@code >= 0}; default 10
         * @return this builder
         */
        public Builder warmupSteps(int steps) { this.warmupSteps = steps; return this; }

        /**
         * Sets the tokens per training sequence; each optimizer step trains on one sequence.
         *
         * @param tokens a positive multiple of 256; default 256
         * @return this builder
         */
        public Builder contextLength(int tokens) { this.contextLength = tokens; return this; }

        /**
         * Sets the number of passes over the data, used when the token budget is 0.
         *
         * @param epochs the passes, at least 1 unless a token budget is set; default 1
         * @return this builder
         */
        public Builder epochs(int epochs) { this.epochs = epochs; return this; }

        /**
         * Sets how many training tokens to train on in all, overriding {@link #epochs(int)}.
         *
         * @param tokens the budget, {@code >= 0}; default 0: {@code epochs} passes over the data
         * @return this builder
         */
        public Builder tokenBudget(long tokens) { this.tokenBudget = tokens; return this; }

        /**
         * Sets the seed of the initialisation and the data order.
         *
         * @param seed any value; the same seed, data and options give the same run; default 42
         * @return this builder
         */
        public Builder seed(int seed) { this.seed = seed; return this; }

        /**
         * Sets the CPU threads the trainer uses.
         *
         * @param threads the count, {@code >= 0}; default 0: all cores
         * @return this builder
         */
        public Builder threads(int threads) { this.threads = threads; return this; }

        /**
         * Sets the checkpoint file, written periodically and on cancel, and read on resume.
         *
         * @param file the file, not {@code null}; default: the output path + {@code .checkpoint}, removed once the output is written
         * @return this builder
         */
        public Builder checkpoint(Path file) { this.checkpoint = Optional.of(file); return this; }

        /**
         * Sets how often a checkpoint is written.
         *
         * @param steps optimizer steps between checkpoints, {@code >= 0}; 0: only when cancelled; default 50
         * @return this builder
         */
        public Builder checkpointEvery(int steps) { this.checkpointEvery = steps; return this; }

        /**
         * Sets whether a run continues from the checkpoint.
         *
         * @param resume {@code true} to continue from the checkpoint if it exists; default {@code false}
         * @return this builder
         */
        public Builder resume(boolean resume) { this.resume = resume; return this; }

        /**
         * Creates the options.
         *
         * @return the options
         * @throws InvalidArgumentException if an option is out of range
         */
        public TrainingOptions build() {
            return new TrainingOptions(routedLayers, routerSize, adapterSize, skipFamily, threshold, initialRouterBias, alpha,
                    learningRate, minLearningRateRatio, weightDecay, warmupSteps, contextLength, epochs, tokenBudget,
                    seed, threads, checkpoint, checkpointEvery, resume);
        }
    }
}
