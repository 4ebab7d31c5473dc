package org.flexidepth.tests.flexidepth;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.llama.AdapterStorage;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.tools.ProjectPaths;
import org.flexidepth.tools.RandomFixtures;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Loading a plug-in stores its float adapters in the base model's quantization class
 * (llama_flexidepth_load_params.adapters_in_base_type, the default): Q8_0 for a Q8_0 or a Q4_0
 * model. Two claims:
 * <ul>
 *   <li>the conversion is ggml's reference quantization: the fork computes, bit for bit, what it
 *       computes with a plug-in whose adapters the project's own Java quantizer wrote in that type;</li>
 *   <li>the routing decisions stay those of the float adapters (the criterion for making it the
 *       default), with the logits within the type's precision.</li>
 * </ul>
 */
class AdapterStorageTest {
    // adapter size 32: every adapter row is whole Q4_0 / Q8_0 blocks
    static final RandomFixtures.Shape SHAPE = new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 512);
    static final List<Integer> ROUTED = List.of(1, 2, 3);
    static final float TAU = 0.5f;
    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0"})
    void adaptersTakeTheBaseTypeAndKeepTheDecisions(GgmlType type) throws Exception {
        Path f32 = dir.resolve("model.gguf"), base = dir.resolve("model-" + type + ".gguf");
        Path floatPlugin = dir.resolve("plugin-f32.gguf"), quantPlugin = dir.resolve("plugin-q8_0.gguf");
        RandomFixtures.writeModel(f32, SHAPE, 11, GgmlType.F32);
        Process quantize = new ProcessBuilder(ProjectPaths.nativeBuild().resolve("bin/llama-quantize").toString(),
                f32.toString(), base.toString(), type.name()).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        assertEquals(0, quantize.waitFor(), "llama-quantize");
        RandomFixtures.writePlugin(floatPlugin, SHAPE, 17, ROUTED, 8, 32, TAU, null, GgmlType.F32);
        RandomFixtures.writePlugin(quantPlugin, SHAPE, 17, ROUTED, 8, 32, TAU, null, GgmlType.Q8_0);

        try (LlamaModel model = LlamaModel.load(base); LlamaModel floatModel = LlamaModel.load(f32)) {
            try (FlexiDepthPlugin converted = model.loadFlexiDepth(floatPlugin);
                 FlexiDepthPlugin stored = model.loadFlexiDepth(floatPlugin, AdapterStorage.AS_STORED);
                 FlexiDepthPlugin onFloatBase = floatModel.loadFlexiDepth(floatPlugin)) {
                assertEquals(Optional.of(GgmlType.Q8_0), converted.adapterType(), "the class whose decisions match the float adapters'");
                assertEquals(Optional.of(GgmlType.F32), stored.adapterType());
                assertEquals(Optional.of(GgmlType.F32), onFloatBase.adapterType(), "a float base keeps float adapters");
            }
        }

        List<String> script = script();
        EvalDriver.Run byLoad = EvalDriver.runLogged(base, floatPlugin, TAU, script, dir, EvalDriver.Mode.AUTO, List.of());
        EvalDriver.Run byJava = EvalDriver.runLogged(base, quantPlugin, TAU, script, dir, EvalDriver.Mode.AUTO, List.of("--adapters-as-stored"));
        EvalDriver.Run asFloat = EvalDriver.runLogged(base, floatPlugin, TAU, script, dir, EvalDriver.Mode.AUTO, List.of("--adapters-as-stored"));
        assertEquals(byJava.outputs().size(), byLoad.outputs().size());
        for (int t = 0; t < byLoad.outputs().size(); t++) {
            assertArrayEquals(byJava.outputs().get(t).logits(), byLoad.outputs().get(t).logits(), "logits of token " + t);
            assertArrayEquals(byJava.outputs().get(t).gates(), byLoad.outputs().get(t).gates(), "gates of token " + t);
        }

        int skips = 0, runs = 0, borderline = 0;
        double maxLogit = 0, maxGate = 0;
        for (int t = 0; t < asFloat.outputs().size(); t++) {
            EvalDriver.Output f = asFloat.outputs().get(t), q = byLoad.outputs().get(t);
            for (int k = 0; k < f.gates().length; k++) {
                maxGate = Math.max(maxGate, Math.abs(f.gates()[k] - q.gates()[k]));
                if (Math.abs(f.gates()[k] - TAU) > 5e-2) {
                    assertEquals(f.ran()[k], q.ran()[k], "decision of token " + t + ", routed layer " + k);
                } else {
                    borderline++;
                }
                skips += f.ran()[k] ? 0 : 1;
                runs += f.ran()[k] ? 1 : 0;
            }
            for (int v = 0; v < f.logits().length; v++) {
                maxLogit = Math.max(maxLogit, Math.abs(f.logits()[v] - q.logits()[v]));
            }
        }
        System.out.printf("Q8_0 adapters on a %s model: max |logit diff| %.2e, max |gate diff| %.2e against float adapters; %d skips, %d runs, %d borderline%n",
                type, maxLogit, maxGate, skips, runs, borderline);
        assertTrue(skips > 0 && runs > 0, "the decisions are mixed: " + skips + " skips, " + runs + " runs");
        assertTrue(maxLogit > 0, "the adapters really changed type");
        assertTrue(maxGate < 5e-2, "gates agree within the type's precision: " + maxGate);
        assertTrue(maxLogit < 0.1, "logits agree within the type's precision: " + maxLogit);
    }

    /** A 24-token prompt, then single-token decodes: prefill and decode graphs both compute adapters. */
    static List<String> script() {
        SplittableRandom r = new SplittableRandom(5);
        StringBuilder prompt = new StringBuilder("batch 0:1");
        for (int i = 0; i < 23; i++) {
            prompt.append(',').append(259 + r.nextInt(SHAPE.vocab() - 259));
        }
        List<String> script = new ArrayList<>(List.of(prompt.toString()));
        for (int i = 0; i < 8; i++) {
            script.add("batch 0:" + (259 + r.nextInt(SHAPE.vocab() - 259)));
        }
        return script;
    }
}
