package org.flexidepth.tests.api;

import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Sampling;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.StopReason;
import org.flexidepth.llama.Token;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** generateAsync and publish give what the synchronous API gives, on other threads, and stop when cancelled. */
class AsyncGenerationTest {
    static final GenerationOptions OPTIONS = GenerationOptions.builder().maxTokens(40)
            .sampling(Sampling.builder().seed(3).build()).build();

    @Test
    void aFutureCompletesWithTheSynchronousResult() throws Exception {
        try (LlamaModel m = LlamaModel.load(RealModels.stories260K()); Session s = m.newSession()) {
            GenerationResult sync = s.complete("Once upon a time", OPTIONS);
            s.clear();
            List<Token> streamed = new ArrayList<>();
            var executor = Executors.newSingleThreadExecutor();
            try {
                GenerationResult async = s.generateAsync("Once upon a time", OPTIONS, streamed::add, executor).get(60, TimeUnit.SECONDS);
                assertEquals(sync.text(), async.text());
                assertEquals(RealModels.ids(sync.tokens()), RealModels.ids(streamed));
            } finally {
                executor.shutdown();
            }
            // the session is this thread's again
            s.clear();
            assertEquals(sync.text(), s.complete("Once upon a time", OPTIONS).text());
        }
    }

    @Test
    void cancellingTheFutureStopsTheGeneration() throws Exception {
        try (LlamaModel m = LlamaModel.load(RealModels.stories260K()); Session s = m.newSession()) {
            CountDownLatch first = new CountDownLatch(1);
            CountDownLatch release = new CountDownLatch(1);
            List<Token> got = new ArrayList<>();
            CompletableFuture<GenerationResult> f = s.generateAsync("Once upon a time",
                    GenerationOptions.builder().maxTokens(200).build(), t -> {
                        got.add(t);
                        first.countDown();
                        try {
                            release.await();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    }, Executors.newVirtualThreadPerTaskExecutor());
            assertTrue(first.await(60, TimeUnit.SECONDS));
            f.cancel(true);
            release.countDown();
            assertThrows(CancellationException.class, f::get);
            // the generation ends within a token of the cancel, and the session is usable again
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (true) {
                try {
                    s.clear();
                    break;
                } catch (org.flexidepth.llama.ConcurrentUseException e) {
                    assertTrue(System.nanoTime() < deadline, "the generation did not stop");
                    Thread.sleep(10);
                }
            }
            assertTrue(got.size() <= 2, "tokens after the cancel: " + got.size());
        }
    }

    @Test
    void aFailureFailsTheFuture() {
        try (LlamaModel m = LlamaModel.load(RealModels.stories260K()); Session s = m.newSession()) {
            CompletableFuture<GenerationResult> f = s.generateAsync("x ".repeat(5000), OPTIONS);
            ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(60, TimeUnit.SECONDS));
            assertTrue(e.getCause() instanceof org.flexidepth.llama.ContextFullException, e.getCause().toString());
        }
    }

    @Test
    void aPublisherEmitsOnDemandAndStopsOnCancel() throws Exception {
        try (LlamaModel m = LlamaModel.load(RealModels.stories260K()); Session s = m.newSession()) {
            GenerationResult sync = s.complete("Once upon a time", OPTIONS);
            s.clear();
            List<Token> got = new ArrayList<>();
            CountDownLatch done = new CountDownLatch(1);
            s.publish("Once upon a time", OPTIONS).subscribe(new Flow.Subscriber<>() {
                Flow.Subscription sub;

                public void onSubscribe(Flow.Subscription subscription) {
                    sub = subscription;
                    sub.request(1);
                }

                public void onNext(Token item) {
                    got.add(item);
                    sub.request(1); // one at a time: backpressure
                }

                public void onError(Throwable t) {
                    done.countDown();
                }

                public void onComplete() {
                    done.countDown();
                }
            });
            assertTrue(done.await(60, TimeUnit.SECONDS));
            assertEquals(RealModels.ids(sync.tokens()), RealModels.ids(got));

            s.clear();
            List<Token> few = new ArrayList<>();
            CountDownLatch cancelled = new CountDownLatch(1);
            s.publish("Once upon a time", GenerationOptions.builder().maxTokens(200).build()).subscribe(new Flow.Subscriber<>() {
                Flow.Subscription sub;

                public void onSubscribe(Flow.Subscription subscription) {
                    sub = subscription;
                    sub.request(3);
                }

                public void onNext(Token item) {
                    few.add(item);
                    if (few.size() == 3) {
                        sub.cancel();
                        cancelled.countDown();
                    }
                }

                public void onError(Throwable t) {
                }

                public void onComplete() {
                }
            });
            assertTrue(cancelled.await(60, TimeUnit.SECONDS));
            Thread.sleep(200);
            assertEquals(3, few.size(), "no token after the cancel");
        }
    }

    @Test
    void anInterruptedThreadStopsGenerating() throws Exception {
        try (LlamaModel m = LlamaModel.load(RealModels.stories260K()); Session s = m.newSession()) {
            List<StopReason> reason = new ArrayList<>();
            Thread t = Thread.ofPlatform().start(() -> {
                try (var g = s.generate("Once upon a time", GenerationOptions.builder().maxTokens(200).build())) {
                    g.next();
                    Thread.currentThread().interrupt();
                    while (g.hasNext()) {
                        g.next();
                    }
                    reason.add(g.stopReason().orElseThrow());
                }
            });
            t.join(60_000);
            assertEquals(List.of(StopReason.CANCELLED), reason);
        }
    }
}
