package org.flexidepth.llama;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Runs a generation on another thread, for {@link Session#generateAsync} and
 * {@link Session#publish}: the generation is started on that thread, which is then the one using
 * the session until the generation ends.
 */
final class AsyncGeneration {
    private AsyncGeneration() {
    }

    /** A thread per generation: decoding blocks in native code for its whole length. */
    static final Executor THREAD_PER_GENERATION = task -> Thread.ofPlatform().daemon().name("flexillama-generation").start(task);

    /**
     * @param start      starts the generation (evaluates its prompt) on the executor's thread
     * @param abortStart stops that prompt evaluation from another thread
     */
    static CompletableFuture<GenerationResult> run(Supplier<Generation> start, Runnable abortStart, Consumer<Token> onToken,
                                                   Executor executor) {
        CompletableFuture<GenerationResult> future = new CompletableFuture<>();
        AtomicReference<Generation> running = new AtomicReference<>();
        AtomicBoolean starting = new AtomicBoolean();
        executor.execute(() -> {
            if (future.isDone()) {
                return; // cancelled before it started
            }
            starting.set(true);
            try (Generation g = start.get()) {
                running.set(g);
                if (future.isDone()) {
                    g.cancel(); // cancelled before it started
                }
                while (g.hasNext()) {
                    onToken.accept(g.next());
                }
                future.complete(g.result());
            } catch (Throwable t) {
                future.completeExceptionally(t);
            }
        });
        future.whenComplete((r, e) -> {
            Generation g = running.get();
            if (future.isCancelled() && g != null) {
                g.cancel();
            } else if (future.isCancelled() && starting.get()) {
                abortStart.run(); // the prompt is being evaluated
            }
        });
        return future;
    }

    /** A publisher of one generation's tokens to one subscriber, each token generated on demand. */
    static Flow.Publisher<Token> publisher(Supplier<Generation> start, Runnable abortStart, Executor executor) {
        AtomicBoolean subscribed = new AtomicBoolean();
        return subscriber -> {
            if (!subscribed.compareAndSet(false, true)) {
                subscriber.onSubscribe(new Flow.Subscription() {
                    public void request(long n) { }
                    public void cancel() { }
                });
                subscriber.onError(new IllegalStateException("a generation's tokens go to one subscriber; publish again for another"));
                return;
            }
            new Emitter(start, abortStart, subscriber, executor).begin();
        };
    }

    private static final class Emitter implements Flow.Subscription {
        private final Supplier<Generation> start;
        private final Runnable abortStart;
        private final Flow.Subscriber<? super Token> subscriber;
        private final Executor executor;
        private final AtomicLong demand = new AtomicLong();
        private volatile boolean cancelled;
        private volatile Generation generation;
        private volatile boolean starting;

        Emitter(Supplier<Generation> start, Runnable abortStart, Flow.Subscriber<? super Token> subscriber, Executor executor) {
            this.start = start;
            this.abortStart = abortStart;
            this.subscriber = subscriber;
            this.executor = executor;
        }

        void begin() {
            subscriber.onSubscribe(this);
            executor.execute(this::emit);
        }

        private void emit() {
            if (cancelled) {
                return;
            }
            starting = true;
            try (Generation g = start.get()) {
                generation = g;
                while (!cancelled) {
                    synchronized (this) {
                        while (demand.get() == 0 && !cancelled) {
                            wait();
                        }
                    }
                    if (cancelled || !g.hasNext()) {
                        break;
                    }
                    demand.decrementAndGet();
                    subscriber.onNext(g.next());
                }
                if (cancelled) {
                    g.cancel();
                } else {
                    subscriber.onComplete();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                subscriber.onError(e);
            } catch (Throwable t) {
                if (!cancelled) {
                    subscriber.onError(t);
                }
            }
        }

        @Override
        public void request(long n) {
            if (n <= 0) {
                cancel();
                subscriber.onError(new IllegalArgumentException("request(" + n + "): demand must be positive (Flow rule 3.9)"));
                return;
            }
            demand.accumulateAndGet(n, (a, b) -> a + b < 0 ? Long.MAX_VALUE : a + b);
            synchronized (this) {
                notifyAll();
            }
        }

        @Override
        public void cancel() {
            cancelled = true;
            Generation g = generation;
            if (g != null) {
                g.cancel();
            } else if (starting) {
                abortStart.run();
            }
            synchronized (this) {
                notifyAll();
            }
        }
    }
}
