package org.flexidepth.tests.engine;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.llama.BatchEngine;
import org.flexidepth.llama.BatchEngineOptions;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.QueueFullException;
import org.flexidepth.llama.ResourceClosedException;
import org.flexidepth.llama.Sampling;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.StopReason;
import org.flexidepth.llama.Token;
import org.flexidepth.tests.api.RealModels;
import org.flexidepth.tools.RandomFixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The batch engine (continuous batching): requests decoded together give, token for token, what
 * the pristine library gives each alone; prefixes are reused per slot; the queue is bounded;
 * cancelling ends one request only; a plug-in reports layers per request.
 */
class BatchEngineTest {
    static final List<String> PROMPTS = List.of("Once upon a time", "The little dog", "Lily and Tom went to the park.",
            "One day, a girl named Sue", "The sun was hot and", "Tim had a red ball. He");
    static final int N = 20;
    static final GenerationOptions GREEDY = GenerationOptions.builder().maxTokens(N).build();
    static Path modelFile;
    static LlamaModel model;

    @BeforeAll
    static void load() {
        modelFile = RealModels.stories260K();
        model = LlamaModel.load(modelFile);
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    static int[] ids(GenerationResult r) {
        return r.tokens().stream().mapToInt(Token::id).toArray();
    }

    @Test
    void requestsDecodedTogetherGiveWhatEachGivesAlone() throws Exception {
        try (BatchEngine e = model.newBatchEngine(BatchEngineOptions.builder().slots(4).contextPerSlot(256).batchSize(64).build())) {
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (String p : PROMPTS) {
                futures.add(e.submit(p, GREEDY, t -> { }));
            }
            for (int i = 0; i < PROMPTS.size(); i++) {
                GenerationResult r = futures.get(i).join();
                assertArrayEquals(RealModels.referenceGreedy(modelFile, N, PROMPTS.get(i)), ids(r), PROMPTS.get(i));
                assertEquals(r.text(), String.join("", r.tokens().stream().map(Token::text).toList()));
            }
            BatchEngine.Stats s = e.stats();
            assertTrue(s.decodes() < (long) PROMPTS.size() * N, "tokens of several requests share decodes: " + s);
            assertEquals((long) PROMPTS.size() * N, s.generatedTokens());
        }
    }

    @Test
    void aSlotReusesTheLongestCommonPrefix() {
        try (BatchEngine e = model.newBatchEngine(BatchEngineOptions.builder().slots(2).contextPerSlot(256).build())) {
            String first = "Once upon a time, there was a little girl named Lily.";
            GenerationResult a = e.submit(first, GREEDY, t -> { }).join();
            e.submit("Tom liked to run.", GREEDY, t -> { }).join();
            GenerationResult b = e.submit(first + " She liked to play.", GREEDY, t -> { }).join();
            assertTrue(b.stats().reusedTokens() >= a.stats().promptTokens() - 1, b.stats() + " after " + a.stats());
            try (Session s = model.newSession()) {
                assertEquals(RealModels.ids(s.complete(first + " She liked to play.", GREEDY).tokens()), RealModels.ids(b.tokens()));
            }
        }
    }

    @Test
    void aFullQueueRefusesAndCancellingEndsOneRequest() throws Exception {
        try (BatchEngine e = model.newBatchEngine(BatchEngineOptions.builder().slots(1).queueCapacity(1).contextPerSlot(256).build())) {
            CountDownLatch release = new CountDownLatch(1);
            CountDownLatch started = new CountDownLatch(1);
            CompletableFuture<GenerationResult> held = e.submit("Once upon a time", GREEDY, t -> {
                started.countDown();
                try {
                    release.await(); // holds the engine's thread, so the slot stays busy
                } catch (InterruptedException x) {
                    Thread.currentThread().interrupt();
                }
            });
            started.await();
            CompletableFuture<GenerationResult> waiting = e.submit("The little dog", GREEDY, t -> { });
            assertThrows(QueueFullException.class, () -> e.submit("The sun", GREEDY, t -> { }));
            assertTrue(held.cancel(true));
            release.countDown();
            assertThrows(CancellationException.class, held::join);
            GenerationResult r = waiting.join();
            assertArrayEquals(RealModels.referenceGreedy(modelFile, N, "The little dog"), ids(r), "the next request is unaffected");

            AtomicInteger seen = new AtomicInteger();
            CompletableFuture<GenerationResult>[] self = new CompletableFuture[1];
            self[0] = e.submit("Lily and Tom", GREEDY.toBuilder().maxTokens(200).build(), t -> {
                if (seen.incrementAndGet() == 3) {
                    self[0].cancel(true);
                }
            });
            assertThrows(CancellationException.class, () -> self[0].join());
            assertTrue(seen.get() <= 4, "stopped at the next step: " + seen.get());
            assertEquals(N, e.submit("Once upon a time", GREEDY, t -> { }).join().tokens().size(), "the slot is free again");
        }
    }

    @Test
    void eachRequestHasItsOwnSamplingAndStops() {
        try (BatchEngine e = model.newBatchEngine(BatchEngineOptions.builder().slots(3).contextPerSlot(256).build())) {
            var digits = e.submit("Once upon a time", GenerationOptions.builder().maxTokens(12)
                    .sampling(Sampling.builder().grammar("root ::= [0-9]+").build()).build(), t -> { });
            var greedy = e.submit("Once upon a time", GREEDY, t -> { });
            var stopped = e.submit("Once upon a time", GREEDY.toBuilder().stopString("was").build(), t -> { });
            assertTrue(digits.join().text().matches("[0-9]+"), digits.join().text());
            String text = greedy.join().text();
            assertTrue(text.contains("was"), text);
            assertEquals(StopReason.STOP_STRING, stopped.join().stopReason());
            assertEquals(text.substring(0, text.indexOf("was")), stopped.join().text());
        }
    }

    @Test
    void aPluginReportsLayersPerRequestAndDecodesAsASession(@TempDir Path dir) throws Exception {
        Path plugin = dir.resolve("plugin.gguf");
        RandomFixtures.writePlugin(plugin, new RandomFixtures.Shape(5, 64, 8, 4, 172, 512, 512), 3, List.of(2, 3, 4), 8, 8, 0.5f, null, GgmlType.F32);
        try (FlexiDepthPlugin p = model.loadFlexiDepth(plugin);
             BatchEngine e = model.newBatchEngine(BatchEngineOptions.builder().slots(3).contextPerSlot(256).flexiDepth(p, 0.5f).build());
             Session s = model.newSession()) {
            s.attach(p, 0.5f);
            List<CompletableFuture<GenerationResult>> futures = PROMPTS.subList(0, 3).stream().map(q -> e.submit(q, GREEDY, t -> { })).toList();
            for (int i = 0; i < 3; i++) {
                GenerationResult r = futures.get(i).join();
                GenerationResult alone = s.complete(PROMPTS.get(i), GREEDY);
                assertEquals(RealModels.ids(alone.tokens()), RealModels.ids(r.tokens()), PROMPTS.get(i));
                assertTrue(r.stats().layers().isPresent());
                assertEquals(alone.stats().layers().get().meanLayers(), r.stats().layers().get().meanLayers(), 1e-9,
                        "the same layers per token as the session");
            }
            assertTrue(e.stats().meanLayers() < model.info().layers(), "some layers were skipped: " + e.stats());
        }
    }

    @Test
    void closingFinishesWhatIsInFlight() {
        BatchEngine e = model.newBatchEngine(BatchEngineOptions.builder().slots(2).contextPerSlot(256).build());
        List<CompletableFuture<GenerationResult>> futures = PROMPTS.stream().map(p -> e.submit(p, GREEDY, t -> { })).toList();
        e.close();
        futures.forEach(f -> assertEquals(N, f.join().tokens().size()));
        assertThrows(ResourceClosedException.class, () -> e.submit("x", GREEDY, t -> { }));
    }
}
