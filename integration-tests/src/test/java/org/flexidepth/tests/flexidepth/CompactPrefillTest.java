package org.flexidepth.tests.flexidepth;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.tools.ProjectPaths;
import org.flexidepth.tools.RandomFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Prefill and multi-sequence batches in AUTO mode: ubatches above the decode size compute Wq, Wo
 * and the FFN for the running rows only and the adapter for the skipped rows only, as one GEMM
 * over the compacted rows, on a Q4_0 model in the CPU's repacked layout (patch 0012) and on an
 * F32 model in its plain buffer (llamafile's GEMM, patch 0019). They must compute what DENSE
 * computes (the oracle, itself checked against the f64 reference by FlexiDepthReferenceTest):
 * the same decisions, gates and logits, with the masked products really in the graphs.
 */
class CompactPrefillTest {
    static final RandomFixtures.Shape SHAPE = new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 512);
    static final float TAU = 0.5f;
    @TempDir
    Path dir;

    @Test
    void largeUbatchesInRepackedQ4_0ComputeWhatDenseComputes() throws Exception {
        Path f32 = dir.resolve("model.gguf"), q4 = dir.resolve("model-q4_0.gguf");
        RandomFixtures.writeModel(f32, SHAPE, 11, GgmlType.F32);
        Process quantize = new ProcessBuilder(ProjectPaths.nativeBuild().resolve("bin/llama-quantize").toString(),
                f32.toString(), q4.toString(), "Q4_0").redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        assertEquals(0, quantize.waitFor(), "llama-quantize");
        checkAgainstDense(q4);
    }

    @Test
    void largeUbatchesInPlainF32ComputeWhatDenseComputes() throws Exception {
        Path f32 = dir.resolve("model.gguf");
        RandomFixtures.writeModel(f32, SHAPE, 11, GgmlType.F32);
        checkAgainstDense(f32);
    }

    void checkAgainstDense(Path model) throws Exception {
        Path plugin = dir.resolve("plugin.gguf");
        RandomFixtures.writePlugin(plugin, SHAPE, 17, List.of(1, 2, 3), 8, 16, TAU, null, GgmlType.F32);

        SplittableRandom r = new SplittableRandom(5);
        List<String> script = new ArrayList<>();
        StringBuilder prompt = new StringBuilder("batch 0:1");
        for (int i = 0; i < 47; i++) {
            prompt.append(',').append(259 + r.nextInt(SHAPE.vocab() - 259)); // a 48-token prefill
        }
        script.add(prompt.toString());
        StringBuilder two = new StringBuilder("batch 0:" + (259 + r.nextInt(50)) + " 1:1");
        for (int i = 0; i < 22; i++) {
            two.append(',').append(259 + r.nextInt(SHAPE.vocab() - 259)); // two sequences, 24 tokens
        }
        script.add(two.toString());
        script.add("batch 0:300 1:301");

        EvalDriver.Run dense = EvalDriver.runLogged(model, plugin, TAU, script, dir, EvalDriver.Mode.DENSE, List.of());
        EvalDriver.Run auto = EvalDriver.runLogged(model, plugin, TAU, script, dir, EvalDriver.Mode.AUTO, List.of());
        assertEquals(0, dense.mulMatIdNodes(), "DENSE computes every branch");
        EvalDriver.Run prefillOnly = EvalDriver.runLogged(model, plugin, TAU, script.subList(0, 1), dir, EvalDriver.Mode.AUTO, List.of());
        assertTrue(prefillOnly.mulMatIdNodes() > 0, "AUTO masks a 48-token ubatch: " + prefillOnly.log());
        assertEquals(dense.outputs().size(), auto.outputs().size());
        int skipped = 0, ran = 0;
        double maxLogit = 0, maxGate = 0;
        for (int t = 0; t < dense.outputs().size(); t++) {
            EvalDriver.Output d = dense.outputs().get(t), a = auto.outputs().get(t);
            for (int k = 0; k < d.gates().length; k++) {
                maxGate = Math.max(maxGate, Math.abs(d.gates()[k] - a.gates()[k]));
                if (Math.abs(d.gates()[k] - TAU) > 1e-3) {
                    assertEquals(d.ran()[k], a.ran()[k], "decision of token " + t + ", routed layer " + k);
                }
                skipped += d.ran()[k] ? 0 : 1;
                ran += d.ran()[k] ? 1 : 0;
            }
            for (int v = 0; v < d.logits().length; v++) {
                maxLogit = Math.max(maxLogit, Math.abs(d.logits()[v] - a.logits()[v]));
            }
        }
        System.out.printf("compact prefill: max |logit diff| %.2e, max |gate diff| %.2e, %d skips, %d runs%n", maxLogit, maxGate, skipped, ran);
        assertTrue(skipped > 0 && ran > 0, "the decisions are mixed: " + skipped + " skips, " + ran + " runs");
        assertTrue(maxGate < 1e-4, "gates agree: " + maxGate);
        assertTrue(maxLogit < 1e-3, "logits agree: " + maxLogit);
    }
}
