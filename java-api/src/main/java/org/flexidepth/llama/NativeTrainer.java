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
 * One native training run at a time, what {@link FlexiDepthTrainer} and {@link DmtdTrainer} share:
 * the options as native parameters, progress after every step, cancellation from any thread
 * (which writes a checkpoint), the failure as an exception.
 */
final class NativeTrainer {
    /** The native trainer, given the data, the output path and the parameters; returns its status. */
    interface Call {
        int run(Arena arena, MemorySegment data, MemorySegment output, MemorySegment params);
    }

    private final LlamaModel model;
    private final TrainingOptions options;
    private final Call call;
    private final String threadName;
    private final AtomicBoolean running = new AtomicBoolean();
    private volatile boolean cancelRequested;

    NativeTrainer(LlamaModel model, TrainingOptions options, String threadName, Call call) {
        if (model.isClosed()) {
            throw new ResourceClosedException("model " + model.path().getFileName() + " is closed");
        }
        NativeLibrary.loadTraining();
        this.model = model;
        this.options = options;
        this.threadName = threadName;
        this.call = call;
    }

    TrainingOptions options() {
        return options;
    }

    void cancel() {
        cancelRequested = true;
    }

    TrainingResult train(TrainingData data, Path output, Consumer<TrainingProgress> progress) {
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

    CompletableFuture<TrainingResult> trainAsync(TrainingData data, Path output, Consumer<TrainingProgress> progress) {
        CompletableFuture<TrainingResult> future = new CompletableFuture<>();
        Thread.ofPlatform().name(threadName).start(() -> {
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
                int rc = call.run(arena, handle, arena.allocateFrom(output.toString()), params);
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

}
