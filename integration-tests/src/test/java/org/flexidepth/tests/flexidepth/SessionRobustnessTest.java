package org.flexidepth.tests.flexidepth;

import org.flexidepth.tools.RandomFixtures;

import org.flexidepth.tools.ProjectPaths;
import org.flexidepth.gguf.GgmlType;
import org.flexidepth.llama.CachePolicy;
import org.flexidepth.llama.DecodeException;
import org.flexidepth.llama.FlexiDepthException;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.Generation;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.InvalidArgumentException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.ModelLoadException;
import org.flexidepth.llama.ResourceClosedException;
import org.flexidepth.llama.Sampling;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.llama.SessionState;
import org.flexidepth.llama.StopReason;
import org.flexidepth.llama.Token;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a caller can do wrong or at the wrong time, through the public API: closing things from
 * other threads, NaN weights, routing changes, foreign states, grammars that admit nothing, bad text.
 * Each case crashed the JVM, corrupted the session or gave an unclear error before it was fixed.
 */
class SessionRobustnessTest {
    static final RandomFixtures.Shape SHAPE = FlexiDepthSessionTest.SHAPE;
    static final List<Integer> ROUTED = FlexiDepthSessionTest.ROUTED;
    static final int[] PROMPT = FlexiDepthSessionTest.PROMPT;
    static final GenerationOptions TEN = GenerationOptions.builder().maxTokens(10).build();

    @TempDir
    static Path dir;
    static Path modelPath, q8Path, pluginPath;

    @BeforeAll
    static void fixtures() throws IOException {
        modelPath = dir.resolve("model.gguf");
        q8Path = dir.resolve("model-q8.gguf");
        pluginPath = dir.resolve("plugin.gguf");
        RandomFixtures.writeModel(modelPath, SHAPE, 11, GgmlType.F32);
        RandomFixtures.writeModel(q8Path, SHAPE, 11, GgmlType.Q8_0);
        RandomFixtures.writePlugin(pluginPath, SHAPE, 17, ROUTED, 8, 16, 0.5f, null, GgmlType.F32);
    }

    private static List<Integer> ids(GenerationResult r) {
        return r.tokens().stream().map(Token::id).toList();
    }

    private static List<Integer> fresh(LlamaModel model, FlexiDepthPlugin plugin, float tau, int[] prompt) {
        try (Session s = model.newSession()) {
            if (plugin != null) {
                s.attach(plugin, tau);
            }
            return ids(s.generate(prompt, TEN).result());
        }
    }

    // ---- closing from other threads, in any order ----

    @Test
    void closingAPluginWhileAnotherThreadDecodesWaitsAndDetachesIt() throws Exception {
        try (LlamaModel model = LlamaModel.load(modelPath)) {
            List<Integer> base = fresh(model, null, 0, PROMPT);
            for (int round = 0; round < 5; round++) {
                FlexiDepthPlugin plugin = model.loadFlexiDepth(pluginPath);
                try (Session s = model.newSession()) {
                    s.attach(plugin, 0.5f);
                    CountDownLatch started = new CountDownLatch(1);
                    AtomicReference<GenerationResult> result = new AtomicReference<>();
                    AtomicReference<Throwable> failure = new AtomicReference<>();
                    Thread decoder = new Thread(() -> {
                        try (Generation g = s.generate(PROMPT, GenerationOptions.builder().maxTokens(400).build())) {
                            g.forEachRemaining(t -> started.countDown());
                            result.set(g.result());
                        } catch (Throwable t) {
                            failure.set(t);
                        }
                    });
                    decoder.start();
                    assertTrue(started.await(30, TimeUnit.SECONDS));
                    plugin.close(); // used to kill the JVM in ggml_compute_forward_get_rows
                    decoder.join(60_000);
                    assertEquals(null, failure.get());
                    assertEquals(StopReason.CANCELLED, result.get().stopReason(), "the generation ends when its plug-in goes");
                    assertTrue(s.attachedPlugin().isEmpty());
                    assertEquals(0, s.cachedTokenCount(), "the cache computed with the plug-in is gone");
                    assertEquals(base, ids(s.generate(PROMPT, TEN).result()), "the session computes the base model again");
                }
            }
        }
    }

    @Test
    void closingTheModelWhileAnotherThreadDecodesClosesEverything() throws Exception {
        for (int round = 0; round < 3; round++) {
            LlamaModel model = LlamaModel.load(modelPath);
            FlexiDepthPlugin plugin = model.loadFlexiDepth(pluginPath);
            Session s = model.newSession();
            s.attach(plugin, 0.5f);
            CountDownLatch started = new CountDownLatch(1);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            AtomicReference<StopReason> reason = new AtomicReference<>();
            Thread decoder = new Thread(() -> {
                try (Generation g = s.generate(PROMPT, GenerationOptions.builder().maxTokens(400).build())) {
                    g.forEachRemaining(t -> started.countDown());
                    reason.set(g.stopReason().orElseThrow());
                    s.generate(PROMPT, TEN);
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            decoder.start();
            assertTrue(started.await(30, TimeUnit.SECONDS));
            model.close();
            decoder.join(60_000);
            // the generation either sees its end (cancelled) or, if it was between tokens, the closed session
            assertTrue(reason.get() == null || reason.get() == StopReason.CANCELLED, String.valueOf(reason.get()));
            assertTrue(failure.get() instanceof ResourceClosedException, String.valueOf(failure.get()));
            assertTrue(s.isClosed() && plugin.isClosed() && model.isClosed());
            plugin.close(); // after its model: a no-op, no exception, nothing leaked
            s.close();
        }
    }

    @Test
    void closingInEveryOrderIsSafe() {
        for (int order = 0; order < 6; order++) {
            LlamaModel model = LlamaModel.load(modelPath);
            FlexiDepthPlugin plugin = model.loadFlexiDepth(pluginPath);
            Session session = model.newSession();
            session.attach(plugin, 0.5f);
            session.complete("w1 w2", TEN);
            List<AutoCloseable> all = List.of(model, plugin, session);
            int[][] perms = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
            for (int i : perms[order]) {
                try {
                    all.get(i).close();
                } catch (Exception e) {
                    throw new AssertionError("closing " + all.get(i) + " in order " + Arrays.toString(perms[order]), e);
                }
            }
            assertTrue(model.isClosed() && plugin.isClosed() && session.isClosed());
            assertThrows(ResourceClosedException.class, () -> session.complete("w1", TEN));
            assertThrows(ResourceClosedException.class, () -> model.loadFlexiDepth(pluginPath));
        }
    }

    // ---- NaN and Inf ----

    @Test
    void pluginsWithNaNOrInfWeightsAreRefusedNamingTheTensor() throws IOException {
        Path nan = GgufEdit.pokeFloat(Files.copy(pluginPath, dir.resolve("nan.gguf")), "blk.2.fd_router_head.weight", 5, Float.NaN);
        Path inf = GgufEdit.pokeFloat(Files.copy(pluginPath, dir.resolve("inf.gguf")), "blk.3.fd_adapter_down.weight", 7,
                Float.NEGATIVE_INFINITY);
        try (LlamaModel model = LlamaModel.load(modelPath)) {
            var e = assertThrows(FlexiDepthException.class, () -> model.loadFlexiDepth(nan));
            assertEquals(FlexiDepthException.Reason.TENSOR, e.reason());
            assertTrue(e.getMessage().contains("blk.2.fd_router_head.weight") && e.getMessage().contains("NaN"), e.getMessage());
            var f = assertThrows(FlexiDepthException.class, () -> model.loadFlexiDepth(inf));
            assertTrue(f.getMessage().contains("blk.3.fd_adapter_down.weight"), f.getMessage());
        }
    }

    /** A model whose embedding of one token is NaN: any text with that token decodes to NaN logits. */
    @Test
    void nonFiniteLogitsRaiseDecodeExceptionAndLeaveTheCacheAsItWas() throws IOException {
        int poisoned = SHAPE.vocab() - 1;
        try (LlamaModel clean = LlamaModel.load(modelPath); FlexiDepthPlugin plugin = clean.loadFlexiDepth(pluginPath)) {
            List<Integer> generated = new java.util.ArrayList<>(fresh(clean, null, 0, PROMPT));
            generated.addAll(fresh(clean, plugin, 0.5f, PROMPT));
            while (generated.contains(poisoned)) {
                poisoned--; // a token neither reply contains, so that only the bad prompt meets it
            }
        }
        Path nanModel = dir.resolve("nan-model.gguf");
        Files.copy(modelPath, nanModel);
        GgufEdit.pokeFloat(nanModel, "token_embd.weight", (long) poisoned * SHAPE.embd() + 3, Float.NaN);
        try (LlamaModel model = LlamaModel.load(nanModel); FlexiDepthPlugin plugin = model.loadFlexiDepth(pluginPath)) {
            for (FlexiDepthPlugin p : Arrays.asList(null, plugin)) {
                try (Session s = model.newSession(SessionOptions.builder().contextSize(256).batchSize(4).build())) {
                    if (p != null) {
                        s.attach(p, 0.5f);
                    }
                    List<Integer> first = ids(s.generate(PROMPT, TEN).result());
                    int[] before = s.cachedTokens();
                    int[] bad = Arrays.copyOf(PROMPT, PROMPT.length + 3);
                    bad[PROMPT.length] = 306;
                    bad[PROMPT.length + 1] = poisoned;
                    bad[PROMPT.length + 2] = 307;
                    var e = assertThrows(DecodeException.class, () -> s.generate(bad, TEN));
                    assertTrue(e.getMessage().contains("not finite"), e.getMessage());
                    assertArrayEquals(before, s.cachedTokens(), "the cache holds what it held before the call");
                    assertThrows(DecodeException.class, () -> s.score(bad));
                    assertArrayEquals(before, s.cachedTokens());
                    // the K/V are intact, not NaN: the same prompt gives the same reply, reusing the cache
                    GenerationResult again = s.generate(PROMPT, TEN).result();
                    assertEquals(first, ids(again));
                    assertEquals(PROMPT.length - 1, again.stats().reusedTokens());
                    assertTrue(again.tokens().stream().allMatch(t -> Float.isFinite(t.logProbability())));
                }
            }
        }
    }

    /**
     * NaN logits while generating: the clean model's third reply token is poisoned, so the prompt
     * and the first two generated tokens decode, and decoding the third fails. The cache must then
     * hold what it held before that token (the generated-token path restores it without a copy),
     * with intact K/V: continuing from there samples the same third token, with a finite probability.
     */
    @Test
    void nonFiniteLogitsWhileGeneratingLeaveTheCacheAsBeforeTheToken() throws IOException {
        List<Integer> reply;
        try (LlamaModel clean = LlamaModel.load(modelPath)) {
            reply = fresh(clean, null, 0, PROMPT);
        }
        int poisoned = reply.get(2);
        org.junit.jupiter.api.Assumptions.assumeFalse(Arrays.stream(PROMPT).anyMatch(t -> t == poisoned)
                || reply.subList(0, 2).contains(poisoned), "the third token must be new to the text before it");
        Path nanModel = dir.resolve("nan-third-token.gguf");
        Files.copy(modelPath, nanModel, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        GgufEdit.pokeFloat(nanModel, "token_embd.weight", (long) poisoned * SHAPE.embd() + 3, Float.NaN);
        try (LlamaModel model = LlamaModel.load(nanModel); Session s = model.newSession()) {
            var e = assertThrows(DecodeException.class, () -> s.generate(PROMPT, TEN).result());
            assertTrue(e.getMessage().contains("not finite"), e.getMessage());
            int[] expected = java.util.stream.IntStream.concat(Arrays.stream(PROMPT), reply.subList(0, 2).stream().mapToInt(i -> i)).toArray();
            assertArrayEquals(expected, s.cachedTokens(), "the cache holds the prompt and the two tokens decoded before");
            GenerationResult next = s.generate(expected, GenerationOptions.builder().maxTokens(1).build()).result();
            assertEquals(List.of(poisoned), ids(next));
            assertTrue(Float.isFinite(next.tokens().getFirst().logProbability()));
            assertEquals(expected.length - 1, next.stats().reusedTokens());
        }
    }

    // ---- routing changes never reuse cache entries silently ----

    @Test
    void attachDetachAndThresholdChangesDoNotReuseTheCache() {
        try (LlamaModel model = LlamaModel.load(modelPath); FlexiDepthPlugin plugin = model.loadFlexiDepth(pluginPath);
             Session s = model.newSession()) {
            List<Integer> base = fresh(model, null, 0, PROMPT);
            List<Integer> at05 = fresh(model, plugin, 0.5f, PROMPT);
            List<Integer> at1 = fresh(model, plugin, 1f, PROMPT);
            assertNotEquals(base, at05, "the plug-in changes the reply (otherwise this test proves nothing)");
            assertNotEquals(at05, at1);

            assertEquals(base, ids(s.generate(PROMPT, TEN).result()));
            s.attach(plugin, 0.5f);
            assertEquals(0, s.cachedTokenCount());
            assertEquals(at05, ids(s.generate(PROMPT, TEN).result()));
            s.setThreshold(1f);
            assertEquals(at1, ids(s.generate(PROMPT, TEN).result()));
            s.detach();
            assertEquals(base, ids(s.generate(PROMPT, TEN).result()), "detach: the base model's reply, not one from the plug-in's K/V");
            s.attach(plugin, 0.5f);
            s.forceRouting(java.util.Map.of(2, false));
            assertEquals(0, s.cachedTokenCount());

            // keeping the cache is possible, when asked for
            s.releaseRouting();
            s.generate(PROMPT, TEN).result();
            int cached = s.cachedTokenCount();
            s.setThreshold(0.3f, CachePolicy.KEEP);
            assertEquals(cached, s.cachedTokenCount());
            s.detach(CachePolicy.KEEP);
            assertEquals(cached, s.cachedTokenCount());
        }
    }

    // ---- states carry what they were computed with ----

    @Test
    void statesRestoreOnlyIntoTheSameModelAndRouting() throws IOException {
        try (LlamaModel f32 = LlamaModel.load(modelPath); LlamaModel q8 = LlamaModel.load(q8Path);
             LlamaModel f32again = LlamaModel.load(modelPath); FlexiDepthPlugin plugin = f32.loadFlexiDepth(pluginPath)) {
            SessionState state;
            Path file = dir.resolve("state.bin");
            try (Session s = f32.newSession()) {
                s.generate(PROMPT, TEN).result();
                state = s.saveState();
                s.saveState(file);
                assertEquals("the base model", state.routing());
            }
            try (Session other = q8.newSession()) {
                var e = assertThrows(InvalidArgumentException.class, () -> other.restoreState(state));
                assertTrue(e.getMessage().contains("another model"), e.getMessage());
                assertThrows(InvalidArgumentException.class, () -> other.restoreState(file));
                assertEquals(0, other.cachedTokenCount());
            }
            try (Session same = f32again.newSession()) {
                same.restoreState(file); // the same file, loaded again
                assertArrayEquals(state.tokens(), same.cachedTokens());
            }
            try (Session routed = f32.newSession()) {
                routed.attach(plugin, 0.5f);
                var e = assertThrows(InvalidArgumentException.class, () -> routed.restoreState(state));
                assertTrue(e.getMessage().contains("base model") && e.getMessage().contains("tau 0.5"), e.getMessage());
                routed.generate(PROMPT, TEN).result();
                SessionState withPlugin = routed.saveState();
                routed.setThreshold(0.4f);
                assertThrows(InvalidArgumentException.class, () -> routed.restoreState(withPlugin));
                routed.setThreshold(0.5f);
                routed.restoreState(withPlugin);
                assertArrayEquals(withPlugin.tokens(), routed.cachedTokens());
            }
            byte[] bytes = Files.readAllBytes(file);
            Path cut = Files.write(dir.resolve("cut-state.bin"), Arrays.copyOf(bytes, bytes.length - 100));
            Path garbage = Files.writeString(dir.resolve("garbage.bin"), "not a state");
            try (Session s = f32.newSession()) {
                var e = assertThrows(InvalidArgumentException.class, () -> s.restoreState(cut));
                assertTrue(e.getMessage().contains("truncated"), e.getMessage());
                assertThrows(InvalidArgumentException.class, () -> s.restoreState(garbage));
                assertThrows(InvalidArgumentException.class, () -> s.restoreState(dir));
            }
        }
    }

    // ---- grammars ----

    @Test
    void grammarsThatAdmitNothingAreClearErrors() {
        var empty = assertThrows(InvalidArgumentException.class, () -> Sampling.builder().temperature(0).grammar("").build());
        assertTrue(empty.getMessage().contains("empty"), empty.getMessage());
        assertThrows(InvalidArgumentException.class, () -> Sampling.builder().grammar("  \n").build());
        try (LlamaModel model = LlamaModel.load(modelPath); Session s = model.newSession()) {
            // no token's text is a NUL byte (llama.cpp's grammar refuses NUL pieces): nothing matches
            GenerationOptions nothing = GenerationOptions.builder().maxTokens(5)
                    .sampling(Sampling.builder().temperature(0).grammar("root ::= [\\x00]").build()).build();
            var e = assertThrows(InvalidArgumentException.class, () -> s.generate(PROMPT, nothing).result());
            assertTrue(e.getMessage().contains("admits no token"), e.getMessage());
            // the session is usable afterwards, and still gives the base model's reply
            assertEquals(fresh(model, null, 0, PROMPT), ids(s.generate(PROMPT, TEN).result()));
        }
    }

    // ---- clear messages ----

    @Test
    void adaptersLoadedAsModelsSayWhatTheyAre() throws IOException {
        var fd = assertThrows(ModelLoadException.class, () -> LlamaModel.load(pluginPath));
        assertTrue(fd.getMessage().contains("FlexiDepth plug-in") && fd.getMessage().contains("loadFlexiDepth"), fd.getMessage());
        Path lora = GgufEdit.copy(pluginPath, dir.resolve("lora-as-model.gguf"),
                java.util.Map.of("adapter.type", org.flexidepth.gguf.GgufValue.string("lora")), n -> true);
        var l = assertThrows(ModelLoadException.class, () -> LlamaModel.load(lora));
        assertTrue(l.getMessage().contains("LoRA adapter") && l.getMessage().contains("base model"), l.getMessage());
        try (LlamaModel model = LlamaModel.load(modelPath)) {
            var d = assertThrows(FlexiDepthException.class, () -> model.loadFlexiDepth(dir));
            assertTrue(d.getMessage().contains("is a directory"), d.getMessage());
        }
    }

    @Test
    void nullsClosedSessionsAndLoneSurrogatesAreTypedErrors() {
        var stop = assertThrows(InvalidArgumentException.class, () -> GenerationOptions.builder().stopString(null));
        assertTrue(stop.getMessage().contains("null"));
        try (LlamaModel model = LlamaModel.load(modelPath)) {
            Session s = model.newSession();
            s.close();
            assertThrows(ResourceClosedException.class, s::conversation);
            var lone = assertThrows(InvalidArgumentException.class, () -> model.tokenize("w1 \uD800 w2"));
            assertTrue(lone.getMessage().contains("index 3"), lone.getMessage());
            assertThrows(InvalidArgumentException.class, () -> model.tokenize("w1 \uDC00"));
            assertEquals(model.tokenize("a \uD83D\uDE00").length, model.tokenize("a \uD83D\uDE00").length, "a surrogate pair is fine");
            assertThrows(InvalidArgumentException.class, () -> org.flexidepth.llama.ChatMessage.user("x\uDBFF"));
        }
    }

    // ---- the native boundary ----

    /** Reservation failures injected into attach, set_mode, detach and free (native/tests/flexidepth-faults.cpp). */
    @Test
    void failedReservationsLeaveTheContextAsItWas() throws Exception {
        Path exe = ProjectPaths.nativeBuild().resolve("bin/flexidepth-faults");
        assertTrue(Files.isExecutable(exe), exe + " missing: build the native tree");
        Process p = new ProcessBuilder(exe.toString(), modelPath.toString(), pluginPath.toString()).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), log);
        assertTrue(log.contains("0 failures") && !log.contains("FAIL:"), log);
        assertEquals(19, log.lines().filter(l -> l.startsWith("ok: ")).count(), log);
    }

    @Test
    void theSessionStaysUsableAfterEveryRefusedCall() {
        try (LlamaModel model = LlamaModel.load(modelPath); FlexiDepthPlugin plugin = model.loadFlexiDepth(pluginPath);
             Session s = model.newSession()) {
            s.attach(plugin, 0.5f);
            List<Integer> expected = ids(s.generate(PROMPT, TEN).result());
            assertThrows(InvalidArgumentException.class, () -> s.attach(plugin, 2f));
            assertThrows(InvalidArgumentException.class, () -> s.forceRouting(java.util.Map.of(0, true)));
            assertThrows(InvalidArgumentException.class, () -> s.generate(new int[] {1, 99999}, TEN));
            assertFalse(s.attachedPlugin().isEmpty());
            assertEquals(expected, ids(s.generate(PROMPT, TEN).result()));
        }
    }
}
