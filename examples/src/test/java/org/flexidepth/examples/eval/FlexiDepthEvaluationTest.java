package org.flexidepth.examples.eval;

import org.flexidepth.tools.RandomFixtures;
import org.flexidepth.gguf.GgmlType;
import org.flexidepth.tools.JsonFiles;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.llama.SkipFamily;
import org.flexidepth.llama.TrainingOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The evaluation program end to end on a random tiny model with tiny budgets: plug-ins are
 * trained and cached, every configuration is measured, the static baselines are exact layer
 * removal, and the JSON and HTML reports are written.
 */
class FlexiDepthEvaluationTest {
    static final RandomFixtures.Shape SHAPE = new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 64);

    @TempDir
    Path dir;

    static String words(long seed, int n) {
        String[] vocab = {"the", "king", "said", "to", "his", "people", "that", "they", "were", "in", "house", "of", "lord", "and"};
        SplittableRandom r = new SplittableRandom(seed);
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < n; i++) {
            b.append(i == 0 ? "" : " ").append(vocab[r.nextInt(vocab.length)]);
        }
        return b.toString();
    }

    @Test
    void producesEveryNumberAndCachesPlugins() throws IOException {
        Path model = dir.resolve("model.gguf");
        RandomFixtures.writeModel(model, SHAPE, 21, GgmlType.F32);
        Path train = dir.resolve("train.txt");
        Files.writeString(train, words(1, 3000));
        List<String> passages = List.of(words(2, 30), words(3, 30), words(4, 30), words(5, 30));
        List<TaskPrompts.Task> tasks = List.of(TaskPrompts.copy("copy", "test", passages, 8),
                TaskPrompts.continuation("continue", "test", passages, 10), TaskPrompts.numbers(2, 3, 1).get(1));
        Path out = dir.resolve("out");
        var setup = new FlexiDepthEvaluation.Setup(model, List.of(2, 3), List.of(0.01f, 1f),
                List.of(SkipFamily.LAYER_NO_KV, SkipFamily.ATTENTION, SkipFamily.FFN), List.of(0.01f, 1f),
                TrainingOptions.builder().tokenBudget(512).warmupSteps(1).learningRate(1e-2f).build(), List.of(train),
                Map.of("text", words(6, 800)), List.of(words(7, 600)), 256, 2, tasks, 6, 2, out);
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        EvaluationReport report = FlexiDepthEvaluation.run(setup, new PrintStream(log, true));

        List<EvaluationReport.Point> points = report.points();
        assertEquals(1, points.stream().filter(p -> p.method().equals("base")).count());
        assertEquals(2, points.stream().filter(p -> p.method().equals("flexidepth")).count());
        // removing 1 and 2 layers (the routed layers start at 2), measured by forcing the removal plug-in
        for (String method : List.of("shortgpt", "early_exit")) {
            List<EvaluationReport.Point> curve = points.stream().filter(p -> p.method().equals(method)).toList();
            assertEquals(List.of(3.0, 2.0), curve.stream().map(EvaluationReport.Point::layers).toList(), method);
        }
        assertTrue(points.stream().filter(p -> p.label().equals("early_exit without [3]")).findFirst().isPresent());
        assertEquals(2, report.comparisons().size());
        assertEquals(2 * tasks.size(), report.tasks().size());
        assertTrue(report.tasks().stream().allMatch(t -> t.tokens() > 0 && t.meanLayers() >= 2 && t.meanLayers() <= 4
                && t.referenceLayers() >= 2 && t.referenceLayers() <= 4), report.tasks()::toString);

        // every family at both alphas, the K/V ablation of FlexiDepth's two, the base model
        List<EvaluationReport.FamilyPoint> families = report.familyPoints();
        for (String f : List.of("layer", "layer_no_kv", "attention", "ffn", "kv_dropped")) {
            assertEquals(2, families.stream().filter(p -> p.family().equals(f)).count(), f);
        }
        assertEquals(1, families.stream().filter(p -> p.family().equals("base")).count());
        // a skipped layer still reads something, and a family that skips less of it reads more
        for (EvaluationReport.FamilyPoint p : families) {
            assertTrue(p.layerEquivalents() >= p.layers() && p.layerEquivalents() <= SHAPE.layers(), p::toString);
        }
        SkipCost cost = SkipCost.of(model);
        assertTrue(cost.skippedShare(SkipFamily.ATTENTION, 0, SHAPE.embd()) > cost.skippedShare(SkipFamily.FFN, 8, SHAPE.embd()));
        assertTrue(cost.skippedShare(SkipFamily.FFN, 8, SHAPE.embd()) > cost.skippedShare(SkipFamily.LAYER, 8, SHAPE.embd()));
        assertEquals(8, report.familyComparisons().size(), "every point of the other families against FlexiDepth's curve");
        Map<?, ?> json = (Map<?, ?>) JsonFiles.parse(Files.readString(out.resolve("results.json")));
        assertEquals(families.size(), ((List<?>) json.get("skip_families")).size());
        assertEquals(points.size(), ((List<?>) json.get("perplexity")).size());
        assertEquals(4, ((List<?>) ((Map<?, ?>) json.get("block_influence")).values().iterator().next()).size());
        String html = Files.readString(out.resolve("report.html"));
        assertTrue(html.contains("<svg") && html.contains("ShortGPT") && html.contains("alpha=1.0"));

        // a second run reuses the cached plug-ins
        Path plugin = FlexiDepthEvaluation.pluginPath(out, 1f);
        FileTime trained = Files.getLastModifiedTime(plugin);
        FlexiDepthEvaluation.run(setup, new PrintStream(new ByteArrayOutputStream(), true));
        assertEquals(trained, Files.getLastModifiedTime(plugin));
    }

    @Test
    void theRemovalPluginRemovesExactlyTheForcedLayers() throws IOException {
        Path modelPath = dir.resolve("model.gguf");
        RandomFixtures.writeModel(modelPath, SHAPE, 22, GgmlType.F32);
        int[] tokens = new SplittableRandom(9).ints(200, 3, SHAPE.vocab()).toArray();
        try (LlamaModel model = LlamaModel.load(modelPath);
             Session s = model.newSession(SessionOptions.builder().contextSize(256).batchSize(256).build())) {
            Path removal = dir.resolve("removal.gguf");
            StaticBaselines.writeRemovalPlugin(removal, model.info());
            double base = Perplexity.measure(s, tokens, 256, 1).perplexity();
            try (var plugin = model.loadFlexiDepth(removal)) {
                s.attach(plugin, 0.5f);
                var none = new StaticBaselines.Config("none", 4, List.of());
                s.forceRouting(none.routing(4));
                Perplexity.Result all = Perplexity.measure(s, tokens, 256, 1);
                assertEquals(base, all.perplexity(), 0.0, "nothing removed is the base model");
                assertEquals(4.0, all.meanLayers());
                s.forceRouting(StaticBaselines.earlyExit(4, 1).get(0).routing(4));
                Perplexity.Result exit = Perplexity.measure(s, tokens, 256, 1);
                assertEquals(3.0, exit.meanLayers());
                assertTrue(Math.abs(exit.perplexity() - base) > 1e-6, "removing a layer changes the output");
            }
        }
    }
}
