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
 * @param adapterSize       adapter width; 0: FFN size / 16
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
public record TrainingOptions(List<Integer> routedLayers, int routerSize, int adapterSize, float threshold,
                              float initialRouterBias, float alpha, float learningRate, float minLearningRateRatio,
                              float weightDecay, int warmupSteps, int contextLength, int epochs, long tokenBudget,
                              int seed, int threads, Optional<Path> checkpoint, int checkpointEvery, boolean resume) {

    public static final TrainingOptions DEFAULT = builder().build();

    public TrainingOptions {
        routedLayers = List.copyOf(routedLayers);
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

    public static Builder builder() {
        return new Builder();
    }

    /** {@return a builder starting from these options} */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.routedLayers = routedLayers;
        b.routerSize = routerSize;
        b.adapterSize = adapterSize;
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

    public static final class Builder {
        private List<Integer> routedLayers = List.of();
        private int routerSize, adapterSize;
        private float threshold = 0.5f, initialRouterBias = 3.0f, alpha = 0.003f, learningRate = 1e-4f;
        private float minLearningRateRatio = 0.1f, weightDecay = 0f;
        private int warmupSteps = 10, contextLength = 256, epochs = 1, seed = 42, threads, checkpointEvery = 50;
        private long tokenBudget;
        private Optional<Path> checkpoint = Optional.empty();
        private boolean resume;

        private Builder() {
        }

        public Builder routedLayers(List<Integer> layers) { this.routedLayers = layers; return this; }
        public Builder routerSize(int size) { this.routerSize = size; return this; }
        public Builder adapterSize(int size) { this.adapterSize = size; return this; }
        public Builder threshold(float tau) { this.threshold = tau; return this; }
        public Builder initialRouterBias(float bias) { this.initialRouterBias = bias; return this; }
        public Builder alpha(float alpha) { this.alpha = alpha; return this; }
        public Builder learningRate(float lr) { this.learningRate = lr; return this; }
        public Builder minLearningRateRatio(float ratio) { this.minLearningRateRatio = ratio; return this; }
        public Builder weightDecay(float decay) { this.weightDecay = decay; return this; }
        public Builder warmupSteps(int steps) { this.warmupSteps = steps; return this; }
        public Builder contextLength(int tokens) { this.contextLength = tokens; return this; }
        public Builder epochs(int epochs) { this.epochs = epochs; return this; }
        public Builder tokenBudget(long tokens) { this.tokenBudget = tokens; return this; }
        public Builder seed(int seed) { this.seed = seed; return this; }
        public Builder threads(int threads) { this.threads = threads; return this; }
        public Builder checkpoint(Path file) { this.checkpoint = Optional.of(file); return this; }
        public Builder checkpointEvery(int steps) { this.checkpointEvery = steps; return this; }
        public Builder resume(boolean resume) { this.resume = resume; return this; }

        public TrainingOptions build() {
            return new TrainingOptions(routedLayers, routerSize, adapterSize, threshold, initialRouterBias, alpha,
                    learningRate, minLearningRateRatio, weightDecay, warmupSteps, contextLength, epochs, tokenBudget,
                    seed, threads, checkpoint, checkpointEvery, resume);
        }
    }
}
