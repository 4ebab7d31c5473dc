package org.flexidepth.llama;

import org.flexidepth.llama.bindings.llama_flexidepth_train_callback;
import org.flexidepth.llama.bindings.llama_flexidepth_train_params;
import org.flexidepth.llama.bindings.llama_flexidepth_train_progress;
import org.flexidepth.llama.bindings.llama_h;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
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
    private final TrainingOptions options;
    private final AtomicBoolean running = new AtomicBoolean();
    private volatile boolean cancelRequested;

    private FlexiDepthTrainer(LlamaModel model, TrainingOptions options) {
        this.model = model;
        this.options = options;
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
        if (model.isClosed()) {
            throw new ResourceClosedException("model " + model.path().getFileName() + " is closed");
        }
        NativeLibrary.loadTraining();
        return new FlexiDepthTrainer(model, options);
    }

    /** {@return the options every run of this trainer uses} */
    public TrainingOptions options() {
        return options;
    }

    /** Asks the running training to stop after its current step. */
    public void cancel() {
        cancelRequested = true;
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
        if (!running.compareAndSet(false, true)) {
            throw new ConcurrentUseException("this trainer is already running");
        }
        cancelRequested = false;
        try {
            Path parent = output.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            return model.read(() -> run(data, output, progress));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the directory of " + output, e);
        } finally {
            running.set(false);
        }
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
        CompletableFuture<TrainingResult> future = new CompletableFuture<>();
        Thread.ofPlatform().name("flexidepth-trainer").start(() -> {
            try {
                future.complete(train(data, output, progress));
            } catch (Throwable t) {
                future.completeExceptionally(t);
            }
        });
        return future;
    }

    private TrainingResult run(TrainingData data, Path output, Consumer<TrainingProgress> progress) {
        long started = System.nanoTime();
        Path checkpoint = options.checkpoint().orElse(Path.of(output + ".checkpoint"));
        TrainingProgress[] last = new TrainingProgress[1];
        Throwable[] listenerFailure = new Throwable[1];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment handle = data.load(model, arena);
            try {
                // an exception must not unwind through native frames: keep it and cancel instead
                MemorySegment callback = llama_flexidepth_train_callback.allocate((p, ud) -> {
                    try {
                        TrainingProgress tp = progressOf(p.reinterpret(llama_flexidepth_train_progress.layout().byteSize()));
                        last[0] = tp;
                        progress.accept(tp);
                        return !cancelRequested;
                    } catch (Throwable t) {
                        listenerFailure[0] = t;
                        return false;
                    }
                }, arena);
                MemorySegment params = nativeParams(arena, callback);
                int rc = llama_h.llama_flexidepth_train(model.handle(), handle, arena.allocateFrom(output.toString()), params);
                if (rc == llama_h.LLAMA_FLEXIDEPTH_ERR_CANCELLED()) {
                    String message = llama_h.llama_flexidepth_last_error().getString(0);
                    TrainingCancelledException e = new TrainingCancelledException(message, checkpoint);
                    if (listenerFailure[0] != null) {
                        e.initCause(listenerFailure[0]);
                    }
                    throw e;
                }
                if (rc != 0) {
                    throw new FlexiDepthException(FlexiDepthException.Reason.of(rc),
                            "training failed: " + llama_h.llama_flexidepth_last_error().getString(0));
                }
            } finally {
                llama_h.llama_flexidepth_train_data_free(handle);
            }
        }
        return new TrainingResult(output, Optional.ofNullable(last[0]), Duration.ofNanos(System.nanoTime() - started));
    }

    private MemorySegment nativeParams(Arena arena, MemorySegment callback) {
        MemorySegment p = llama_h.llama_flexidepth_train_default_params(arena);
        if (!options.routedLayers().isEmpty()) {
            int[] layers = options.routedLayers().stream().mapToInt(Integer::intValue).toArray();
            llama_flexidepth_train_params.routed_layers(p, arena.allocateFrom(ValueLayout.JAVA_INT, layers));
            llama_flexidepth_train_params.n_routed_layers(p, layers.length);
        }
        llama_flexidepth_train_params.router_size(p, options.routerSize());
        llama_flexidepth_train_params.adapter_size(p, options.adapterSize());
        llama_flexidepth_train_params.skip(p, options.skipFamily().nativeValue());
        llama_flexidepth_train_params.threshold(p, options.threshold());
        llama_flexidepth_train_params.init_router_bias(p, options.initialRouterBias());
        llama_flexidepth_train_params.alpha(p, options.alpha());
        llama_flexidepth_train_params.learning_rate(p, options.learningRate());
        llama_flexidepth_train_params.min_lr_ratio(p, options.minLearningRateRatio());
        llama_flexidepth_train_params.weight_decay(p, options.weightDecay());
        llama_flexidepth_train_params.warmup_steps(p, options.warmupSteps());
        llama_flexidepth_train_params.n_ctx(p, options.contextLength());
        llama_flexidepth_train_params.n_epochs(p, options.epochs());
        llama_flexidepth_train_params.token_budget(p, options.tokenBudget());
        llama_flexidepth_train_params.seed(p, options.seed());
        llama_flexidepth_train_params.n_threads(p, options.threads());
        // unnamed, the native default (the same path) is removed once the output is written
        options.checkpoint().ifPresent(c -> llama_flexidepth_train_params.checkpoint_path(p, arena.allocateFrom(c.toString())));
        llama_flexidepth_train_params.checkpoint_every(p, options.checkpointEvery());
        llama_flexidepth_train_params.resume(p, options.resume());
        llama_flexidepth_train_params.callback(p, callback);
        return p;
    }

    private static TrainingProgress progressOf(MemorySegment p) {
        return new TrainingProgress(
                llama_flexidepth_train_progress.step(p),
                llama_flexidepth_train_progress.n_steps(p),
                llama_flexidepth_train_progress.n_tokens_done(p),
                llama_flexidepth_train_progress.loss_lm(p),
                llama_flexidepth_train_progress.loss_skip(p),
                llama_flexidepth_train_progress.mean_layers(p),
                llama_flexidepth_train_progress.learning_rate(p),
                llama_flexidepth_train_progress.tokens_per_second(p),
                Duration.ofMillis(Math.round(llama_flexidepth_train_progress.eta_seconds(p) * 1000)));
    }

    @Override
    public String toString() {
        return "FlexiDepthTrainer[" + model.path().getFileName() + ", " + options + "]";
    }
}
