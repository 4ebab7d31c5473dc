package org.flexidepth.tests.flexidepth;

import org.flexidepth.tools.RandomFixtures;

import org.flexidepth.gguf.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.List;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The routed-skip families a plug-in selects with flexidepth.skip (layer_no_kv, attention, ffn)
 * against the independent reference (ReferenceModel), which implements each from its formula in
 * native/README.md, on the same random routers as the FlexiDepth plug-ins of
 * FlexiDepthReferenceTest: prefill, decode, several sequences in one batch and in split ubatches,
 * and cache edits.
 */
class SkipFamiliesTest {
    static final List<String> FAMILIES = List.of("layer_no_kv", "attention", "ffn");
    static final float TAU = FlexiDepthReferenceTest.TAU;

    @TempDir
    Path dir;

    static Stream<Arguments> familiesAndModes() {
        return FAMILIES.stream().flatMap(f -> Stream.of(EvalDriver.Mode.DENSE, EvalDriver.Mode.MASKED, EvalDriver.Mode.AUTO)
                .map(m -> Arguments.of(f, m)));
    }

    /** The mixed-decision model of FlexiDepthReferenceTest's first case with a plug-in of this family: {model, plug-in}. */
    Path[] fixture(String family) throws Exception {
        FlexiDepthReferenceTest.Case c = FlexiDepthReferenceTest.cases().findFirst().orElseThrow();
        RandomFixtures.Shape shape = c.shape();
        Path model = dir.resolve("model.gguf"), plugin = dir.resolve(family + ".gguf");
        RandomFixtures.writeModel(model, shape, 11, GgmlType.F32);
        List<Integer> routed = IntStream.range(shape.layers() / 2, shape.layers()).boxed().toList();
        RandomFixtures.writePlugin(plugin, "llama", family, shape, c.pluginSeed(), routed, shape.embd() / 8, shape.ff() / 8, TAU, null,
                GgmlType.F32);
        return new Path[] {model, plugin};
    }

    /**
     * Prefill, decode, two sequences in one batch, and a longer prefill that AUTO computes with the
     * prefill kernels. No state save/restore: a layer_no_kv plug-in's cell visibility is not part of
     * llama_state_* (native/README.md).
     */
    static FlexiDepthReferenceTest.Script script(int vocab) {
        FlexiDepthReferenceTest.ScriptBuilder b = new FlexiDepthReferenceTest.ScriptBuilder(vocab, 81).batch(0, 10);
        for (int i = 0; i < 5; i++) {
            b.batch(0, 1);
        }
        b.batch(0, 1, 1, 20);
        for (int i = 0; i < 4; i++) {
            b.batch(0, 1, 1, 1);
        }
        return b.build();
    }

    static void assertMatches(FlexiDepthReferenceTest.Comparison c, String what) {
        System.out.printf("%s: max |logit diff| %.2e, max |gate diff| %.2e, skips per layer %s of %d%n",
                what, c.maxLogitError(), c.maxGateError(), java.util.Arrays.toString(c.skipsPerLayer()), c.tokens());
        assertTrue(c.maxLogitError() < FlexiDepthReferenceTest.LOGIT_TOLERANCE, what + ": logits differ by " + c.maxLogitError());
        assertTrue(c.maxGateError() < FlexiDepthReferenceTest.GATE_TOLERANCE, what + ": gates differ by " + c.maxGateError());
        assertTrue(java.util.Arrays.stream(c.skipsPerLayer()).allMatch(k -> k > 0 && k < c.tokens()), what + ": decisions are mixed");
    }

    @ParameterizedTest
    @MethodSource("familiesAndModes")
    void eachFamilyMatchesTheReference(String family, EvalDriver.Mode mode) throws Exception {
        Path[] files = fixture(family);
        FlexiDepthReferenceTest.Script s = script(FlexiDepthReferenceTest.small().vocab());
        List<EvalDriver.Output> fork = EvalDriver.run(files[0], files[1], TAU, s.lines(), dir, mode);
        assertMatches(FlexiDepthReferenceTest.compare(new ReferenceModel(files[0], files[1]), fork, s, false), family + " " + mode);
    }

    /**
     * The families differ from FlexiDepth and from each other on the same routers, so that matching
     * the reference in each proves that each is computed (not, say, the layer family for all).
     */
    @Test
    void theFamiliesComputeDifferentModels() throws Exception {
        FlexiDepthReferenceTest.Script s = script(FlexiDepthReferenceTest.small().vocab());
        java.util.Map<String, List<EvalDriver.Output>> out = new java.util.LinkedHashMap<>();
        for (String f : List.of("layer", "layer_no_kv", "attention", "ffn")) {
            Path[] files = fixture(f);
            out.put(f, EvalDriver.run(files[0], files[1], TAU, s.lines(), dir, EvalDriver.Mode.MASKED));
        }
        List<String> names = List.copyOf(out.keySet());
        for (int i = 0; i < names.size(); i++) {
            for (int j = i + 1; j < names.size(); j++) {
                double diff = FlexiDepthReferenceTest.maxDiff(out.get(names.get(i)), out.get(names.get(j)));
                assertTrue(diff > 0.1, names.get(i) + " and " + names.get(j) + " differ by only " + diff);
            }
        }
    }

    /**
     * layer_no_kv with one KV stream per sequence and ubatches of 4 (the visibility of each
     * stream's cells is kept apart), with cache edits, and with flash attention and an F16 cache
     * (the visibility added to an F16 mask).
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(value = EvalDriver.Mode.class, names = {"DENSE", "MASKED", "MASKED_FA"})
    void withoutKvFillingHoldsAcrossStreamsEditsAndFlashAttention(EvalDriver.Mode mode) throws Exception {
        Path[] files = fixture("layer_no_kv");
        FlexiDepthReferenceTest.Script split = new FlexiDepthReferenceTest.ScriptBuilder(FlexiDepthReferenceTest.small().vocab(), 61)
                .batch(0, 6, 1, 6, 2, 6).batch(0, 1, 1, 1, 2, 1).batch(2, 1, 0, 1, 1, 1).batch(1, 1, 2, 1).batch(0, 2, 1, 2, 2, 2).build();
        List<EvalDriver.Output> fork = EvalDriver.run(files[0], files[1], TAU, split.lines(), dir, mode, List.of("--non-unified", "--ubatch", "4"));
        boolean fa = mode == EvalDriver.Mode.MASKED_FA;
        ReferenceModel ref = new ReferenceModel(files[0], files[1]);
        FlexiDepthReferenceTest.Comparison c = FlexiDepthReferenceTest.compare(ref, fork, split, false, fa ? 1e-2 : FlexiDepthReferenceTest.BORDERLINE);
        if (fa) {
            // F16 K/V and mask: the precision of FlexiDepthReferenceTest.flashAttentionSkippingKeepsTheResults
            assertTrue(c.maxLogitError() < 2e-2, "logits differ by " + c.maxLogitError());
        } else {
            assertMatches(c, "layer_no_kv " + mode + " split streams");
        }
        FlexiDepthReferenceTest.Script edited = FlexiDepthReferenceTest.editedCacheScript(FlexiDepthReferenceTest.small().vocab());
        fork = EvalDriver.run(files[0], files[1], TAU, edited.lines(), dir, mode, List.of("--ubatch", "4"));
        c = FlexiDepthReferenceTest.compare(ref, fork, edited, false, fa ? 1e-2 : FlexiDepthReferenceTest.BORDERLINE);
        assertTrue(c.maxLogitError() < (fa ? 2e-2 : FlexiDepthReferenceTest.LOGIT_TOLERANCE), "after edits, logits differ by " + c.maxLogitError());
    }

    /**
     * The loader refuses an unknown family, an attention-only plug-in that carries an adapter and
     * a FlexiDepth one that lacks it, naming what is wrong; and reports the family it loaded.
     */
    @Test
    void theLoaderChecksTheFamilyAgainstTheTensors() throws Exception {
        Path[] layer = fixture("layer"), attention = fixture("attention");
        Path unknown = GgufEdit.copy(layer[1], dir.resolve("unknown.gguf"),
                java.util.Map.of("flexidepth.skip", org.flexidepth.gguf.GgufValue.string("sideways")), t -> true);
        Path withAdapter = GgufEdit.copy(layer[1], dir.resolve("with-adapter.gguf"),
                java.util.Map.of("flexidepth.skip", org.flexidepth.gguf.GgufValue.string("attention"),
                        "flexidepth.adapter_size", org.flexidepth.gguf.GgufValue.uint32(0)), t -> true);
        Path noAdapter = GgufEdit.copy(attention[1], dir.resolve("no-adapter.gguf"),
                java.util.Map.of("flexidepth.skip", org.flexidepth.gguf.GgufValue.string("ffn"),
                        "flexidepth.adapter_size", org.flexidepth.gguf.GgufValue.uint32(16)), t -> true);
        try (org.flexidepth.llama.LlamaModel model = org.flexidepth.llama.LlamaModel.load(layer[0])) {
            var e = assertThrows(org.flexidepth.llama.FlexiDepthException.class, () -> model.loadFlexiDepth(unknown));
            assertEquals(org.flexidepth.llama.FlexiDepthException.Reason.FORMAT, e.reason());
            assertTrue(e.getMessage().contains("sideways"), e.getMessage());
            e = assertThrows(org.flexidepth.llama.FlexiDepthException.class, () -> model.loadFlexiDepth(withAdapter));
            assertEquals(org.flexidepth.llama.FlexiDepthException.Reason.TENSOR, e.reason());
            assertTrue(e.getMessage().contains("fd_adapter_gate"), e.getMessage());
            e = assertThrows(org.flexidepth.llama.FlexiDepthException.class, () -> model.loadFlexiDepth(noAdapter));
            assertEquals(org.flexidepth.llama.FlexiDepthException.Reason.TENSOR, e.reason());
            assertTrue(e.getMessage().contains("missing tensor"), e.getMessage());
            for (String f : List.of("layer", "layer_no_kv", "attention", "ffn")) {
                try (var p = model.loadFlexiDepth(fixture(f)[1])) {
                    assertEquals(org.flexidepth.llama.SkipFamily.valueOf(f.toUpperCase()), p.skipFamily());
                }
            }
        }
    }

    /** MASKED reads only the products a family skips: Wq and Wo for attention, the FFN's three for ffn. */
    @Test
    void maskedProductsAreTheFamilysOwn() throws Exception {
        int routed = FlexiDepthReferenceTest.small().layers() - FlexiDepthReferenceTest.small().layers() / 2;
        // per routed layer: the masked base products, plus the adapter's two where there is one
        // (gate and up side by side, then down)
        java.util.Map<String, Integer> perLayer = java.util.Map.of("layer", 7, "layer_no_kv", 7, "attention", 2, "ffn", 5);
        for (var e : perLayer.entrySet()) {
            Path[] files = fixture(e.getKey());
            long nodes = EvalDriver.runLogged(files[0], files[1], TAU, List.of("batch 0:1", "batch 0:300"), dir, EvalDriver.Mode.MASKED, List.of())
                    .mulMatIdNodes();
            assertEquals(2L * routed * e.getValue(), nodes, e.getKey() + ": token-skipping products of two single-token graphs");
        }
    }
}
