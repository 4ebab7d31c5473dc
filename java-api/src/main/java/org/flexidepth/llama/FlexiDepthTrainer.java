package org.flexidepth.llama;

import org.flexidepth.llama.bindings.llama_h;

import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;

/**
 * Trains a FlexiDepth plug-in for a model, with the model frozen (native trainer on ggml's
 * optimizer, see {@code native/include/llama-flexidepth-train.h}). One run at a time; cancel it
 * from any thread with {@link #cancel()}, which writes a checkpoint that a run with
 * {@link TrainingOptions#resume()} continues from.
 *
 * <pre>{@code
 * var trainer = FlexiDepthTrainer.create(model, TrainingOptions.builder().alpha(0.01f).tokenBudget(200_000).build());
 * TrainingResult r = trainer.train(TrainingData.textFiles(book), Path.of("plugin.gguf"),
 *         p -> System.out.printf("step %d loss %.3f layers %.2f%n", p.step(), p.lmLoss(), p.meanLayers()));
 * try (FlexiDepthPlugin plugin = model.loadFlexiDepth(r.plugin())) { ... }
 * }</pre>
 */
public final class FlexiDepthTrainer {
    private final LlamaModel model;
    private final NativeTrainer trainer;

    private FlexiDepthTrainer(LlamaModel model, TrainingOptions options) {
        this.model = model;
        this.trainer = new NativeTrainer(model, options, "flexidepth-trainer",
                (arena, data, output, params) -> llama_h.llama_flexidepth_train(model.handle(), data, output, params));
    }

    /**
     * Creates a trainer for a model, loading the native training library (beside the others) the
     * first time. Nothing is allocated until {@link #train} runs.
     *
     * @param model   the base model, frozen during training; it must stay open while training runs
     * @param options the architecture, optimizer and schedule of the plug-in to train
     * @return a trainer, reusable for one run at a time
     * @throws ResourceClosedException if {@code model} is closed
     */
    public static FlexiDepthTrainer create(LlamaModel model, TrainingOptions options) {
        return new FlexiDepthTrainer(model, options);
    }

    /** {@return the options every run of this trainer uses} */
    public TrainingOptions options() {
        return trainer.options();
    }

    /** Asks the running training to stop after its current step. */
    public void cancel() {
        trainer.cancel();
    }

    /**
     * Trains without progress reports; see {@link #train(TrainingData, Path, Consumer)}.
     *
     * @param data   the training text or tokens
     * @param output the plug-in file to write; its parent directories are created
     * @return the output file, the last step's progress and the time taken
     */
    public TrainingResult train(TrainingData data, Path output) {
        return train(data, output, p -> { });
    }

    /**
     * Trains and writes the plug-in to {@code output}, calling {@code progress} after every step on
     * the calling thread. Blocks until done.
     *
     * @param data     the training text or tokens
     * @param output   the plug-in file to write; its parent directories are created
     * @param progress called after every optimizer step; throwing from it cancels the run
     * @return the output file, the last step's progress and the time taken
     * @throws java.io.UncheckedIOException if the directory of {@code output} cannot be created
     * @throws TrainingCancelledException if {@link #cancel()} was called or {@code progress} threw
     *                                    (its exception is the cause)
     * @throws FlexiDepthException        if the data or options do not suit the model
     * @throws ConcurrentUseException     if this trainer is already running
     */
    public TrainingResult train(TrainingData data, Path output, Consumer<TrainingProgress> progress) {
        return trainer.train(data, output, progress);
    }

    /**
     * Trains on a new platform thread (native code pins a virtual thread's carrier anyway).
     * {@link #cancel()} stops it; cancelling the future does not.
     *
     * @param data     the training text or tokens
     * @param output   the plug-in file to write; its parent directories are created
     * @param progress called after every optimizer step, on the training thread
     * @return a future that completes with the result, or exceptionally with what
     *         {@link #train(TrainingData, Path, Consumer)} would have thrown
     */
    public CompletableFuture<TrainingResult> trainAsync(TrainingData data, Path output, Consumer<TrainingProgress> progress) {
        return trainer.trainAsync(data, output, progress);
    }

    @Override
    public String toString() {
        return "FlexiDepthTrainer[" + model.path().getFileName() + ", " + trainer.options() + "]";
    }
}
