package org.flexidepth.tests.flexidepth;

import org.flexidepth.tools.RandomFixtures;

import org.flexidepth.gguf.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fork's FlexiDepth layers against the independent reference forward pass (ReferenceModel),
 * on random-weight models of several shapes with random plug-ins whose decisions are mixed: prefill,
 * token-by-token decode, two sequences in one batch, and decode after a state save/restore.
 *
 * <p>Borderline margin: where the reference's gate is within {@value #BORDERLINE} of tau, float32
 * (fork) and float64 (reference) may legitimately decide differently; there the reference follows
 * the fork's decision, so that one flip does not cascade into every later comparison. Every other
 * decision must be equal.
 */
class FlexiDepthReferenceTest {
    static final double BORDERLINE = 1e-4;
    static final double GATE_TOLERANCE = 1e-5;
    static final double LOGIT_TOLERANCE = 1e-4;
    static final float TAU = 0.5f;

    @TempDir
    Path dir;

    /** A model shape, the seed of a random plug-in whose decisions on the standard script are mixed, and the fork's mode. */
    record Case(RandomFixtures.Shape shape, long pluginSeed, EvalDriver.Mode mode) {
    }

    static Stream<Case> cases() {
        return Stream.of(EvalDriver.Mode.DENSE, EvalDriver.Mode.MASKED).flatMap(m -> Stream.of(
                new Case(new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 512), 17, m),    // GQA 2:1
                new Case(new RandomFixtures.Shape(6, 96, 6, 2, 160, 300, 512), 13, m),    // GQA 3:1, more layers
                new Case(new RandomFixtures.Shape(3, 128, 8, 8, 256, 400, 512), 15, m))); // plain multi-head
    }

    static RandomFixtures.Shape small() {
        return cases().findFirst().orElseThrow().shape();
    }

    /**
     * A script for the native driver, with the token each output position was fed ({seq, token}),
     * and the cache edits between them ({RM, seq, p0, p1} and {SHIFT, seq, p0, delta}).
     */
    record Script(List<String> lines, List<int[]> fed) {
        static final int RM = -1, SHIFT = -2;

        static Script standard(int vocab, long seed) {
            SplittableRandom r = new SplittableRandom(seed);
            List<String> lines = new ArrayList<>();
            List<int[]> fed = new ArrayList<>();
            java.util.function.IntSupplier tok = () -> 259 + r.nextInt(vocab - 259);
            StringBuilder prompt = new StringBuilder("batch 0:1");
            fed.add(new int[] {0, 1});
            for (int i = 0; i < 9; i++) {
                int t = tok.getAsInt();
                prompt.append(',').append(t);
                fed.add(new int[] {0, t});
            }
            lines.add(prompt.toString());                                  // prefill of sequence 0
            for (int i = 0; i < 5; i++) {                                   // token-by-token decode
                int t = tok.getAsInt();
                lines.add("batch 0:" + t);
                fed.add(new int[] {0, t});
            }
            StringBuilder both = new StringBuilder();                       // two sequences in one batch
            int t0 = tok.getAsInt();
            both.append("batch 0:").append(t0).append(" 1:1");
            fed.add(new int[] {0, t0});
            fed.add(new int[] {1, 1});
            for (int i = 0; i < 6; i++) {
                int t = tok.getAsInt();
                both.append(',').append(t);
                fed.add(new int[] {1, t});
            }
            lines.add(both.toString());
            for (int step = 0; step < 4; step++) {
                if (step == 2) {
                    lines.add("save");
                    lines.add("restore");                                   // decode goes on from the restored state
                }
                int a = tok.getAsInt(), b = tok.getAsInt();
                lines.add("batch 0:" + a + " 1:" + b);
                fed.add(new int[] {0, a});
                fed.add(new int[] {1, b});
            }
            return new Script(lines, fed);
        }
    }

    record Comparison(double maxLogitError, double maxGateError, int decisions, int borderline, int[] skipsPerLayer, int tokens) {
    }

    /** Runs the reference on the fork's script, following the fork only on borderline gates. */
    static Comparison compare(ReferenceModel ref, List<EvalDriver.Output> fork, Script script, boolean dropSkippedKv) {
        return compare(ref, fork, script, dropSkippedKv, BORDERLINE);
    }

    /** As above, with the margin around tau within which the reference follows the fork's decision. */
    static Comparison compare(ReferenceModel ref, List<EvalDriver.Output> fork, Script script, boolean dropSkippedKv,
                              double borderlineMargin) {
        assertEquals(script.fed().stream().filter(f -> f[0] >= 0).count(), (long) fork.size(), "outputs");
        Map<String, Boolean> forkRan = new HashMap<>();
        Map<Integer, Integer> routedIndex = new HashMap<>();
        int k = 0;
        for (int l = 0; l < ref.layers; l++) {
            if (ref.rDown[l] != null) {
                routedIndex.put(l, k++);
            }
        }
        for (EvalDriver.Output o : fork) {
            for (int r = 0; r < o.ran().length; r++) {
                forkRan.put(o.seq() + "/" + o.pos() + "/" + r, o.ran()[r]);
            }
        }
        int[] borderline = {0};
        ReferenceModel.DecisionOverride follow = (seq, pos, layer, g) -> {
            if (Math.abs(g - TAU) < borderlineMargin) {
                borderline[0]++;
                return forkRan.get(seq + "/" + pos + "/" + routedIndex.get(layer));
            }
            return null;
        };
        Map<Integer, ReferenceModel.Sequence> seqs = new HashMap<>();
        double maxLogit = 0, maxGate = 0;
        int decisions = 0;
        int[] skips = new int[routedIndex.size()];
        int i = 0;
        for (int[] fed : script.fed()) {
            if (fed[0] == Script.RM) {
                seqs.get(fed[1]).remove(fed[2], fed[3]);
                continue;
            }
            if (fed[0] == Script.SHIFT) {
                seqs.get(fed[1]).shift(fed[2], fed[3]);
                continue;
            }
            EvalDriver.Output o = fork.get(i++);
            assertEquals(fed[0], o.seq(), "sequence of output " + i);
            ReferenceModel.Sequence s = seqs.computeIfAbsent(o.seq(), id -> ref.sequence(id, TAU, dropSkippedKv, follow));
            assertEquals(s.pos, o.pos(), "position of output " + i);
            ReferenceModel.Step step = s.step(fed[1]);
            for (int v = 0; v < ref.vocab; v++) {
                assertTrue(Float.isFinite(o.logits()[v]), "finite logits");
                maxLogit = Math.max(maxLogit, Math.abs(step.logits()[v] - o.logits()[v]));
            }
            for (int r = 0; r < o.gates().length; r++) {
                maxGate = Math.max(maxGate, Math.abs(step.gates().get(r) - o.gates()[r]));
                if (!dropSkippedKv) {
                    assertEquals(step.ran().get(r), o.ran()[r], "decision of seq " + o.seq() + " pos " + o.pos() + " routed layer " + r
                            + " (fork g " + o.gates()[r] + ", reference g " + step.gates().get(r) + ")");
                }
                decisions++;
                skips[r] += o.ran()[r] ? 0 : 1;
            }
        }
        // The reference follows the fork only within the margin; how often that happens is bounded
        // (twice what gates spread evenly over [0, 1] would give, plus two), so that a drift that
        // pushes many gates towards tau fails instead of being followed.
        int bound = (int) Math.ceil(4 * borderlineMargin * decisions) + 2;
        System.out.printf("borderline decisions (|g - tau| < %.0e): %d of %d, bound %d%n", borderlineMargin, borderline[0], decisions, bound);
        assertTrue(borderline[0] <= bound, borderline[0] + " of " + decisions + " decisions within " + borderlineMargin + " of tau");
        return new Comparison(maxLogit, maxGate, decisions, borderline[0], skips, fork.size());
    }

    /** The model and the mixed-decision plug-in of a case (latter half of the layers routed): {model, plug-in}. */
    static Path[] mixedFixture(Case c, Path dir) throws java.io.IOException {
        RandomFixtures.Shape shape = c.shape();
        Path model = dir.resolve("model.gguf"), plugin = dir.resolve("plugin.gguf");
        RandomFixtures.writeModel(model, shape, 11, GgmlType.F32);
        List<Integer> routed = java.util.stream.IntStream.range(shape.layers() / 2, shape.layers()).boxed().toList();
        RandomFixtures.writePlugin(plugin, shape, c.pluginSeed(), routed, shape.embd() / 8, shape.ff() / 8, TAU, null, GgmlType.F32);
        return new Path[] {model, plugin};
    }

    @ParameterizedTest
    @MethodSource("cases")
    void forkMatchesReferenceOnMixedDecisions(Case testCase) throws Exception {
        RandomFixtures.Shape shape = testCase.shape();
        Path[] files = mixedFixture(testCase, dir);
        Path model = files[0], plugin = files[1];
        Script script = Script.standard(shape.vocab(), 13);
        List<EvalDriver.Output> fork = EvalDriver.run(model, plugin, TAU, script.lines(), dir, testCase.mode());
        Comparison c = compare(new ReferenceModel(model, plugin), fork, script, false);
        System.out.printf(testCase.mode() + " %s: max |logit diff| %.2e, max |gate diff| %.2e, %d decisions (%d borderline), skips per layer %s of %d%n",
                shape, c.maxLogitError(), c.maxGateError(), c.decisions(), c.borderline(), java.util.Arrays.toString(c.skipsPerLayer()), c.tokens());
        assertTrue(c.maxLogitError() < LOGIT_TOLERANCE, "logits differ by " + c.maxLogitError());
        assertTrue(c.maxGateError() < GATE_TOLERANCE, "gates differ by " + c.maxGateError());
        for (int s : c.skipsPerLayer()) {
            // decisions must be mixed (a third to two thirds skip) for the comparison to mean anything
            assertTrue(s >= 0.3 * c.tokens() && s <= 0.7 * c.tokens(), "skips per layer " + java.util.Arrays.toString(c.skipsPerLayer()));
        }
    }

    static Stream<org.junit.jupiter.params.provider.Arguments> qwenCases() {
        return Stream.of("qwen2", "qwen3").flatMap(a -> Stream.of(EvalDriver.Mode.DENSE, EvalDriver.Mode.MASKED)
                .map(m -> org.junit.jupiter.params.provider.Arguments.of(a, m)));
    }

    @ParameterizedTest
    @MethodSource("qwenCases")
    void qwenArchitecturesMatchTheReferenceToo(String arch, EvalDriver.Mode mode) throws Exception {
        RandomFixtures.Shape shape = small();
        Path model = dir.resolve(arch + ".gguf"), plugin = dir.resolve(arch + "-plugin.gguf");
        RandomFixtures.writeModel(model, arch, shape, 41, GgmlType.F32);
        RandomFixtures.writePlugin(plugin, arch, shape, 42, List.of(2, 3), 8, 16, TAU, null, GgmlType.F32);
        Script script = Script.standard(shape.vocab(), 43);
        List<EvalDriver.Output> fork = EvalDriver.run(model, plugin, TAU, script.lines(), dir, mode);
        Comparison c = compare(new ReferenceModel(model, plugin), fork, script, false);
        System.out.printf(mode + " %s: max |logit diff| %.2e, max |gate diff| %.2e, skips per layer %s of %d%n",
                arch, c.maxLogitError(), c.maxGateError(), java.util.Arrays.toString(c.skipsPerLayer()), c.tokens());
        assertTrue(c.maxLogitError() < LOGIT_TOLERANCE, "logits differ by " + c.maxLogitError());
        assertTrue(c.maxGateError() < GATE_TOLERANCE, "gates differ by " + c.maxGateError());
        assertTrue(java.util.Arrays.stream(c.skipsPerLayer()).allMatch(k -> k > 0 && k < c.tokens()), "decisions are mixed");
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(value = EvalDriver.Mode.class, names = {"DENSE", "MASKED"})
    void routersThatAlwaysPassWithGateOneReproduceTheBaseModelExactly(EvalDriver.Mode mode) throws Exception {
        RandomFixtures.Shape shape = small();
        Path model = dir.resolve("model.gguf"), plugin = dir.resolve("pass.gguf");
        RandomFixtures.writeModel(model, shape, 21, GgmlType.F32);
        RandomFixtures.writePlugin(plugin, shape, 22, List.of(1, 2, 3), 8, 16, TAU, 1e4f, GgmlType.F32);
        Script script = Script.standard(shape.vocab(), 23);
        List<EvalDriver.Output> with = EvalDriver.run(model, plugin, TAU, script.lines(), dir, mode);
        List<EvalDriver.Output> base = EvalDriver.run(model, null, TAU, script.lines(), dir);
        for (int i = 0; i < base.size(); i++) {
            if (mode == EvalDriver.Mode.DENSE) {
                assertArrayEquals(base.get(i).logits(), with.get(i).logits(), "output " + i); // bit for bit
            } else {
                // ggml_mul_mat_id sums in another order than ggml_mul_mat: equal up to f32 rounding
                for (int v = 0; v < base.get(i).logits().length; v++) {
                    assertEquals(base.get(i).logits()[v], with.get(i).logits()[v], 1e-5, "output " + i);
                }
            }
            for (int r = 0; r < 3; r++) {
                assertEquals(1.0f, with.get(i).gates()[r]);
                assertTrue(with.get(i).ran()[r]);
            }
        }
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(value = EvalDriver.Mode.class, names = {"DENSE", "MASKED"})
    void routersThatAlwaysSkipWriteKvSkipAttentionAndFfnAndApplyTheAdapter(EvalDriver.Mode mode) throws Exception {
        RandomFixtures.Shape shape = small();
        Path model = dir.resolve("model.gguf"), plugin = dir.resolve("skip.gguf");
        RandomFixtures.writeModel(model, shape, 31, GgmlType.F32);
        RandomFixtures.writePlugin(plugin, shape, 32, List.of(1, 2, 3), 8, 16, TAU, -1e4f, GgmlType.F32);
        Script script = Script.standard(shape.vocab(), 33);
        List<EvalDriver.Output> fork = EvalDriver.run(model, plugin, TAU, script.lines(), dir, mode);
        Comparison c = compare(new ReferenceModel(model, plugin), fork, script, false);
        assertTrue(c.maxLogitError() < LOGIT_TOLERANCE, "logits differ by " + c.maxLogitError());
        assertArrayEquals(new int[] {c.tokens(), c.tokens(), c.tokens()}, c.skipsPerLayer());
        List<EvalDriver.Output> base = EvalDriver.run(model, null, TAU, script.lines(), dir);
        assertTrue(maxDiff(base, fork) > 0.1, "skipping three layers must change the logits");
    }

    /**
     * With llama.cpp's defaults (flash attention, F16 cache) skipped tokens' attention rows are fully
     * masked so that no K/V is read for them. Their outputs are discarded, so the model must stay
     * within F16 precision of the reference: logits 2e-2, gates 2e-3, decisions equal wherever the
     * gate is not within 1e-2 of tau (F16 rounding of Q, K and V moves gates by about 1e-3).
     */
    @Test
    void flashAttentionSkippingKeepsTheResults() throws Exception {
        Case c0 = cases().findFirst().orElseThrow();
        Path[] files = mixedFixture(c0, dir);
        Path model = files[0], plugin = files[1];
        Script script = Script.standard(c0.shape().vocab(), 13);
        List<EvalDriver.Output> fork = EvalDriver.run(model, plugin, TAU, script.lines(), dir, EvalDriver.Mode.MASKED_FA);
        Comparison c = compare(new ReferenceModel(model, plugin), fork, script, false, 1e-2);
        double maxLogit = c.maxLogitError(), maxGate = c.maxGateError();
        System.out.printf("MASKED_FA: max |logit diff| %.2e, max |gate diff| %.2e%n", maxLogit, maxGate);
        assertTrue(maxLogit < 2e-2, "logits differ by " + maxLogit);
        assertTrue(maxGate < 2e-3, "gates differ by " + maxGate);
    }

    @Test
    void skippedTokensKeysAndValuesAreAttendedByLaterTokens() throws Exception {
        RandomFixtures.Shape shape = small();
        Path model = dir.resolve("model.gguf"), plugin = dir.resolve("plugin.gguf");
        RandomFixtures.writeModel(model, shape, 11, GgmlType.F32);
        RandomFixtures.writePlugin(plugin, shape, 12, List.of(2, 3), shape.embd() / 8, shape.ff() / 8, TAU, null, GgmlType.F32);
        Script script = Script.standard(shape.vocab(), 13);
        List<EvalDriver.Output> fork = EvalDriver.run(model, plugin, TAU, script.lines(), dir);
        ReferenceModel ref = new ReferenceModel(model, plugin);
        Comparison keep = compare(ref, fork, script, false);
        Comparison drop = compare(ref, fork, script, true);
        assertTrue(keep.maxLogitError() < LOGIT_TOLERANCE, "the fork agrees with the reference that keeps skipped K/V");
        assertTrue(drop.maxLogitError() > 100 * LOGIT_TOLERANCE,
                "dropping skipped tokens' K/V changes later outputs (max diff " + drop.maxLogitError() + ")");
    }

    /**
     * A LoRA adapter on every product of the base model together with the plug-in: the reference
     * merges the adapter into its weights, the fork adds the low-rank delta and, in MASKED mode,
     * must leave it out for skipped tokens just as it leaves out the base product.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(value = EvalDriver.Mode.class, names = {"DENSE", "MASKED"})
    void loraAdaptersAndPluginsTogetherMatchTheReference(EvalDriver.Mode mode) throws Exception {
        Case c0 = cases().findFirst().orElseThrow();
        Path[] files = mixedFixture(c0, dir);
        Path model = files[0], plugin = files[1], lora = dir.resolve("lora.gguf");
        RandomFixtures.writeLora(lora, c0.shape(), 51, 4, 8f);
        float scale = 0.75f;
        Script script = Script.standard(c0.shape().vocab(), 13);
        List<EvalDriver.Output> fork = EvalDriver.run(model, plugin, TAU, script.lines(), dir, mode,
                List.of("--lora", lora.toString(), Float.toString(scale)));
        Comparison c = compare(new ReferenceModel(model, plugin).withLora(lora, scale), fork, script, false);
        System.out.printf(mode + " + LoRA: max |logit diff| %.2e, max |gate diff| %.2e, skips per layer %s of %d%n",
                c.maxLogitError(), c.maxGateError(), java.util.Arrays.toString(c.skipsPerLayer()), c.tokens());
        assertTrue(c.maxLogitError() < LOGIT_TOLERANCE, "logits differ by " + c.maxLogitError());
        assertTrue(c.maxGateError() < GATE_TOLERANCE, "gates differ by " + c.maxGateError());
        assertTrue(java.util.Arrays.stream(c.skipsPerLayer()).allMatch(k -> k > 0 && k < c.tokens()), "decisions are mixed");
        List<EvalDriver.Output> without = EvalDriver.run(model, plugin, TAU, script.lines(), dir, mode);
        assertTrue(maxDiff(without, fork) > 0.1, "the LoRA adapter must change the logits for this to prove anything");
    }

    /** Builds a script batch by batch from random word tokens. */
    static final class ScriptBuilder {
        private final SplittableRandom random;
        private final int vocab;
        private final List<String> lines = new ArrayList<>();
        private final List<int[]> fed = new ArrayList<>();

        ScriptBuilder(int vocab, long seed) {
            this.vocab = vocab;
            this.random = new SplittableRandom(seed);
        }

        /** One llama_decode: pairs {seq, count}, each adding count tokens of seq, in this order. */
        ScriptBuilder batch(int... seqCounts) {
            StringBuilder b = new StringBuilder("batch");
            for (int k = 0; k < seqCounts.length; k += 2) {
                b.append(' ').append(seqCounts[k]).append(':');
                for (int j = 0; j < seqCounts[k + 1]; j++) {
                    int t = 259 + random.nextInt(vocab - 259);
                    b.append(j == 0 ? "" : ",").append(t);
                    fed.add(new int[] {seqCounts[k], t});
                }
            }
            lines.add(b.toString());
            return this;
        }

        ScriptBuilder rm(int seq, int p0, int p1) {
            lines.add("rm " + seq + " " + p0 + " " + p1);
            fed.add(new int[] {Script.RM, seq, p0, p1});
            return this;
        }

        ScriptBuilder shift(int seq, int p0, int delta) {
            lines.add("shift " + seq + " " + p0 + " " + delta);
            fed.add(new int[] {Script.SHIFT, seq, p0, delta});
            return this;
        }

        Script build() {
            return new Script(List.copyOf(lines), List.copyOf(fed));
        }
    }

    /**
     * Three sequences prefilled grouped in one batch, then decoded together in changing orders,
     * with one KV stream per sequence and ubatches of 4 (n_ubatch < n_batch): llama.cpp splits such
     * batches equally across sequences, which reorders the tokens. Routing must still come back in
     * batch order (the driver checks every token's position and sequence) and match the reference.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(value = EvalDriver.Mode.class, names = {"DENSE", "MASKED"})
    void severalSequencesInReorderedUbatchesReportRoutingInBatchOrder(EvalDriver.Mode mode) throws Exception {
        Case c0 = cases().findFirst().orElseThrow();
        Path[] files = mixedFixture(c0, dir);
        Script script = new ScriptBuilder(c0.shape().vocab(), 61).batch(0, 6, 1, 6, 2, 6).batch(0, 1, 1, 1, 2, 1)
                .batch(2, 1, 0, 1, 1, 1).batch(1, 1, 2, 1).batch(0, 2, 1, 2, 2, 2).build();
        List<EvalDriver.Output> fork = EvalDriver.run(files[0], files[1], TAU, script.lines(), dir, mode,
                List.of("--non-unified", "--ubatch", "4"));
        Comparison c = compare(new ReferenceModel(files[0], files[1]), fork, script, false);
        System.out.printf(mode + " 3 sequences, split ubatches: max |logit diff| %.2e, max |gate diff| %.2e, skips %s of %d%n",
                c.maxLogitError(), c.maxGateError(), java.util.Arrays.toString(c.skipsPerLayer()), c.tokens());
        assertTrue(c.maxLogitError() < LOGIT_TOLERANCE, "logits differ by " + c.maxLogitError());
        assertTrue(c.maxGateError() < GATE_TOLERANCE, "gates differ by " + c.maxGateError());
        assertTrue(java.util.Arrays.stream(c.skipsPerLayer()).allMatch(k -> k > 0 && k < c.tokens()), "decisions are mixed");
    }

    /** seq_rm in the middle and a context shift (keys rotated by llama.cpp's K-shift), then at the end, with decoding after each. */
    static Script editedCacheScript(int vocab) {
        return new ScriptBuilder(vocab, 71).batch(0, 12).batch(0, 1).batch(0, 1).rm(0, 2, 6).shift(0, 6, -4)
                .batch(0, 1).batch(0, 1).batch(0, 3).rm(0, 10, -1).batch(0, 2).batch(1, 5, 0, 1).build();
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(value = EvalDriver.Mode.class, names = {"DENSE", "MASKED"})
    void seqRmAndAContextShiftMatchTheReference(EvalDriver.Mode mode) throws Exception {
        Case c0 = cases().findFirst().orElseThrow();
        Path[] files = mixedFixture(c0, dir);
        Script script = editedCacheScript(c0.shape().vocab());
        List<EvalDriver.Output> fork = EvalDriver.run(files[0], files[1], TAU, script.lines(), dir, mode, List.of("--ubatch", "4"));
        Comparison c = compare(new ReferenceModel(files[0], files[1]), fork, script, false);
        System.out.printf(mode + " seq_rm + shift: max |logit diff| %.2e, max |gate diff| %.2e, skips %s of %d%n",
                c.maxLogitError(), c.maxGateError(), java.util.Arrays.toString(c.skipsPerLayer()), c.tokens());
        assertTrue(c.maxLogitError() < LOGIT_TOLERANCE, "logits differ by " + c.maxLogitError());
        assertTrue(c.maxGateError() < GATE_TOLERANCE, "gates differ by " + c.maxGateError());
    }

    /**
     * The same edits with a Q8_0 K/V cache (which needs flash attention), several sequences and
     * split ubatches: within Q8_0 precision of the reference. Q8_0 keeps 8 bits per value against
     * F16's 11, so gates move about 8x more than in the F16 flash-attention test (measured 8e-3,
     * bound 2e-2) and logits a few 1e-2 (bound 5e-2). Before patch 0008 the K-shift of a quantized
     * cache whose heads the Hadamard rotation does not cover crashed, in upstream too.
     */
    @Test
    void aQuantizedCacheWithEditsAndSeveralSequencesStaysWithinItsPrecision() throws Exception {
        // heads of 32, the Q8_0 block size
        Case c0 = new Case(new RandomFixtures.Shape(4, 128, 4, 2, 256, 320, 512), 17, EvalDriver.Mode.MASKED_FA);
        Path[] files = mixedFixture(c0, dir);
        Script script = editedCacheScript(c0.shape().vocab());
        List<EvalDriver.Output> fork = EvalDriver.run(files[0], files[1], TAU, script.lines(), dir, EvalDriver.Mode.MASKED_FA,
                List.of("--kv", "q8_0", "--non-unified", "--ubatch", "4"));
        Comparison c = compare(new ReferenceModel(files[0], files[1]), fork, script, false, 2e-2);
        System.out.printf("Q8_0 cache: max |logit diff| %.2e, max |gate diff| %.2e, %d of %d decisions borderline%n",
                c.maxLogitError(), c.maxGateError(), c.borderline(), c.decisions());
        assertTrue(c.maxLogitError() < 5e-2, "logits differ by " + c.maxLogitError());
        assertTrue(c.maxGateError() < 2e-2, "gates differ by " + c.maxGateError());
    }

    /**
     * MASKED and DENSE compute the same values, so equal results alone do not show that MASKED
     * skips anything: its graphs must hold the token-skipping products (ggml_mul_mat_id; the dense
     * base model has none), at decode and at prefill, which they do only where the backend declares
     * that it skips tokens (feature MUL_MAT_ID_SKIP).
     */
    @Test
    void maskedModeBuildsTokenSkippingProductsAndDenseModeNone() throws Exception {
        Case c0 = cases().findFirst().orElseThrow();
        Path[] files = mixedFixture(c0, dir);
        Script script = Script.standard(c0.shape().vocab(), 13);
        long masked = EvalDriver.runLogged(files[0], files[1], TAU, script.lines(), dir, EvalDriver.Mode.MASKED, List.of()).mulMatIdNodes();
        long dense = EvalDriver.runLogged(files[0], files[1], TAU, script.lines(), dir, EvalDriver.Mode.DENSE, List.of()).mulMatIdNodes();
        long decodeOnly = EvalDriver.runLogged(files[0], files[1], TAU, List.of("batch 0:1", "batch 0:300"), dir,
                EvalDriver.Mode.MASKED, List.of()).mulMatIdNodes();
        long prefillOnly = EvalDriver.runLogged(files[0], files[1], TAU, List.of("batch 0:1,300,301,302,303"), dir,
                EvalDriver.Mode.MASKED, List.of()).mulMatIdNodes();
        System.out.printf("mul_mat_id nodes: MASKED %d, DENSE %d, two single tokens %d, one 5-token batch %d%n",
                masked, dense, decodeOnly, prefillOnly);
        assertEquals(0, dense);
        // per routed layer and graph: Wq, Wo, gate, up, down and the adapter's two products (its
        // gate and up are one [d, 2 d_a] product at inference)
        int routed = c0.shape().layers() - c0.shape().layers() / 2;
        assertEquals(2L * routed * 7, decodeOnly, "two single-token graphs");
        assertEquals((long) routed * 7, prefillOnly, "one multi-token graph");
        assertTrue(masked > 0);
    }

    static double maxDiff(List<EvalDriver.Output> a, List<EvalDriver.Output> b) {
        double m = 0;
        for (int i = 0; i < a.size(); i++) {
            for (int v = 0; v < a.get(i).logits().length; v++) {
                m = Math.max(m, Math.abs(a.get(i).logits()[v] - b.get(i).logits()[v]));
            }
        }
        return m;
    }
}
