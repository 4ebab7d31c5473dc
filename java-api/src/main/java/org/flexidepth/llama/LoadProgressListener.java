package org.flexidepth.llama;

/**
 * Told how far a model's weights have loaded; it can cancel the load. Called on the loading
 * thread, from within {@link LlamaModel#load(java.nio.file.Path, ModelOptions)}.
 */
@FunctionalInterface
public interface LoadProgressListener {
    /**
     * Reports progress.
     *
     * @param fraction the part of the weights loaded so far, from 0 to 1 (1 once, at the end)
     * @return {@code true} to go on, {@code false} to cancel the load, which then throws
     *         {@link ModelLoadCancelledException}
     */
    boolean onProgress(float fraction);
}
