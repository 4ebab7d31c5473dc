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
 * @param progress  told how far loading has got, and may cancel it
 * @param rpcServers {@code host:port} of upstream's {@code ggml-rpc-server} (built from this project as
 *                  {@code build/native/bin/ggml-rpc-server}) on other machines, whose devices then take the
 *                  offloaded layers in place of local GPUs, split by their free memory
 */
public record ModelOptions(int gpuLayers, boolean mmap, boolean mlock, boolean vocabOnly, boolean repackWeights,
                           java.util.Optional<LoadProgressListener> progress, java.util.List<String> rpcServers) {
    /** The defaults of {@link #builder()}: CPU only, memory-mapped, repacked weights. */
    public static final ModelOptions DEFAULT = builder().build();

    /**
     * Checks the options.
     *
     * @throws InvalidArgumentException if {@code gpuLayers} is below -1, {@code progress} or
     *         {@code rpcServers} is null, or an RPC endpoint is not {@code host:port}
     */
    public ModelOptions {
        if (progress == null) {
            throw new InvalidArgumentException("progress must not be null (Optional.empty() for none)");
        }
        if (rpcServers == null) {
            throw new InvalidArgumentException("rpcServers must not be null (an empty list for none)");
        }
        if (rpcServers.stream().anyMatch(java.util.Objects::isNull)) {
            throw new InvalidArgumentException("rpcServers must not contain null");
        }
        rpcServers = java.util.List.copyOf(rpcServers);
        for (String endpoint : rpcServers) {
            checkEndpoint(endpoint);
        }
        if (new java.util.HashSet<>(rpcServers).size() != rpcServers.size()) {
            throw new InvalidArgumentException("rpcServers names an endpoint twice: " + rpcServers);
        }
        if (gpuLayers < -1) {
            throw new InvalidArgumentException("gpuLayers must be -1 (all), 0 or positive, was " + gpuLayers);
        }
    }

    // ggml-rpc's syntax: the last colon splits host and port
    private static void checkEndpoint(String endpoint) {
        int colon = endpoint.lastIndexOf(':');
        String port = colon < 0 ? "" : endpoint.substring(colon + 1);
        boolean ok = colon > 0 && port.matches("[0-9]{1,5}") && Integer.parseInt(port) >= 1 && Integer.parseInt(port) <= 65535;
        if (!ok) {
            throw new InvalidArgumentException("RPC endpoint '" + endpoint + "' is not host:port (port 1-65535)");
        }
    }

    /** {@return a builder with the defaults, which are those of {@link #DEFAULT}} */
    public static Builder builder() {
        return new Builder();
    }

    /** {@return a builder starting from these options} */
    public Builder toBuilder() {
        Builder b = new Builder().gpuLayers(gpuLayers).mmap(mmap).mlock(mlock).vocabOnly(vocabOnly).repackWeights(repackWeights)
                .rpcServers(rpcServers);
        progress.ifPresent(b::progress);
        return b;
    }

    /** Builds {@link ModelOptions}; each setter says its default. Not thread-safe. */
    public static final class Builder {
        private Integer gpuLayers; // unset: 0, or all with RPC servers
        private java.util.List<String> rpcServers = java.util.List.of();
        private boolean mmap = true;
        private boolean mlock = false;
        private boolean vocabOnly = false;
        private boolean repackWeights = true;
        private java.util.Optional<LoadProgressListener> progress = java.util.Optional.empty();

        private Builder() {
        }

        /**
         * Sets how many layers to offload to a GPU backend.
         *
         * @param gpuLayers the layer count, 0 for none, -1 for all; more than the model has means all;
         *                  default 0, or -1 where {@link #rpcServers RPC servers} are given
         * @return this builder
         */
        public Builder gpuLayers(int gpuLayers) {
            this.gpuLayers = gpuLayers;
            return this;
        }

        /**
         * Sets whether to memory-map the file instead of reading it into memory.
         *
         * @param mmap {@code true} to map the file, so that loading is fast and pages are shared; default {@code true}
         * @return this builder
         */
        public Builder mmap(boolean mmap) {
            this.mmap = mmap;
            return this;
        }

        /**
         * Sets whether to lock the weights in RAM, so that the OS cannot page them out.
         *
         * @param mlock {@code true} to lock them (may need a raised {@code RLIMIT_MEMLOCK}); default {@code false}
         * @return this builder
         */
        public Builder mlock(boolean mlock) {
            this.mlock = mlock;
            return this;
        }

        /**
         * Sets whether to load only the vocabulary, for tokenization without weights.
         *
         * @param vocabOnly {@code true} to skip the weights; such a model cannot evaluate; default {@code false}
         * @return this builder
         */
        public Builder vocabOnly(boolean vocabOnly) {
            this.vocabOnly = vocabOnly;
            return this;
        }

        /**
         * Sets whether the CPU backend may repack quantized weights into its faster layouts.
         *
         * @param repackWeights {@code true} to allow repacking; turn it off for a model to train plug-ins for; default {@code true}
         * @return this builder
         */
        public Builder repackWeights(boolean repackWeights) {
            this.repackWeights = repackWeights;
            return this;
        }

        /**
         * Sets a listener told how far loading has got, which may cancel it.
         *
         * @param listener called on the loading thread; default none
         * @return this builder
         */
        public Builder progress(LoadProgressListener listener) {
            this.progress = java.util.Optional.ofNullable(listener);
            return this;
        }

        /**
         * Sets the RPC servers that take the offloaded layers.
         *
         * @param endpoints {@code host:port} of each {@code ggml-rpc-server}, each running this build's
         *                  protocol; default none
         * @return this builder
         */
        public Builder rpcServers(java.util.List<String> endpoints) {
            this.rpcServers = endpoints;
            return this;
        }

        /**
         * Creates the options.
         *
         * @return the options
         * @throws InvalidArgumentException if a value is out of range
         */
        public ModelOptions build() {
            int layers = gpuLayers != null ? gpuLayers : rpcServers == null || rpcServers.isEmpty() ? 0 : -1;
            return new ModelOptions(layers, mmap, mlock, vocabOnly, repackWeights, progress, rpcServers);
        }
    }
}
