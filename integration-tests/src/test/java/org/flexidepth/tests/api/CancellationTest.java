package org.flexidepth.tests.api;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.ModelLoadCancelledException;
import org.flexidepth.llama.ModelOptions;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.tools.RandomFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Cancelling stops a prompt's evaluation inside its decode (upstream's abort callback), leaving the
 * session as before it; model loading reports progress and can be cancelled.
 */
class CancellationTest {
    static final GenerationOptions GREEDY = GenerationOptions.builder().maxTokens(8).build();

    @Test
    void cancellingAFutureStopsThePromptInsideItsDecode(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("wide.gguf");
        // wide enough that one decode of the whole prompt (eight ubatches) takes seconds
        RandomFixtures.writeModel(file, "llama", new RandomFixtures.Shape(4, 256, 4, 2, 768, 1024, 4096), 3, GgmlType.F32);
        try (LlamaModel m = LlamaModel.load(file);
             Session s = m.newSession(SessionOptions.builder().contextSize(4096).batchSize(4096).build())) {
            String word = "w300 ";
            String prompt = word.repeat(3500 * 100 / m.tokenize(word.repeat(100), false, false).length);
            int n = m.tokenize(prompt, true, true).length;
            assertTrue(n > 3000 && n < 4096, n + " prompt tokens");
            List<Thread> worker = new ArrayList<>();
            CompletableFuture<GenerationResult> f = s.generateAsync(prompt, GREEDY, t -> { }, task -> {
                Thread t = new Thread(task, "generation");
                worker.add(t);
                t.start();
            });
            Thread t = worker.get(0);
            while (Arrays.stream(t.getStackTrace()).noneMatch(e -> e.getMethodName().equals("llama_decode"))) {
                assertTrue(t.isAlive(), "the generation ended before its prompt's decode began");
                Thread.onSpinWait();
            }
            assertTrue(f.cancel(true));
            t.join();
            assertThrows(CancellationException.class, f::join);
            assertEquals(0, s.cachedTokenCount(), "the aborted decode left nothing in the cache");

            // the session is as a fresh one: the same greedy continuation of a short prompt
            GenerationResult after = s.complete("w400 w401", GREEDY);
            try (Session fresh = m.newSession(SessionOptions.builder().contextSize(4096).batchSize(4096).build())) {
                assertEquals(RealModels.ids(fresh.complete("w400 w401", GREEDY).tokens()), RealModels.ids(after.tokens()));
            }
        }
    }

    @Test
    void loadingReportsProgressToTheEnd() {
        List<Float> seen = new ArrayList<>();
        try (LlamaModel m = LlamaModel.load(RealModels.stories260K(), ModelOptions.builder().progress(f -> seen.add(f)).build())) {
            assertTrue(seen.size() >= 2, "progress " + seen);
            for (int i = 1; i < seen.size(); i++) {
                assertTrue(seen.get(i) >= seen.get(i - 1), "progress goes forward: " + seen);
            }
            assertEquals(1f, seen.get(seen.size() - 1));
            assertTrue(m.info().layers() > 0);
        }
    }

    @Test
    void aListenerOrAnInterruptCancelsTheLoad() {
        Path model = RealModels.stories260K();
        var e = assertThrows(ModelLoadCancelledException.class,
                () -> LlamaModel.load(model, ModelOptions.builder().progress(f -> f < 0.5f).build()));
        assertTrue(e.getMessage().contains("cancelled"), e.getMessage());

        IllegalStateException thrown = new IllegalStateException("from the listener");
        assertSame(thrown, assertThrows(IllegalStateException.class,
                () -> LlamaModel.load(model, ModelOptions.builder().progress(f -> { throw thrown; }).build())),
                "what the listener throws comes out of load, and the JVM lives");

        Thread.currentThread().interrupt();
        try {
            assertThrows(ModelLoadCancelledException.class, () -> LlamaModel.load(model));
        } finally {
            assertTrue(Thread.interrupted(), "the interrupt is still set for the caller to see");
        }
        try (LlamaModel m = LlamaModel.load(model)) {
            assertFalse(m.isClosed(), "nothing was left half-loaded");
        }
    }
}
