package org.flexidepth.llama;

/**
 * How a model file is loaded. Immutable; build with {@link #builder()}.
 *
 * @param gpuLayers layers to offload to a GPU backend, 0 for none, -1 for all
 * @param mmap      map the file instead of reading it into memory
 * @param mlock     lock the weights in RAM
 * @param vocabOnly load only the vocabulary (tokenization without weights)
 * @param repackWeights let the CPU backend keep quantized weights in its faster repacked layouts
 *                  (x86: Q4_0, Q4_K, ...); off for a model that {@link FlexiDepthTrainer} trains
 *                  plug-ins for, since repacked weights have no backward pass
 */
public record ModelOptions(int gpuLayers, boolean mmap, boolean mlock, boolean vocabOnly, boolean repackWeights) {
    public static final ModelOptions DEFAULT = builder().build();

    public ModelOptions {
        if (gpuLayers < -1) {
            throw new InvalidArgumentException("gpuLayers must be -1 (all), 0 or positive, was " + gpuLayers);
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        return new Builder().gpuLayers(gpuLayers).mmap(mmap).mlock(mlock).vocabOnly(vocabOnly).repackWeights(repackWeights);
    }

    public static final class Builder {
        private int gpuLayers = 0;
        private boolean mmap = true;
        private boolean mlock = false;
        private boolean vocabOnly = false;
        private boolean repackWeights = true;

        private Builder() {
        }

        public Builder gpuLayers(int gpuLayers) {
            this.gpuLayers = gpuLayers;
            return this;
        }

        public Builder mmap(boolean mmap) {
            this.mmap = mmap;
            return this;
        }

        public Builder mlock(boolean mlock) {
            this.mlock = mlock;
            return this;
        }

        public Builder vocabOnly(boolean vocabOnly) {
            this.vocabOnly = vocabOnly;
            return this;
        }

        public Builder repackWeights(boolean repackWeights) {
            this.repackWeights = repackWeights;
            return this;
        }

        public ModelOptions build() {
            return new ModelOptions(gpuLayers, mmap, mlock, vocabOnly, repackWeights);
        }
    }
}
