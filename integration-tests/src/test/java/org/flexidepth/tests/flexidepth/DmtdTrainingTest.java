package org.flexidepth.tests.flexidepth;

import org.flexidepth.tools.RandomFixtures;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.gguf.GgufFile;
import org.flexidepth.gguf.GgufReader;
import org.flexidepth.llama.Dmtd;
import org.flexidepth.llama.DmtdTrainer;
import org.flexidepth.llama.FlexiDepthException;
import org.flexidepth.llama.InvalidArgumentException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.ModelOptions;
import org.flexidepth.llama.TrainingCancelledException;
import org.flexidepth.llama.TrainingData;
import org.flexidepth.llama.TrainingOptions;
import org.flexidepth.llama.TrainingProgress;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * DMTD fine-tuning through the Java API on a random tiny model: the cyclical-masking loss falls,
 * the trained model declares its split and changes only the layers (embedding and head frozen),
 * a cancelled run resumes from its checkpoint, and unsuitable models are refused.
 */
class DmtdTrainingTest {
    static final RandomFixtures.Shape SHAPE = new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 256);

    @TempDir
    Path dir;

    static int[] phrases(int n) {
        SplittableRandom r = new SplittableRandom(3);
        int[][] phrases = new int[5][6];
        for (int[] p : phrases) {
            for (int i = 0; i < p.length; i++) {
                p[i] = 3 + r.nextInt(SHAPE.vocab() - 3);
            }
        }
        int[] out = new int[n];
        for (int i = 0; i < n; ) {
            for (int t : phrases[r.nextInt(phrases.length)]) {
                if (i < n) {
                    out[i++] = t;
                }
            }
        }
        return out;
    }

    static TrainingOptions options() {
        return TrainingOptions.builder().contextLength(256).learningRate(3e-3f).warmupSteps(2).epochs(1).seed(5).threads(2).checkpointEvery(0).build();
    }

    Path base() throws Exception {
        Path model = dir.resolve("base.gguf");
        RandomFixtures.writeModel(model, SHAPE, 9, GgmlType.F32);
        return model;
    }

    static ModelOptions writable() {
        return ModelOptions.builder().mmap(false).repackWeights(false).build();
    }

    @Test
    void theLossFallsAndOnlyTheLayersChange() throws Exception {
        Path base = base(), out = dir.resolve("dmtd.gguf");
        int[] tokens = phrases(24 * 256 + 1);
        List<TrainingProgress> steps = new ArrayList<>();
        try (LlamaModel model = LlamaModel.load(base, writable())) {
            DmtdTrainer.create(model, Dmtd.cycle(2).withThinkingLayers(2), options()).train(TrainingData.tokens(tokens), out, steps::add);
        }
        int n = steps.size();
        assertEquals(24, n);
        double first = steps.subList(0, 3).stream().mapToDouble(TrainingProgress::lmLoss).average().orElseThrow();
        double last = steps.subList(n - 3, n).stream().mapToDouble(TrainingProgress::lmLoss).average().orElseThrow();
        assertTrue(last < first - 0.5, "loss " + first + " -> " + last);
        assertEquals(3.0, steps.get(0).meanLayers(), 1e-6, "a head runs 4 layers and the next token 2");
        GgufFile f = GgufReader.readHeader(out);
        assertEquals(2, f.require("dmtd.thinking_layers").asInt());
        assertEquals(2, f.require("dmtd.cycle").asInt());
        try (GgufReader a = GgufReader.open(base); GgufReader b = GgufReader.open(out)) {
            assertArrayEquals(a.readFloats("token_embd.weight"), b.readFloats("token_embd.weight"), "the embedding is frozen");
            assertArrayEquals(a.readFloats("output.weight"), b.readFloats("output.weight"), "the output head is frozen");
            assertFalse(java.util.Arrays.equals(a.readFloats("blk.3.ffn_down.weight"), b.readFloats("blk.3.ffn_down.weight")), "the layers train");
        }
        assertFalse(Files.exists(Path.of(out + ".checkpoint")), "the default checkpoint is removed at the end");
    }

    @Test
    void aCancelledRunResumesAndUnsuitableModelsAreRefused() throws Exception {
        Path base = base(), out = dir.resolve("cancelled.gguf");
        int[] tokens = phrases(8 * 256 + 1);
        try (LlamaModel model = LlamaModel.load(base, writable())) {
            DmtdTrainer trainer = DmtdTrainer.create(model, Dmtd.cycle(3).withThinkingLayers(3), options());
            TrainingCancelledException e = assertThrows(TrainingCancelledException.class,
                    () -> trainer.train(TrainingData.tokens(tokens), out, p -> {
                        if (p.step() == 3) {
                            trainer.cancel();
                        }
                    }));
            assertTrue(Files.isRegularFile(e.checkpoint()), "checkpoint " + e.checkpoint());
            assertEquals(3, GgufReader.readHeader(e.checkpoint()).require("dmtd.train.step").asInt());
        }
        try (LlamaModel model = LlamaModel.load(base, writable())) {
            List<TrainingProgress> resumed = new ArrayList<>();
            DmtdTrainer.create(model, Dmtd.cycle(3).withThinkingLayers(3), options().toBuilder().resume(true).build())
                    .train(TrainingData.tokens(tokens), out, resumed::add);
            assertEquals(4, resumed.get(0).step(), "resumed after the 3 steps done");
            assertTrue(Files.isRegularFile(out));
        }
        try (LlamaModel mapped = LlamaModel.load(base)) {
            var e = assertThrows(FlexiDepthException.class, () -> DmtdTrainer.create(mapped, Dmtd.cycle(2).withThinkingLayers(2), options())
                    .train(TrainingData.tokens(tokens), dir.resolve("x.gguf"), p -> { }));
            assertTrue(e.getMessage().contains("mmap"), e.getMessage());
            assertThrows(InvalidArgumentException.class, () -> DmtdTrainer.create(mapped, Dmtd.cycle(2), options()));
            assertThrows(InvalidArgumentException.class, () -> DmtdTrainer.create(mapped, Dmtd.cycle(1).withThinkingLayers(2), options()));
        }
    }
}
