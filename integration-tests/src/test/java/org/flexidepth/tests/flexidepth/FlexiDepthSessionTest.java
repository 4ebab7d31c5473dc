package org.flexidepth.tests.flexidepth;

import org.flexidepth.tools.RandomFixtures;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.gguf.GgufValue;
import org.flexidepth.llama.FlexiDepthException;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.Generation;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.InvalidArgumentException;
import org.flexidepth.llama.LayerStats;
import org.flexidepth.llama.LayerUsage;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.Token;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** FlexiDepth through the Java API: plug-in loading and validation, attaching, thresholds, layer usage. */
class FlexiDepthSessionTest {
    static final RandomFixtures.Shape SHAPE = new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 512);
    static final List<Integer> ROUTED = List.of(2, 3);
    static final int[] PROMPT = {1, 300, 301, 302, 303, 304, 305};
    static final GenerationOptions TEN = GenerationOptions.builder().maxTokens(10).build();

    @TempDir
    static Path dir;
    static Path modelPath, pluginPath;
    static LlamaModel model;
    static FlexiDepthPlugin plugin;

    @BeforeAll
    static void fixtures() throws IOException {
        modelPath = dir.resolve("model.gguf");
        pluginPath = dir.resolve("plugin.gguf");
        RandomFixtures.writeModel(modelPath, SHAPE, 11, GgmlType.F32);
        RandomFixtures.writePlugin(pluginPath, SHAPE, 17, ROUTED, 8, 16, 0.5f, null, GgmlType.F32);
        model = LlamaModel.load(modelPath);
        plugin = model.loadFlexiDepth(pluginPath);
    }

    @AfterAll
    static void close() {
        plugin.close();
        model.close();
    }

    @Test
    void pluginMetadata() {
        assertEquals(ROUTED, plugin.routedLayers());
        assertEquals(8, plugin.routerSize());
        assertEquals(16, plugin.adapterSize());
        assertEquals(0.5f, plugin.defaultThreshold());
        assertEquals("llama", plugin.architecture());
    }

    static GenerationResult run(Session s, GenerationOptions o) {
        try (Generation g = s.generate(PROMPT, o)) {
            return g.result();
        }
    }

    static List<List<Integer>> skips(GenerationResult r) {
        return r.tokens().stream().map(t -> t.layers().orElseThrow().skippedLayers()).toList();
    }

    @Test
    void aGenerationsOwnThresholdRoutesAsAttachingAtItDoes() {
        GenerationOptions low = TEN.toBuilder().flexiDepthThreshold(0.1f).build();
        GenerationResult attachedLow, attachedHalf, own, after;
        try (Session s = model.newSession()) {
            s.attach(plugin, 0.1f);
            attachedLow = run(s, TEN);
            s.attach(plugin, 0.5f);
            attachedHalf = run(s, TEN);
        }
        try (Session s = model.newSession()) {
            s.attach(plugin, 0.5f);
            own = run(s, low);
            s.clear();
            after = run(s, TEN); // the attached threshold again
            assertThrows(InvalidArgumentException.class, () -> TEN.toBuilder().flexiDepthThreshold(1.5f).build());
        }
        assertNotEquals(skips(attachedLow), skips(attachedHalf), "the fixture routes differently at 0.1 and 0.5");
        assertEquals(attachedLow.tokens().stream().map(t -> t.id()).toList(), own.tokens().stream().map(t -> t.id()).toList());
        assertEquals(skips(attachedLow), skips(own), "the generation's threshold, not the attached one");
        assertEquals(skips(attachedHalf), skips(after), "after it, the attached threshold");
        try (Session bare = model.newSession()) {
            assertThrows(InvalidArgumentException.class, () -> run(bare, low), "no plug-in to route with");
        }
    }

    @Test
    void everyTokenCarriesItsLayerUsage() {
        try (Session s = model.newSession()) {
            s.attach(plugin, 0.5f);
            GenerationResult r;
            List<LayerUsage> promptUsage;
            try (Generation g = s.generate(PROMPT, TEN)) {
                r = g.result();
                promptUsage = g.promptLayerUsage();
            }
            assertEquals(PROMPT.length, promptUsage.size(), "every prompt token's usage");
            int skippedSomewhere = 0;
            for (Token t : r.tokens()) {
                LayerUsage u = t.layers().orElseThrow();
                assertEquals(4, u.totalLayers());
                assertEquals(ROUTED, u.routedLayers());
                int ran = 0;
                for (int i = 0; i < ROUTED.size(); i++) {
                    assertTrue(u.gate(i) >= 0 && u.gate(i) <= 1);
                    assertEquals(u.gate(i) > 0.5f, u.ran(i), "run = g > tau");
                    ran += u.ran(i) ? 1 : 0;
                }
                assertEquals(2 + ran, u.layersUsed());
                assertEquals(ROUTED.size() - ran, u.skippedLayers().size());
                skippedSomewhere += u.skippedLayers().isEmpty() ? 0 : 1;
            }
            assertTrue(skippedSomewhere > 0, "some token skipped a layer");
            LayerStats stats = r.stats().layers().orElseThrow();
            double mean = r.tokens().stream().mapToInt(t -> t.layers().orElseThrow().layersUsed()).average().orElseThrow();
            assertEquals(mean, stats.meanLayers(), 1e-9);
            assertEquals(r.tokens().stream().mapToInt(t -> t.layers().orElseThrow().layersUsed()).min().orElseThrow(), stats.minLayers());
            assertEquals(r.tokens().stream().mapToInt(t -> t.layers().orElseThrow().layersUsed()).max().orElseThrow(), stats.maxLayers());
            for (int i = 0; i < ROUTED.size(); i++) {
                final int k = i;
                double rate = r.tokens().stream().filter(t -> t.layers().orElseThrow().ran(k)).count() / (double) r.tokens().size();
                assertEquals(rate, stats.runRates().get(i), 1e-9);
            }
        }
    }

    /**
     * Sessions use llama.cpp's defaults (F16 KV cache, flash attention), the driver an exact F32
     * setup: gates agree to F16 precision, and decisions wherever the gate is not within 0.01 of tau.
     */
    @Test
    void routingThroughTheApiEqualsTheNativeDriver() throws Exception {
        List<EvalDriver.Output> expected = EvalDriver.run(modelPath, pluginPath, 0.5f,
                List.of("batch 0:" + String.join(",", Arrays.stream(PROMPT).mapToObj(String::valueOf).toList())), dir);
        try (Session s = model.newSession(); Generation g = attachAndStart(s, 0.5f)) {
            List<LayerUsage> usage = g.promptLayerUsage();
            int exempt = 0, decisions = 0;
            for (int t = 0; t < PROMPT.length; t++) {
                for (int i = 0; i < ROUTED.size(); i++) {
                    assertEquals(expected.get(t).gates()[i], usage.get(t).gate(i), 2e-3);
                    decisions++;
                    if (Math.abs(expected.get(t).gates()[i] - 0.5f) > 0.01f) {
                        assertEquals(expected.get(t).ran()[i], usage.get(t).ran(i));
                    } else {
                        exempt++;
                    }
                }
            }
            // as in FlexiDepthReferenceTest: the exemption near tau is bounded, not open-ended
            assertTrue(exempt <= Math.ceil(4 * 0.01 * decisions) + 2, exempt + " of " + decisions + " decisions exempt");
        }
    }

    private static Generation attachAndStart(Session s, float tau) {
        s.attach(plugin, tau);
        return s.generate(PROMPT, TEN);
    }

    @Test
    void thresholdChangesBetweenCallsAndDetachRestoresTheBaseModel() throws IOException {
        try (Session s = model.newSession()) {
            List<Integer> base = ids(s.generate(PROMPT, TEN).result());
            s.clear();
            s.attach(plugin, 0.5f);
            List<Integer> mixed = ids(s.generate(PROMPT, TEN).result());
            s.setThreshold(0f); // every gate is > 0: all layers run
            s.clear();
            GenerationResult all = s.generate(PROMPT, TEN).result();
            all.tokens().forEach(t -> assertEquals(4, t.layers().orElseThrow().layersUsed()));
            s.setThreshold(1f); // no gate is > 1: every routed layer is skipped
            s.clear();
            GenerationResult none = s.generate(PROMPT, TEN).result();
            none.tokens().forEach(t -> assertEquals(2, t.layers().orElseThrow().layersUsed()));
            assertEquals(1f, s.threshold().orElseThrow());
            s.detach();
            s.clear();
            GenerationResult again = s.generate(PROMPT, TEN).result();
            assertEquals(base, ids(again));
            assertTrue(again.tokens().stream().allMatch(t -> t.layers().isEmpty()));
            assertTrue(again.stats().layers().isEmpty());
            assertNotEquals(base, mixed, "the plug-in at tau 0.5 changes the reply");
            assertEquals(referenceGreedy(0.5f), mixed, "the reply equals the independent f64 reference's");
        }
    }

    @Test
    void invalidThresholdsAndForeignPluginsAreRefused() throws IOException {
        try (Session s = model.newSession()) {
            assertThrows(InvalidArgumentException.class, () -> s.attach(plugin, 1.5f));
            assertThrows(InvalidArgumentException.class, () -> s.attach(plugin, Float.NaN));
            assertThrows(InvalidArgumentException.class, () -> s.setThreshold(0.3f), "nothing attached");
            try (LlamaModel other = LlamaModel.load(modelPath); FlexiDepthPlugin foreign = other.loadFlexiDepth(pluginPath)) {
                var e = assertThrows(InvalidArgumentException.class, () -> s.attach(foreign, 0.5f));
                assertTrue(e.getMessage().contains("loaded for"), e.getMessage());
            }
        }
    }

    @Test
    void closingAnAttachedPluginDetachesIt() {
        try (Session s = model.newSession(); FlexiDepthPlugin p = model.loadFlexiDepth(pluginPath)) {
            s.attach(p, 0.5f);
            assertTrue(s.generate(PROMPT, TEN).result().tokens().get(0).layers().isPresent());
            p.close();
            assertTrue(s.attachedPlugin().isEmpty());
            GenerationResult r = s.generate(PROMPT, TEN).result();
            assertTrue(r.tokens().stream().allMatch(t -> t.layers().isEmpty()));
        }
    }

    @Test
    void badPluginFilesGiveClearErrorsAndLeaveNothingBehind() throws IOException {
        record Bad(String what, Path file, FlexiDepthException.Reason reason, String message) {
        }
        Path wide = dir.resolve("wide.gguf");
        RandomFixtures.writePlugin(wide, new RandomFixtures.Shape(4, 96, 4, 2, 128, 320, 512), 1, ROUTED, 8, 16, 0.5f, null, GgmlType.F32);
        Path deep = dir.resolve("deep.gguf");
        RandomFixtures.writePlugin(deep, new RandomFixtures.Shape(6, 64, 4, 2, 128, 320, 512), 1, ROUTED, 8, 16, 0.5f, null, GgmlType.F32);
        Path misshapen = dir.resolve("misshapen.gguf");
        RandomFixtures.writePlugin(misshapen, SHAPE, 1, ROUTED, 8, 16, 0.5f, null, GgmlType.F32);
        GgufEdit.copy(misshapen, misshapen, Map.of("flexidepth.router_size", GgufValue.uint32(6)), n -> true);
        byte[] bytes = Files.readAllBytes(pluginPath);
        List<Bad> cases = List.of(
                new Bad("missing file", dir.resolve("nope.gguf"), FlexiDepthException.Reason.IO, "not found"),
                new Bad("not GGUF", Files.writeString(dir.resolve("text.gguf"), "hello"), FlexiDepthException.Reason.FORMAT, "not a GGUF"),
                new Bad("truncated", Files.write(dir.resolve("cut.gguf"), Arrays.copyOf(bytes, bytes.length - 1000)),
                        FlexiDepthException.Reason.FORMAT, "truncated"),
                new Bad("header cut", Files.write(dir.resolve("head.gguf"), Arrays.copyOf(bytes, 200)),
                        FlexiDepthException.Reason.FORMAT, "corrupt"),
                new Bad("a LoRA adapter", GgufEdit.copy(pluginPath, dir.resolve("lora.gguf"),
                        Map.of("adapter.type", GgufValue.string("lora")), n -> true), FlexiDepthException.Reason.FORMAT, "not a FlexiDepth"),
                new Bad("another architecture", GgufEdit.copy(pluginPath, dir.resolve("qwen.gguf"),
                        Map.of("general.architecture", GgufValue.string("qwen2")), n -> true), FlexiDepthException.Reason.WRONG_BASE, "qwen2"),
                new Bad("unsupported architecture", GgufEdit.copy(pluginPath, dir.resolve("gpt2.gguf"),
                        Map.of("general.architecture", GgufValue.string("gpt2")), n -> true), FlexiDepthException.Reason.ARCHITECTURE, "gpt2"),
                new Bad("another hidden size", wide, FlexiDepthException.Reason.WRONG_BASE, "hidden size 96"),
                new Bad("another layer count", deep, FlexiDepthException.Reason.WRONG_BASE, "6 layers"),
                new Bad("missing tensor", GgufEdit.copy(pluginPath, dir.resolve("missing.gguf"), Map.of(),
                        n -> !n.equals("blk.3.fd_adapter_down.weight")), FlexiDepthException.Reason.TENSOR, "missing tensor blk.3.fd_adapter_down"),
                new Bad("misshapen tensor", misshapen, FlexiDepthException.Reason.TENSOR, "has shape"),
                new Bad("routed layer out of range", GgufEdit.copy(pluginPath, dir.resolve("range.gguf"),
                        Map.of("flexidepth.routed_layers", GgufValue.int32Array(2, 7)), n -> true), FlexiDepthException.Reason.FORMAT, "routed layers"));
        for (Bad b : cases) {
            var e = assertThrows(FlexiDepthException.class, () -> model.loadFlexiDepth(b.file()), b.what());
            assertEquals(b.reason(), e.reason(), b.what() + ": " + e.getMessage());
            assertTrue(e.getMessage().contains(b.message()), b.what() + ": " + e.getMessage());
        }
        // nothing half-loaded: the model and a good plug-in work as before
        try (Session s = model.newSession(); FlexiDepthPlugin p = model.loadFlexiDepth(pluginPath)) {
            s.attach(p, 0.5f);
            assertEquals(10, s.generate(PROMPT, TEN).result().tokens().size());
        }
    }

    /** Greedy tokens of the f64 reference (ReferenceModel) with the plug-in at tau, after PROMPT. */
    private static List<Integer> referenceGreedy(float tau) throws IOException {
        ReferenceModel ref = new ReferenceModel(modelPath, pluginPath);
        ReferenceModel.Sequence seq = ref.sequence(0, tau, false, null);
        ReferenceModel.Step step = null;
        for (int t : PROMPT) {
            step = seq.step(t);
        }
        List<Integer> out = new java.util.ArrayList<>();
        for (int i = 0; i < TEN.maxTokens(); i++) {
            int best = 0;
            for (int v = 1; v < step.logits().length; v++) {
                best = step.logits()[v] > step.logits()[best] ? v : best;
            }
            out.add(best);
            if (i + 1 < TEN.maxTokens()) {
                step = seq.step(best);
            }
        }
        return out;
    }

    private static List<Integer> ids(GenerationResult r) {
        return r.tokens().stream().map(Token::id).toList();
    }
}
