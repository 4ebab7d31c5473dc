package org.flexidepth.tests.flexidepth;

import org.flexidepth.tools.RandomFixtures;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.llama.ContextFullException;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.LayerUsage;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.llama.TokenScores;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Session.score (log-probabilities of a text, for perplexity) against the reference forward pass.
 * Sessions run with llama.cpp's defaults (F16 cache, flash attention), hence a 2e-2 tolerance on
 * log-probabilities and decisions compared where the gate is not within 1e-2 of tau.
 */
class ScoringTest {
    static final RandomFixtures.Shape SHAPE = new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 512);

    @TempDir
    Path dir;

    private static int[] tokens(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] t = new int[n];
        t[0] = 1;
        for (int i = 1; i < n; i++) {
            t[i] = 259 + r.nextInt(SHAPE.vocab() - 259);
        }
        return t;
    }

    private static double logSoftmax(double[] logits, int token) {
        double max = Double.NEGATIVE_INFINITY;
        for (double l : logits) {
            max = Math.max(max, l);
        }
        double sum = 0;
        for (double l : logits) {
            sum += Math.exp(l - max);
        }
        return logits[token] - max - Math.log(sum);
    }

    @Test
    void scoresMatchTheReferenceWithAndWithoutAPlugin() throws Exception {
        Path model = dir.resolve("model.gguf"), plugin = dir.resolve("plugin.gguf");
        RandomFixtures.writeModel(model, SHAPE, 11, GgmlType.F32);
        RandomFixtures.writePlugin(plugin, SHAPE, 17, List.of(2, 3), 8, 16, 0.5f, null, GgmlType.F32);
        int[] tokens = tokens(40, 5);
        try (LlamaModel m = LlamaModel.load(model); FlexiDepthPlugin p = m.loadFlexiDepth(plugin);
             Session s = m.newSession(SessionOptions.builder().batchSize(16).build())) {
            for (boolean withPlugin : new boolean[] {false, true}) {
                if (withPlugin) {
                    s.attach(p, 0.5f);
                }
                TokenScores scores = s.score(tokens);
                ReferenceModel ref = new ReferenceModel(model, withPlugin ? plugin : null);
                List<LayerUsage> usage = scores.layers();
                ReferenceModel.Sequence seq = ref.sequence(0, 0.5f, false, (sq, pos, layer, g) ->
                        Math.abs(g - 0.5) < 1e-2 ? usage.get(pos).ran(List.of(2, 3).indexOf(layer)) : null);
                float[] lp = scores.logProbabilities();
                assertEquals(tokens.length - 1, lp.length);
                for (int i = 0; i < tokens.length; i++) {
                    ReferenceModel.Step step = seq.step(tokens[i]);
                    if (i + 1 < tokens.length) {
                        assertEquals(logSoftmax(step.logits(), tokens[i + 1]), lp[i], 2e-2, "log-probability at " + i);
                    }
                    if (withPlugin) {
                        for (int r = 0; r < 2; r++) {
                            if (Math.abs(step.gates().get(r) - 0.5) >= 1e-2) {
                                assertEquals(step.ran().get(r), usage.get(i).ran(r), "decision at " + i);
                            }
                        }
                    }
                }
                assertEquals(withPlugin ? tokens.length : 0, usage.size());
                assertTrue(Double.isFinite(scores.perplexity()) && scores.perplexity() > 1);
            }
            assertThrows(ContextFullException.class, () -> s.score(new int[s.contextSize() + 1]));
        }
    }

    @Test
    void realTextIsMorePredictableThanTheSameTokensShuffled() throws Exception {
        Path model = org.flexidepth.tests.api.RealModels.stories260K();
        try (LlamaModel m = LlamaModel.load(model); Session s = m.newSession()) {
            int[] text = m.tokenize("Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog.");
            int[] shuffled = text.clone();
            SplittableRandom r = new SplittableRandom(3);
            for (int i = shuffled.length - 1; i > 1; i--) {
                int j = 1 + r.nextInt(i);
                int t = shuffled[i];
                shuffled[i] = shuffled[j];
                shuffled[j] = t;
            }
            double real = s.score(text).perplexity(), noise = s.score(shuffled).perplexity();
            assertTrue(real < noise / 3, "perplexity of the story " + real + ", shuffled " + noise);
        }
    }
}
