package org.flexidepth.tests.flexidepth;

import org.flexidepth.tests.api.RealModels;
import org.flexidepth.tools.LayerRemoval;
import org.flexidepth.tools.RandomFixtures;
import org.flexidepth.gguf.GgmlType;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.ModelInfo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The evaluation's static baselines (ShortGPT, early exit) are measured as forced skips of the removal plug-in
 * and reported as exact layer removal. Here each is compared with a model that really lacks the
 * layers: a GGUF with their tensors dropped and the blocks renumbered (early exit: the last k cut),
 * run by the same library without any plug-in. Logits of every token, over a prefill and single-token
 * decodes that read the cache, must agree within 1e-5, in both ways of computing routed layers.
 */
class LayerRemovalTest {
    static final double TOLERANCE = 1e-5;

    @TempDir
    Path dir;

    @Test
    void forcedSkipsEqualARandomModelWithoutTheLayers() throws Exception {
        Path model = dir.resolve("random.gguf");
        RandomFixtures.writeModel(model, new RandomFixtures.Shape(6, 64, 4, 2, 128, 320, 64), 31, GgmlType.F32);
        check(model, 320, List.of(List.of(1, 3), List.of(0), List.of(4, 5)));
    }

    @Test
    void forcedSkipsEqualFlexiDemo12LWithoutTheLayers() throws Exception {
        // a ShortGPT-like choice from the middle and early exit after 9 of 12 layers
        check(RealModels.flexiDemo12L(), 2048, List.of(List.of(3, 7, 8), List.of(9, 10, 11)));
    }

    private void check(Path model, int vocab, List<List<Integer>> removals) throws Exception {
        Path plugin = dir.resolve("removal.gguf");
        int nLayer;
        try (LlamaModel m = LlamaModel.load(model)) {
            ModelInfo info = m.info();
            nLayer = info.layers();
            LayerRemoval.writePlugin(plugin, info);
        }
        SplittableRandom r = new SplittableRandom(5);
        StringBuilder prefill = new StringBuilder("batch 0:1");
        for (int i = 0; i < 24; i++) {
            prefill.append(',').append(r.nextInt(3, vocab));
        }
        List<String> tokens = new ArrayList<>(List.of(prefill.toString()));
        for (int i = 0; i < 4; i++) {
            tokens.add("batch 0:" + r.nextInt(3, vocab));
        }
        List<EvalDriver.Output> base = EvalDriver.run(model, null, 0.5f, tokens, dir);
        for (List<Integer> removed : removals) {
            Path cut = LayerRemoval.write(model, dir.resolve("cut.gguf"), removed);
            List<EvalDriver.Output> without = EvalDriver.run(cut, null, 0.5f, tokens, dir);
            String force = "force " + java.util.stream.IntStream.range(0, nLayer).mapToObj(l -> removed.contains(l) ? "0" : "1")
                    .collect(Collectors.joining(","));
            List<String> forced = new ArrayList<>(List.of(force));
            forced.addAll(tokens);
            for (EvalDriver.Mode mode : List.of(EvalDriver.Mode.MASKED, EvalDriver.Mode.DENSE)) {
                List<EvalDriver.Output> skipped = EvalDriver.run(model, plugin, 0.5f, forced, dir, mode);
                assertEquals(without.size(), skipped.size());
                double worst = 0, moved = 0;
                for (int t = 0; t < without.size(); t++) {
                    float[] a = without.get(t).logits(), b = skipped.get(t).logits(), c = base.get(t).logits();
                    for (int v = 0; v < a.length; v++) {
                        worst = Math.max(worst, Math.abs(a[v] - b[v]));
                        moved = Math.max(moved, Math.abs(a[v] - c[v]));
                    }
                    for (int l = 0; l < nLayer; l++) {
                        assertEquals(!removed.contains(l), skipped.get(t).ran()[l], "token " + t + " layer " + l);
                    }
                }
                System.out.printf("%s without %s, %s: max |logit difference| %.2e against the cut model, %.2e against the base%n",
                        model.getFileName(), removed, mode, worst, moved);
                assertTrue(worst <= TOLERANCE, "forced skips of " + removed + " differ from the cut model by " + worst);
                assertTrue(moved > 1e-2, "removing " + removed + " must change the logits (" + moved + ")");
            }
        }
    }
}
