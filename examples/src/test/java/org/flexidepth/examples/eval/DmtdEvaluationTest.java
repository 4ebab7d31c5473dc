package org.flexidepth.examples.eval;

import org.flexidepth.tools.JsonFiles;
import org.flexidepth.tools.RandomFixtures;
import org.flexidepth.gguf.GgmlType;
import org.flexidepth.llama.TrainingOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The DMTD demonstration end to end on a random tiny model with tiny budgets: models are trained
 * and cached, every cycle is measured next to the base model, and the JSON report is written.
 */
class DmtdEvaluationTest {
    static final RandomFixtures.Shape SHAPE = new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 256);

    @TempDir
    Path dir;

    @Test
    void measuresEveryCycleAndCachesModels() throws Exception {
        Path model = dir.resolve("model.gguf");
        RandomFixtures.writeModel(model, SHAPE, 21, GgmlType.F32);
        Path train = dir.resolve("train.txt");
        Files.writeString(train, FlexiDepthEvaluationTest.words(1, 3000));
        Path out = dir.resolve("out");
        var setup = new DmtdEvaluation.Setup(model, List.of(2, 3), true, 2,
                TrainingOptions.builder().tokenBudget(512).warmupSteps(1).learningRate(1e-3f).build(), List.of(train),
                Map.of("text", FlexiDepthEvaluationTest.words(6, 800)), 256, 2,
                List.of(FlexiDepthEvaluationTest.words(2, 10), FlexiDepthEvaluationTest.words(3, 10)), 6, Optional.empty(), 2, out);
        List<DmtdEvaluation.Row> rows = DmtdEvaluation.run(setup, new PrintStream(new ByteArrayOutputStream(), true));
        assertEquals(5, rows.size(), rows::toString);
        // base 4 layers; tau 2: (4 + 2) / 2; tau 3: (4 + 2 * 2) / 3; with refill and without
        assertEquals(List.of(4.0, 3.0, 3.0, 8.0 / 3, 8.0 / 3), rows.stream().map(DmtdEvaluation.Row::layersPerToken).toList());
        assertEquals(List.of(true, true, false, true, false), rows.stream().map(DmtdEvaluation.Row::refill).toList());
        // the thinking layers of a head see fewer positions without refill: another perplexity
        assertTrue(rows.get(1).perplexity() != rows.get(2).perplexity() && rows.get(3).perplexity() != rows.get(4).perplexity(), rows::toString);
        assertTrue(rows.stream().allMatch(r -> r.perplexity() > 1 && r.greedyAgreement() >= 0 && r.greedyAgreement() <= 1), rows::toString);
        Map<?, ?> json = (Map<?, ?>) JsonFiles.parse(Files.readString(out.resolve("dmtd-results.json")));
        assertEquals(5, ((List<?>) json.get("rows")).size());
        assertEquals(false, ((Map<?, ?>) ((List<?>) json.get("rows")).get(2)).get("refill"));
        FileTime trained = Files.getLastModifiedTime(DmtdEvaluation.modelPath(out, 2));
        DmtdEvaluation.run(setup, new PrintStream(new ByteArrayOutputStream(), true));
        assertEquals(trained, Files.getLastModifiedTime(DmtdEvaluation.modelPath(out, 2)), "a second run reuses the cached models");
    }
}
