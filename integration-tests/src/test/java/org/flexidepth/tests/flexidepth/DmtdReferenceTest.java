package org.flexidepth.tests.flexidepth;

import org.flexidepth.tools.DefaultModel;
import org.flexidepth.tools.ProjectPaths;
import org.flexidepth.tools.RandomFixtures;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.llama.LlamaModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fork's direct multi-token decoding (llama_dmtd_decode) against the independent reference
 * (ReferenceModel.dmtdHead and dmtdDecodingOnly, written from dmtd/SPEC.md section 4): prompts of
 * several lengths (so that cycles start at every phase), several cycles at tau 2, 3 and 4, two
 * sequences in one batch at different points of their cycles, a state saved and restored into a
 * new context in the middle of a cycle, and cycles phased by absolute position. The schedule (which
 * token is a cycle head) is computed here from the SPEC and must be the fork's too. On random
 * weights and on dmtd-demo-12L, which was fine-tuned for DMTD elsewhere.
 */
class DmtdReferenceTest {
    static final RandomFixtures.Shape SHAPE = new RandomFixtures.Shape(6, 64, 4, 2, 128, 320, 512);
    static final int THINKING = 4;

    @TempDir
    Path dir;

    /** Builds a driver script and, beside it, what the reference must do for each output. */
    static final class Plan {
        final int tau, thinking;
        final boolean absolute;
        boolean refill = true;
        final List<String> lines = new ArrayList<>();
        final List<int[]> outputs = new ArrayList<>(); // {seq, token, kind}: kind 0 prompt, 1 head, 2 decoding only
        final Map<Integer, Integer> sincePrompt = new HashMap<>(), nextPos = new HashMap<>();

        Plan(int tau, int thinking, boolean absolute) {
            this.tau = tau;
            this.thinking = thinking;
            this.absolute = absolute;
        }

        Plan prompt(int seq, int... tokens) {
            StringBuilder b = new StringBuilder("batch " + seq + ":");
            for (int i = 0; i < tokens.length; i++) {
                b.append(i == 0 ? "" : ",").append(tokens[i]);
                outputs.add(new int[] {seq, tokens[i], 0});
            }
            lines.add(b.toString());
            nextPos.merge(seq, tokens.length, Integer::sum);
            sincePrompt.put(seq, 0);
            return this;
        }

        /** One token for each {seq, token} pair, in one batch. */
        Plan step(int... seqTokens) {
            StringBuilder b = new StringBuilder("batch");
            for (int k = 0; k < seqTokens.length; k += 2) {
                int seq = seqTokens[k], token = seqTokens[k + 1];
                int pos = nextPos.get(seq);
                int since = sincePrompt.get(seq);
                boolean head = tau <= 1 || (absolute ? pos % tau == 0 : since % tau == 0);
                outputs.add(new int[] {seq, token, head ? 1 : 2});
                b.append(' ').append(seq).append(':').append(token);
                nextPos.put(seq, pos + 1);
                sincePrompt.put(seq, since + 1);
            }
            lines.add(b.toString());
            return this;
        }

        /** Heads that do not refill (SPEC section 4, "no refill"). */
        Plan withoutRefill() {
            refill = false;
            return this;
        }

        Plan saveAndRestore() {
            lines.add("save");
            lines.add("restore");
            return this;
        }
    }

    /** Runs the reference on a plan and compares it with the fork's outputs and schedule. */
    static double compare(ReferenceModel ref, Plan plan, EvalDriver.Run fork) {
        List<EvalDriver.Output> out = fork.outputs();
        assertEquals(plan.outputs.size(), out.size(), "outputs");
        String full = fork.log().lines().filter(l -> l.startsWith("dmtd full: ")).findFirst()
                .orElseThrow(() -> new AssertionError("no schedule in " + fork.log())).substring(11).trim();
        String[] flags = full.split(",");
        Map<Integer, ReferenceModel.Sequence> seqs = new HashMap<>();
        Map<Integer, List<Integer>> pending = new HashMap<>();
        double maxDiff = 0;
        int argmaxChecked = 0;
        for (int i = 0; i < out.size(); i++) {
            int[] o = plan.outputs.get(i);
            int seq = o[0], token = o[1], kind = o[2];
            assertEquals(seq, out.get(i).seq(), "sequence of output " + i);
            assertEquals(kind == 2 ? "0" : "1", flags[i], "step kind of output " + i + " (1 full depth, 0 decoding layers only)");
            ReferenceModel.Sequence s = seqs.computeIfAbsent(seq, id -> ref.sequence(id, 0.5f, false, null));
            List<Integer> p = pending.computeIfAbsent(seq, id -> new ArrayList<>());
            ReferenceModel.Step step;
            // without refill the thinking layers never see the decoding-only tokens
            List<Integer> refill = plan.refill ? p : List.of();
            if (kind == 0) {
                s.dmtdRefill(refill, plan.thinking);
                p.clear();
                step = s.step(token);
            } else if (kind == 1) {
                step = s.dmtdHead(refill, token, plan.thinking);
                p.clear();
            } else {
                step = s.dmtdDecodingOnly(token, plan.thinking);
                p.add(token);
            }
            float[] logits = out.get(i).logits();
            int forkBest = 0, refBest = 0, second = -1;
            for (int v = 0; v < ref.vocab; v++) {
                maxDiff = Math.max(maxDiff, Math.abs(step.logits()[v] - logits[v]));
                forkBest = logits[v] > logits[forkBest] ? v : forkBest;
                refBest = step.logits()[v] > step.logits()[refBest] ? v : refBest;
            }
            for (int v = 0; v < ref.vocab; v++) {
                if (v != refBest && (second < 0 || step.logits()[v] > step.logits()[second])) {
                    second = v;
                }
            }
            if (step.logits()[refBest] - step.logits()[second] > 1e-3) {
                assertEquals(refBest, forkBest, "greedy token of output " + i);
                argmaxChecked++;
            }
        }
        assertTrue(argmaxChecked > out.size() / 2, "greedy tokens compared: " + argmaxChecked);
        return maxDiff;
    }

    /** Runs the plan on the fork and holds it to the reference (logits within the tolerance); returns the fork's run. */
    EvalDriver.Run forkFollowsTheReference(ReferenceModel ref, Path model, Plan plan, String what) throws Exception {
        return forkFollowsTheReference(ref, model, plan, what, List.of(), FlexiDepthReferenceTest.LOGIT_TOLERANCE);
    }

    EvalDriver.Run forkFollowsTheReference(ReferenceModel ref, Path model, Plan plan, String what, List<String> driverOptions,
                                           double tolerance) throws Exception {
        List<String> options = new ArrayList<>(dmtdOptions(plan));
        options.addAll(driverOptions);
        EvalDriver.Run fork = EvalDriver.runLogged(model, null, 0.5f, plan.lines, dir, EvalDriver.Mode.DENSE, options);
        double diff = compare(ref, plan, fork);
        System.out.printf("%s: max |logit diff| %.2e%n", what, diff);
        assertTrue(diff < tolerance, what + ": logits differ by " + diff);
        return fork;
    }

    static int[] tokens(SplittableRandom r, int n, int vocab) {
        return r.ints(n, 3, vocab).toArray();
    }

    Path model() throws Exception {
        Path model = dir.resolve("model.gguf");
        RandomFixtures.writeModel(model, SHAPE, 91, GgmlType.F32);
        return model;
    }

    static List<String> dmtdOptions(Plan plan) {
        List<String> o = new ArrayList<>(List.of("--dmtd", String.valueOf(plan.thinking), String.valueOf(plan.tau)));
        if (plan.absolute) {
            o.add("absolute");
        }
        if (!plan.refill) {
            o.add("norefill");
        }
        return o;
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 3, 4})
    void severalCyclesAfterPromptsOfEveryPhase(int tau) throws Exception {
        Path model = model();
        ReferenceModel ref = new ReferenceModel(model, null);
        SplittableRandom r = new SplittableRandom(tau);
        for (int promptLength : new int[] {5, 6, 7, 8}) {
            Plan plan = new Plan(tau, THINKING, false).prompt(0, tokens(r, promptLength, SHAPE.vocab()));
            for (int t : tokens(r, 3 * tau + 2, SHAPE.vocab())) {
                plan.step(0, t);
            }
            forkFollowsTheReference(ref, model, plan, "tau " + tau + ", prompt " + promptLength);
        }
    }

    /**
     * A prompt that follows a reply ended mid-cycle (a chat's next turn): the reply's last tokens
     * were seen by the decoding layers only, and the prompt's first full-depth rows refill them
     * before its thinking layers read their positions. Twice, so that the second prompt also
     * follows a head step.
     */
    @ParameterizedTest
    @ValueSource(ints = {3, 4})
    void aPromptAfterAReplyRefillsItsTail(int tau) throws Exception {
        Path model = model();
        SplittableRandom r = new SplittableRandom(20 + tau);
        Plan plan = new Plan(tau, THINKING, false).prompt(0, tokens(r, 5, SHAPE.vocab()));
        for (int turn = 0; turn < 2; turn++) {
            for (int t : tokens(r, tau + 1 + turn, SHAPE.vocab())) {
                plan.step(0, t);
            }
            plan.prompt(0, tokens(r, 3, SHAPE.vocab()));
        }
        plan.step(0, 300);
        forkFollowsTheReference(new ReferenceModel(model, null), model, plan, "tau " + tau + ", prompts after replies");
    }

    /**
     * Two sequences in one batch, one step apart in their cycles so that a batch holds a head of
     * one and a decoding-only token of the other, with a state saved and restored into a new
     * context in the middle of both cycles.
     */
    @ParameterizedTest
    @ValueSource(ints = {3, 4})
    void twoSequencesOutOfPhaseAndARestoreMidCycle(int tau) throws Exception {
        Path model = model();
        SplittableRandom r = new SplittableRandom(10 + tau);
        Plan plan = new Plan(tau, THINKING, false).prompt(0, tokens(r, 6, SHAPE.vocab()));
        plan.step(0, 300).prompt(1, tokens(r, 9, SHAPE.vocab()));
        for (int i = 0; i < 2 * tau + 1; i++) {
            if (i == tau + 1) {
                plan.saveAndRestore();
            }
            plan.step(0, 3 + r.nextInt(SHAPE.vocab() - 3), 1, 3 + r.nextInt(SHAPE.vocab() - 3));
        }
        EvalDriver.Run fork = forkFollowsTheReference(new ReferenceModel(model, null), model, plan,
                "tau " + tau + ", two sequences, restore mid-cycle");
        assertTrue(fork.log().contains("dmtd full: "));
    }

    /**
     * A head step's decoding layers compute the head's row only and copy the refill rows' K/V from
     * the cells they held, where the block is one ubatch of a one-stream cache: with V transposed
     * (no flash attention) and by rows (flash attention, here on the F32 cache). Otherwise (a stream
     * per sequence; a block in several ubatches) they compute those rows again. Two sequences out
     * of phase, a restore mid-cycle: each way follows the reference, and the driver's count of the
     * gathers shows which way was taken. The CPU's flash attention rounds through F16 (2e-3 here,
     * either way), so there the copies are also held to the recomputation (a stream per sequence)
     * to 1e-4.
     */
    @ParameterizedTest
    @ValueSource(strings = {"", "--flash-attn", "--non-unified", "--ubatch 2"})
    void refillRowsCopiedOrComputedAgainFollowTheReference(String layout) throws Exception {
        Path model = model();
        SplittableRandom r = new SplittableRandom(60);
        int tau = 3;
        Plan plan = new Plan(tau, THINKING, false).prompt(0, tokens(r, 6, SHAPE.vocab()));
        plan.step(0, 300).prompt(1, tokens(r, 7, SHAPE.vocab()));
        for (int i = 0; i < 3 * tau; i++) {
            if (i == tau + 1) {
                plan.saveAndRestore();
            }
            plan.step(0, 3 + r.nextInt(SHAPE.vocab() - 3), 1, 3 + r.nextInt(SHAPE.vocab() - 3));
        }
        for (int t : tokens(r, 2 * tau, SHAPE.vocab())) {
            plan.step(0, t);
        }
        ReferenceModel ref = new ReferenceModel(model, null);
        boolean flash = layout.equals("--flash-attn");
        List<String> options = layout.isEmpty() ? List.of() : List.of(layout.split(" "));
        EvalDriver.Run fork = forkFollowsTheReference(ref, model, plan, "refill, layout [" + layout + "]", options,
                flash ? 1e-2 : FlexiDepthReferenceTest.LOGIT_TOLERANCE);
        boolean copies = layout.isEmpty() || flash;
        long gathers = fork.dmtdRefillCopies();
        // K in each decoding layer of each head step, and V with it where V is stored by rows
        assertTrue(copies ? gathers > 0 : gathers == 0, "refill copies with [" + layout + "]: " + gathers);
        if (flash) {
            EvalDriver.Run again = forkFollowsTheReference(ref, model, plan, "refill, flash attention, a stream per sequence",
                    List.of("--flash-attn", "--non-unified"), 1e-2);
            assertEquals(0, again.dmtdRefillCopies(), "a stream per sequence computes the refill rows again");
            double diff = 0;
            for (int i = 0; i < fork.outputs().size(); i++) {
                float[] a = fork.outputs().get(i).logits(), b = again.outputs().get(i).logits();
                for (int v = 0; v < a.length; v++) {
                    diff = Math.max(diff, Math.abs(a[v] - b[v]));
                }
            }
            assertTrue(diff < FlexiDepthReferenceTest.LOGIT_TOLERANCE, "copied and recomputed refill K/V differ by " + diff);
        }
    }

    /**
     * Without refill a head decodes alone, and the thinking layers of every later step (heads and
     * prompts) attend to the prompts' and the heads' positions only: the cells of decoding-only
     * tokens, whose thinking K/V were never written, are hidden from them. Prompts of two phases,
     * several cycles, a prompt after a reply ended mid-cycle, and more cycles after it.
     */
    @ParameterizedTest
    @ValueSource(ints = {2, 3, 4})
    void withoutRefillTheThinkingLayersSeeOnlyPromptsAndHeads(int tau) throws Exception {
        Path model = model();
        ReferenceModel ref = new ReferenceModel(model, null);
        SplittableRandom r = new SplittableRandom(40 + tau);
        for (int promptLength : new int[] {5, 6}) {
            Plan plan = new Plan(tau, THINKING, false).withoutRefill().prompt(0, tokens(r, promptLength, SHAPE.vocab()));
            for (int t : tokens(r, 2 * tau + 1, SHAPE.vocab())) {
                plan.step(0, t);
            }
            plan.prompt(0, tokens(r, 3, SHAPE.vocab()));
            for (int t : tokens(r, 2 * tau, SHAPE.vocab())) {
                plan.step(0, t);
            }
            forkFollowsTheReference(ref, model, plan, "no refill, tau " + tau + ", prompt " + promptLength);
        }
    }

    /**
     * Without refill, two sequences out of phase in one batch (a head's full step computes the
     * other sequence's decoding-only row through the thinking layers too, and must still hide it),
     * and a restore into a new context mid-cycle, which must carry the hidden positions: a new
     * context would otherwise see every restored cell.
     */
    @Test
    void withoutRefillTwoSequencesAndARestoreKeepTheHiddenPositions() throws Exception {
        Path model = model();
        int tau = 3;
        SplittableRandom r = new SplittableRandom(50);
        Plan plan = new Plan(tau, THINKING, false).withoutRefill().prompt(0, tokens(r, 6, SHAPE.vocab()));
        plan.step(0, 300).prompt(1, tokens(r, 9, SHAPE.vocab()));
        for (int i = 0; i < 3 * tau; i++) {
            if (i == tau + 1) {
                plan.saveAndRestore();
            }
            plan.step(0, 3 + r.nextInt(SHAPE.vocab() - 3), 1, 3 + r.nextInt(SHAPE.vocab() - 3));
        }
        EvalDriver.Run fork = forkFollowsTheReference(new ReferenceModel(model, null), model, plan, "no refill, two sequences, restore mid-cycle");
        // at the save, sequence 0 had decoded head, D, D, head, D after its prompt; sequence 1 head, D, D, head
        assertTrue(fork.log().contains("dmtd hidden in sequence 0: 3") && fork.log().contains("dmtd hidden in sequence 1: 2"),
                "the saved state holds the decoding-only positions: " + fork.log());
    }

    /** The hooks of src/models/qwen3.cpp (per-head Q/K norms, NeoX RoPE) at tau 3. */
    @Test
    void qwen3MatchesTheReferenceToo() throws Exception {
        Path model = dir.resolve("qwen3.gguf");
        RandomFixtures.writeModel(model, "qwen3", SHAPE, 92, GgmlType.F32);
        SplittableRandom r = new SplittableRandom(5);
        Plan plan = new Plan(3, THINKING, false).prompt(0, tokens(r, 6, SHAPE.vocab()));
        for (int t : tokens(r, 10, SHAPE.vocab())) {
            plan.step(0, t);
        }
        forkFollowsTheReference(new ReferenceModel(model, null), model, plan, "qwen3, tau 3");
    }

    @Test
    void cyclesPhasedByAbsolutePosition() throws Exception {
        Path model = model();
        SplittableRandom r = new SplittableRandom(7);
        Plan plan = new Plan(4, THINKING, true).prompt(0, tokens(r, 7, SHAPE.vocab()));
        for (int t : tokens(r, 11, SHAPE.vocab())) {
            plan.step(0, t);
        }
        forkFollowsTheReference(new ReferenceModel(model, null), model, plan, "tau 4 phased by absolute position");
    }

    /**
     * A decoding-only step computes the decoding layers only: its graph holds their products and
     * the output head's, not the thinking layers' (9 products per llama layer: Q, K, V, O, the
     * FFN's three, and without flash attention KQ and KQV).
     */
    @Test
    void decodingOnlyStepsLeaveTheThinkingLayersOut() throws Exception {
        Path model = model();
        SplittableRandom r = new SplittableRandom(8);
        Plan plan = new Plan(4, THINKING, false).prompt(0, tokens(r, 5, SHAPE.vocab())).step(0, 300);
        long headAndPrompt = EvalDriver.runLogged(model, null, 0.5f, plan.lines, dir, EvalDriver.Mode.DENSE, dmtdOptions(plan)).mulMatNodes();
        plan.step(0, 301);
        long withOneMore = EvalDriver.runLogged(model, null, 0.5f, plan.lines, dir, EvalDriver.Mode.DENSE, dmtdOptions(plan)).mulMatNodes();
        assertEquals(9L * (SHAPE.layers() - THINKING) + 1, withOneMore - headAndPrompt, "products of one decoding-only step");
    }

    /** native/tests/dmtd-faults.cpp: a cycle head aborted by the abort callback leaves the cache and the cycle as they were. */
    @Test
    void anAbortedHeadStepPutsTheCacheBack() throws Exception {
        Path exe = ProjectPaths.nativeBuild().resolve("bin/dmtd-faults");
        Process p = new ProcessBuilder(exe.toString(), model().toString()).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        System.out.print(log);
        assertEquals(0, p.waitFor(), log);
        assertTrue(log.contains("ok: logits as if the abort had not happened"), log);
    }

    /** dmtd-demo-12L (thinking layers 0-7, trained at tau 4) on a real sentence, at tau 2 and 4. */
    @ParameterizedTest
    @ValueSource(ints = {2, 4})
    void theDemoModelMatchesTheReference(int tau) throws Exception {
        org.flexidepth.tests.Prerequisites.require(ProjectPaths.shared().isPresent(), "../shared");
        Path model = DefaultModel.dmtdDemo12L();
        int[] text;
        try (LlamaModel m = LlamaModel.load(model)) {
            text = m.tokenize("The King said to his people that they were in the house of the LORD, and the people answered him", true, false);
        }
        ReferenceModel ref = new ReferenceModel(model, null);
        for (boolean refill : new boolean[] {true, false}) {
            Plan plan = new Plan(tau, 8, false).prompt(0, java.util.Arrays.copyOf(text, 6));
            if (!refill) {
                plan.withoutRefill();
            }
            for (int i = 6; i < text.length; i++) {
                plan.step(0, text[i]);
            }
            forkFollowsTheReference(ref, model, plan, "dmtd-demo-12L tau " + tau + (refill ? "" : " without refill") + " over " + text.length + " tokens");
        }
    }
}
