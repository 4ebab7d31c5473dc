package org.flexidepth.tests.flexidepth;

import org.flexidepth.tools.DefaultModel;
import org.flexidepth.tools.ProjectPaths;
import org.flexidepth.tools.RandomFixtures;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.llama.Dmtd;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.InvalidArgumentException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Sampling;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.llama.Token;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DMTD through the Java API: greedy generation on dmtd-demo-12L equals greedy generation by the
 * independent reference under the SPEC's schedule, each token says which kind of step it came
 * from, and bad options are refused.
 */
class DmtdSessionTest {
    @TempDir
    Path dir;

    static GenerationOptions greedy(int n) {
        return GenerationOptions.builder().maxTokens(n).sampling(Sampling.greedy()).build();
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 4})
    void greedyGenerationFollowsTheReference(int tau) throws Exception {
        org.flexidepth.tests.Prerequisites.require(ProjectPaths.shared().isPresent(), "../shared");
        Path modelPath = DefaultModel.dmtdDemo12L();
        int n = 3 * tau + 2;
        List<Token> tokens;
        int[] prompt;
        try (LlamaModel model = LlamaModel.load(modelPath);
             Session s = model.newSession(SessionOptions.builder().contextSize(256).dmtd(Dmtd.cycle(tau)).build())) {
            prompt = model.tokenize("The King said to his people that");
            tokens = new ArrayList<>();
            s.generate(prompt, greedy(n)).forEachRemaining(tokens::add);
        }
        // the reference: the prompt at full depth, then heads every tau tokens from the first generated
        ReferenceModel ref = new ReferenceModel(modelPath, null);
        ReferenceModel.Sequence seq = ref.sequence(0, 0.5f, false, null);
        ReferenceModel.Step last = null;
        for (int t : prompt) {
            last = seq.step(t);
        }
        assertFollowsTheReference(tokens, seq, last, new ArrayList<>(), tau, "");
        assertEquals(n, tokens.size());
    }

    /**
     * A second turn: the next prompt extends the first prompt and its reply, which ended in the
     * middle of a cycle. The session reuses the cached prefix, and the new prompt's full-depth pass
     * refills the reply's last tokens, as the reference does, before reading them.
     */
    @Test
    void aSecondTurnRefillsTheEndOfTheFirstReply() throws Exception {
        org.flexidepth.tests.Prerequisites.require(ProjectPaths.shared().isPresent(), "../shared");
        Path modelPath = DefaultModel.dmtdDemo12L();
        int tau = 4, n = 8; // of the reply's 7 decoded tokens, 5 and 6 are decoding-only
        List<Token> first = new ArrayList<>(), second = new ArrayList<>();
        int[] prompt, next;
        // batches of 8: the new prompt and the 2 tokens it refills do not fit one
        try (LlamaModel model = LlamaModel.load(modelPath);
             Session s = model.newSession(SessionOptions.builder().contextSize(256).batchSize(8).dmtd(Dmtd.cycle(tau)).build())) {
            prompt = model.tokenize("The King said to his people that");
            s.generate(prompt, greedy(n)).forEachRemaining(first::add);
            int[] more = model.tokenize(" and then the LORD said unto them", false, false);
            assertTrue(more.length + 1 + 2 > 8, "the first batch of the new prompt and its refill exceed a batch");
            next = java.util.stream.IntStream.concat(java.util.stream.IntStream.concat(java.util.Arrays.stream(prompt),
                    first.stream().mapToInt(Token::id)), java.util.Arrays.stream(more)).toArray();
            GenerationResult r = s.generate(next, greedy(n)).result();
            assertEquals(prompt.length + n - 1, r.stats().reusedTokens(), "the prompt and the reply but its last token are reused");
            second.addAll(r.tokens());
        }
        ReferenceModel ref = new ReferenceModel(modelPath, null);
        ReferenceModel.Sequence seq = ref.sequence(0, 0.5f, false, null);
        ReferenceModel.Step last = null;
        for (int t : prompt) {
            last = seq.step(t);
        }
        // the first reply: its last token is sampled, not decoded
        List<Integer> pending = new ArrayList<>();
        assertFollowsTheReference(first.subList(0, n - 1), seq, last, pending, tau, "first reply ");
        assertEquals(2, pending.size(), "decoding-only tokens at the end of the first reply");
        seq.dmtdRefill(pending, 8);
        for (int i = prompt.length + n - 1; i < next.length; i++) {
            last = seq.step(next[i]);
        }
        assertFollowsTheReference(second, seq, last, new ArrayList<>(), tau, "second reply ");
    }

    /**
     * A snapshot taken in the middle of a cycle, in memory and in a file, restored into new sessions:
     * the next turn generates what it generates in the session the snapshot came from, which
     * needs the snapshot to carry the reply's decoding-only tokens for the next full step to refill.
     * A session without DMTD, or with another split, refuses the snapshot.
     */
    @Test
    void aSnapshotMidCycleCarriesThePlaceInTheCycle() throws Exception {
        org.flexidepth.tests.Prerequisites.require(ProjectPaths.shared().isPresent(), "../shared");
        Path modelPath = DefaultModel.dmtdDemo12L();
        SessionOptions dmtd = SessionOptions.builder().contextSize(256).dmtd(Dmtd.cycle(4)).build();
        try (LlamaModel model = LlamaModel.load(modelPath)) {
            int[] prompt = model.tokenize("The King said to his people that");
            List<Token> reply = new ArrayList<>();
            org.flexidepth.llama.SessionState state;
            Path file = dir.resolve("mid-cycle.state");
            List<Token> afterwards;
            int[] next;
            try (Session s = model.newSession(dmtd)) {
                s.generate(prompt, greedy(8)).forEachRemaining(reply::add);
                state = s.saveState();
                s.saveState(file);
                next = java.util.stream.IntStream.concat(java.util.Arrays.stream(prompt), reply.stream().mapToInt(Token::id)).toArray();
                afterwards = s.generate(next, greedy(6)).result().tokens();
            }
            assertTrue(state.routing().contains("DMTD with 8 thinking layers"), state.routing());
            for (boolean fromFile : new boolean[] {false, true}) {
                try (Session s = model.newSession(dmtd)) {
                    if (fromFile) {
                        s.restoreState(file);
                    } else {
                        s.restoreState(state);
                    }
                    GenerationResult r = s.generate(next, greedy(6)).result();
                    assertEquals(next.length - 1, r.stats().reusedTokens());
                    assertEquals(ids(afterwards), ids(r.tokens()), (fromFile ? "file" : "in memory") + ": tokens after the restore");
                    assertEquals(afterwards.stream().map(Token::step).toList(), r.tokens().stream().map(Token::step).toList());
                    for (int i = 0; i < afterwards.size(); i++) {
                        // the same computation, so the same numbers: unrefilled positions move them
                        assertEquals(afterwards.get(i).logProbability(), r.tokens().get(i).logProbability(), 1e-6, "log-probability of token " + i);
                    }
                }
            }
            try (Session plain = model.newSession(SessionOptions.builder().contextSize(256).build());
                 Session other = model.newSession(SessionOptions.builder().contextSize(256).dmtd(Dmtd.cycle(4).withThinkingLayers(6)).build())) {
                assertThrows(InvalidArgumentException.class, () -> plain.restoreState(state));
                assertThrows(InvalidArgumentException.class, () -> other.restoreState(file));
            }
        }
    }

    /**
     * Without refill (SPEC section 4): a reply, a snapshot taken at its end in the middle of a
     * cycle, and the next turn, whose prompt's thinking layers do not see the reply's decoding-only
     * tokens, all as the reference computes them; the snapshot, in memory and in a file, restored
     * into new sessions continues as the original did, which needs it to carry the hidden
     * positions; a session that refills refuses it.
     */
    @Test
    void withoutRefillAReplyASnapshotAndTheNextTurnFollowTheReference() throws Exception {
        org.flexidepth.tests.Prerequisites.require(ProjectPaths.shared().isPresent(), "../shared");
        Path modelPath = DefaultModel.dmtdDemo12L();
        int tau = 4, n = 8;
        SessionOptions noRefill = SessionOptions.builder().contextSize(256).dmtd(Dmtd.cycle(tau).withRefill(false)).build();
        try (LlamaModel model = LlamaModel.load(modelPath)) {
            int[] prompt = model.tokenize("The King said to his people that");
            List<Token> first = new ArrayList<>(), second;
            org.flexidepth.llama.SessionState state;
            Path file = dir.resolve("no-refill.state");
            int[] next;
            try (Session s = model.newSession(noRefill)) {
                s.generate(prompt, greedy(n)).forEachRemaining(first::add);
                state = s.saveState();
                s.saveState(file);
                int[] more = model.tokenize(" and then the LORD said unto them", false, false);
                next = java.util.stream.IntStream.concat(java.util.stream.IntStream.concat(java.util.Arrays.stream(prompt),
                        first.stream().mapToInt(Token::id)), java.util.Arrays.stream(more)).toArray();
                second = s.generate(next, greedy(6)).result().tokens();
            }
            assertTrue(state.routing().contains("and no refill"), state.routing());

            ReferenceModel.Sequence seq = new ReferenceModel(modelPath, null).sequence(0, 0.5f, false, null);
            ReferenceModel.Step last = null;
            for (int t : prompt) {
                last = seq.step(t);
            }
            List<Integer> pending = new ArrayList<>();
            assertFollowsTheReference(first.subList(0, n - 1), seq, last, pending, tau, false, "no refill, first reply: ");
            for (int i = prompt.length + n - 1; i < next.length; i++) {
                last = seq.step(next[i]); // nothing refilled: the thinking layers never see the pending tokens
            }
            assertFollowsTheReference(second, seq, last, new ArrayList<>(), tau, false, "no refill, second reply: ");

            for (boolean fromFile : new boolean[] {false, true}) {
                try (Session s = model.newSession(noRefill)) {
                    if (fromFile) {
                        s.restoreState(file);
                    } else {
                        s.restoreState(state);
                    }
                    List<Token> r = s.generate(next, greedy(6)).result().tokens();
                    assertEquals(ids(second), ids(r), (fromFile ? "file" : "in memory") + ": tokens after the restore");
                    for (int i = 0; i < second.size(); i++) {
                        assertEquals(second.get(i).logProbability(), r.get(i).logProbability(), 1e-6, "log-probability of token " + i);
                    }
                }
            }
            try (Session refill = model.newSession(SessionOptions.builder().contextSize(256).dmtd(Dmtd.cycle(tau)).build())) {
                assertThrows(InvalidArgumentException.class, () -> refill.restoreState(state));
            }
        }
    }

    /** A batch smaller than a cycle head's block (tau rows): the head still decodes, as the reference does. */
    @Test
    void aBatchSmallerThanTheCycle() throws Exception {
        org.flexidepth.tests.Prerequisites.require(ProjectPaths.shared().isPresent(), "../shared");
        Path modelPath = DefaultModel.dmtdDemo12L();
        List<Token> tokens = new ArrayList<>();
        int[] prompt;
        try (LlamaModel model = LlamaModel.load(modelPath);
             Session s = model.newSession(SessionOptions.builder().contextSize(256).batchSize(2).dmtd(Dmtd.cycle(4)).build())) {
            prompt = model.tokenize("The King said to his people that");
            s.generate(prompt, greedy(10)).forEachRemaining(tokens::add);
        }
        ReferenceModel.Sequence seq = new ReferenceModel(modelPath, null).sequence(0, 0.5f, false, null);
        ReferenceModel.Step last = null;
        for (int t : prompt) {
            last = seq.step(t);
        }
        assertFollowsTheReference(tokens, seq, last, new ArrayList<>(), 4, "batch 2: ");
    }

    static List<Integer> ids(List<Token> tokens) {
        return tokens.stream().map(Token::id).toList();
    }

    /**
     * Checks greedy tokens against the reference continuing from {@code last}, the logits of a
     * full-depth step: heads every tau tokens, the others decoding-only. Afterwards {@code pending}
     * holds the decoding-only tokens since the last head.
     */
    static void assertFollowsTheReference(List<Token> tokens, ReferenceModel.Sequence seq, ReferenceModel.Step last,
                                          List<Integer> pending, int tau, String what) {
        assertFollowsTheReference(tokens, seq, last, pending, tau, true, what);
    }

    /** As above, with heads that refill or not. */
    static void assertFollowsTheReference(List<Token> tokens, ReferenceModel.Sequence seq, ReferenceModel.Step last,
                                          List<Integer> pending, int tau, boolean refill, String what) {
        for (int i = 0; i < tokens.size(); i++) {
            int best = argmax(last.logits());
            assertEquals(best, tokens.get(i).id(), what + "greedy token " + i + " at tau " + tau);
            // token 0 comes from the prompt's logits; token i > 0 from the step that read token i - 1
            Token.Step expected = i == 0 || (i - 1) % tau == 0 ? Token.Step.FULL_DEPTH : Token.Step.DECODING_LAYERS;
            assertEquals(Optional.of(expected), tokens.get(i).step(), what + "step of token " + i);
            if ((i % tau) == 0) {
                last = seq.dmtdHead(refill ? pending : List.of(), best, 8);
                pending.clear();
            } else {
                last = seq.dmtdDecodingOnly(best, 8);
                pending.add(best);
            }
        }
    }

    /**
     * Session.score in a DMTD session is the cyclical-masking objective, as the reference computes
     * it; without refill, decoding without refill with every token known (heads by position: the
     * thinking layers then see the heads only).
     */
    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void scoringReadsTheTextAsTrainingDid(boolean refill) throws Exception {
        org.flexidepth.tests.Prerequisites.require(ProjectPaths.shared().isPresent(), "../shared");
        Path modelPath = DefaultModel.dmtdDemo12L();
        int[] text;
        float[] dmtd, full;
        try (LlamaModel model = LlamaModel.load(modelPath)) {
            text = model.tokenize("The King said to his people that they were in the house of the LORD, and the people answered him", true, false);
            try (Session s = model.newSession(SessionOptions.builder().contextSize(256).batchSize(8).dmtd(Dmtd.cycle(4).withRefill(refill)).build())) {
                dmtd = s.score(text).logProbabilities();
            }
            try (Session s = model.newSession(SessionOptions.builder().contextSize(256).build())) {
                full = s.score(text).logProbabilities();
            }
        }
        ReferenceModel ref = new ReferenceModel(modelPath, null);
        ReferenceModel.Sequence seq = ref.sequence(0, 0.5f, false, null);
        double maxDiff = 0, fullDiff = 0;
        for (int i = 0; i + 1 < text.length; i++) {
            double[] logits = refill ? seq.dmtdMasked(text[i], 8, 4).logits()
                    : i % 4 == 0 ? seq.dmtdHead(List.of(), text[i], 8).logits() : seq.dmtdDecodingOnly(text[i], 8).logits();
            double max = java.util.Arrays.stream(logits).max().orElseThrow(), sum = 0;
            for (double v : logits) {
                sum += Math.exp(v - max);
            }
            double logProb = logits[text[i + 1]] - max - Math.log(sum);
            maxDiff = Math.max(maxDiff, Math.abs(logProb - dmtd[i]));
            fullDiff = Math.max(fullDiff, Math.abs(logProb - full[i]));
        }
        System.out.printf("DMTD scoring%s against the reference: max |log-prob diff| %.2e over %d tokens (batches of 8); full depth %.2e%n",
                refill ? "" : " without refill", maxDiff, text.length, fullDiff);
        // a session's default cache is F16, which moves log-probabilities by about 1e-3
        assertTrue(maxDiff < 5e-3, "log-probabilities differ by " + maxDiff);
        assertTrue(fullDiff > 0.1, "the cyclical masking must change the scores for this to prove anything: " + fullDiff);
    }

    static int argmax(double[] v) {
        int b = 0;
        for (int i = 1; i < v.length; i++) {
            b = v[i] > v[b] ? i : b;
        }
        return b;
    }

    @Test
    void withoutDmtdTokensSayNothingAndBadOptionsAreRefused() throws Exception {
        Path modelPath = dir.resolve("model.gguf");
        RandomFixtures.writeModel(modelPath, new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 256), 3, GgmlType.F32);
        try (LlamaModel model = LlamaModel.load(modelPath)) {
            try (Session s = model.newSession()) {
                GenerationResult r = s.generate("hello", greedy(3), t -> { });
                assertTrue(r.tokens().stream().allMatch(t -> t.step().isEmpty()));
            }
            // a model not fine-tuned for DMTD declares no split
            var e = assertThrows(InvalidArgumentException.class, () -> model.newSession(SessionOptions.builder().dmtd(Dmtd.cycle(2)).build()));
            assertTrue(e.getMessage().contains("dmtd.thinking_layers"), e.getMessage());
            e = assertThrows(InvalidArgumentException.class,
                    () -> model.newSession(SessionOptions.builder().dmtd(Dmtd.cycle(2).withThinkingLayers(4)).build()));
            assertTrue(e.getMessage().contains("thinking layers must be 1 to 3"), e.getMessage());
            assertThrows(InvalidArgumentException.class, () -> Dmtd.cycle(0));
            assertThrows(InvalidArgumentException.class, () -> SessionOptions.builder().dmtd(Dmtd.cycle(2))
                    .embeddings(org.flexidepth.llama.Pooling.MEAN, 1).build());
            // an explicit split runs any model
            try (Session s = model.newSession(SessionOptions.builder().dmtd(Dmtd.cycle(3).withThinkingLayers(2)).build())) {
                GenerationResult r = s.generate("hello", greedy(7), t -> { });
                assertEquals(List.of(Token.Step.FULL_DEPTH, Token.Step.FULL_DEPTH, Token.Step.DECODING_LAYERS, Token.Step.DECODING_LAYERS,
                        Token.Step.FULL_DEPTH, Token.Step.DECODING_LAYERS, Token.Step.DECODING_LAYERS),
                        r.tokens().stream().map(t -> t.step().orElseThrow()).toList());
                // FlexiDepth and DMTD do not combine yet: refused, and the session goes on without the plug-in
                Path plugin = dir.resolve("plugin.gguf");
                RandomFixtures.writePlugin(plugin, new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 256), 4, List.of(2, 3), 8, 16, 0.5f, null,
                        GgmlType.F32);
                try (var p = model.loadFlexiDepth(plugin)) {
                    var refused = assertThrows(org.flexidepth.llama.FlexiDepthException.class, () -> s.attach(p, 0.5f));
                    assertTrue(refused.getMessage().contains("DMTD"), refused.getMessage());
                    assertTrue(s.attachedPlugin().isEmpty());
                }
                assertFalse(s.generate(" more", greedy(2), t -> { }).tokens().isEmpty(), "the session goes on after a refusal");
            }
        }
    }
}
