package org.flexidepth.llama;

import org.flexidepth.llama.bindings.llama_h;

import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;

/**
 * Fine-tunes a model for direct multi-token decoding ({@link Dmtd}) with the cyclical-masking
 * objective ({@code ../shared/dmtd/SPEC.md} section 3; native trainer on ggml's optimizer, see
 * {@code native/include/llama-dmtd-train.h}): every layer trains, the embedding and the output head
 * stay frozen, and the output is a whole model file that declares its split, for
 * {@code SessionOptions.builder().dmtd(Dmtd.cycle(tau))}. The counterpart of
 * {@link FlexiDepthTrainer}: one run at a time, progress after every step, {@link #cancel()} writes
 * a checkpoint that {@link TrainingOptions#resume()} continues from. Of the options, the plug-in's
 * shape, threshold, alpha and skip family do not apply.
 *
 * <p>The model must be F32 and loaded with {@code ModelOptions.mmap(false)} and
 * {@code repackWeights(false)}: training changes its weights in place, so sessions on it see the
 * trained model; load the base again for the original.
 *
 * <pre>{@code
 * try (LlamaModel base = LlamaModel.load(path, ModelOptions.builder().mmap(false).repackWeights(false).build())) {
 *     DmtdTrainer.create(base, Dmtd.cycle(4).withThinkingLayers(8), TrainingOptions.builder().tokenBudget(1_000_000).build())
 *             .train(TrainingData.textFiles(books), Path.of("dmtd-tau4.gguf"), p -> System.out.println(p.lmLoss()));
 * }
 * }</pre>
 */
public final class DmtdTrainer {
    private final LlamaModel model;
    private final Dmtd split;
    private final NativeTrainer trainer;

    private DmtdTrainer(LlamaModel model, Dmtd split, TrainingOptions options) {
        this.model = model;
        this.split = split;
        this.trainer = new NativeTrainer(model, options, "dmtd-trainer", (arena, data, output, params) ->
                llama_h.llama_dmtd_train(model.handle(), arena.allocateFrom(model.path().toString()), data, output,
                        split.thinkingLayers(), split.cycle(), params));
    }

    /**
     * Creates a trainer, loading the native training library the first time.
     *
     * @param model   the model to fine-tune (see above); it must stay open while training runs
     * @param split   the cycle to train for and the thinking layers, which must be given
     *                ({@link Dmtd#withThinkingLayers}); the phase of training is absolute
     * @param options the optimizer, data budget and checkpoints
     * @return a trainer, reusable for one run at a time
     * @throws InvalidArgumentException if the split gives no thinking layers or a cycle below 2
     * @throws ResourceClosedException  if {@code model} is closed
     */
    public static DmtdTrainer create(LlamaModel model, Dmtd split, TrainingOptions options) {
        if (split.thinkingLayers() == 0) {
            throw new InvalidArgumentException("give the thinking layers to train (Dmtd.withThinkingLayers)");
        }
        if (split.cycle() < 2) {
            throw new InvalidArgumentException("a DMTD model is trained for a cycle of at least 2, was " + split.cycle());
        }
        return new DmtdTrainer(model, split, options);
    }

    /** {@return the split and cycle every run trains for} */
    public Dmtd split() {
        return split;
    }

    /** {@return the options every run of this trainer uses} */
    public TrainingOptions options() {
        return trainer.options();
    }

    /** Asks the running training to stop after its current step (a checkpoint is written). */
    public void cancel() {
        trainer.cancel();
    }

    /**
     * Trains and writes the model to {@code output}, calling {@code progress} after every step on
     * the calling thread ({@link TrainingProgress#meanLayers()}: the layers a token uses under the
     * schedule). Blocks until done.
     *
     * @param data     the training text or tokens
     * @param output   the model file to write; its parent directories are created
     * @param progress called after every optimizer step; throwing from it cancels the run
     * @return the output file, the last step's progress and the time taken
     * @throws TrainingCancelledException if {@link #cancel()} was called or {@code progress} threw
     * @throws FlexiDepthException        if the model, data or options do not suit DMTD training
     * @throws ConcurrentUseException     if this trainer is already running
     */
    public TrainingResult train(TrainingData data, Path output, Consumer<TrainingProgress> progress) {
        return trainer.train(data, output, progress);
    }

    /**
     * Trains on a new platform thread; {@link #cancel()} stops it.
     *
     * @param data     the training text or tokens
     * @param output   the model file to write
     * @param progress called after every optimizer step, on the training thread
     * @return a future that completes with the result, or exceptionally with what
     *         {@link #train(TrainingData, Path, Consumer)} would have thrown
     */
    public CompletableFuture<TrainingResult> trainAsync(TrainingData data, Path output, Consumer<TrainingProgress> progress) {
        return trainer.trainAsync(data, output, progress);
    }

    @Override
    public String toString() {
        return "DmtdTrainer[" + model.path().getFileName() + ", " + split + ", " + trainer.options() + "]";
    }
}
