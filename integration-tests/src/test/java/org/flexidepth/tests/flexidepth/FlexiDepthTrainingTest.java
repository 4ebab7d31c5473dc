package org.flexidepth.tests.flexidepth;

import org.flexidepth.tools.RandomFixtures;

import org.flexidepth.tools.ProjectPaths;
import org.flexidepth.gguf.GgmlType;
import org.flexidepth.gguf.GgufReader;
import org.flexidepth.llama.FlexiDepthException;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.FlexiDepthTrainer;
import org.flexidepth.llama.InvalidArgumentException;
import org.flexidepth.llama.LayerUsage;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.ModelOptions;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SkipFamily;
import org.flexidepth.llama.TokenScores;
import org.flexidepth.llama.TrainingCancelledException;
import org.flexidepth.llama.TrainingData;
import org.flexidepth.llama.TrainingOptions;
import org.flexidepth.llama.TrainingProgress;
import org.flexidepth.llama.TrainingResult;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Training plug-ins through the Java API on a random tiny model: the loss falls, alpha moves the
 * layers used the way it should, a trained plug-in survives save and load with identical routing,
 * cancellation leaves a checkpoint that resumes, bad input is refused.
 */
class FlexiDepthTrainingTest {
    static final RandomFixtures.Shape SHAPE = new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 64);
    static final List<Integer> ROUTED = List.of(2, 3);
    static final int CTX = 256;

    @TempDir
    static Path dir;
    static LlamaModel model;
    static int[] tokens;

    @BeforeAll
    static void fixtures() throws IOException {
        Path modelPath = dir.resolve("model.gguf");
        RandomFixtures.writeModel(modelPath, SHAPE, 5, GgmlType.F32);
        model = LlamaModel.load(modelPath);
        // a learnable stream: a few fixed phrases of random tokens in random order
        SplittableRandom r = new SplittableRandom(3);
        int[][] phrases = new int[6][8];
        for (int[] p : phrases) {
            for (int i = 0; i < p.length; i++) {
                p[i] = 3 + r.nextInt(SHAPE.vocab() - 3);
            }
        }
        List<Integer> stream = new ArrayList<>();
        while (stream.size() < 40 * CTX) {
            for (int t : phrases[r.nextInt(phrases.length)]) {
                stream.add(t);
            }
        }
        tokens = stream.stream().mapToInt(Integer::intValue).toArray();
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static TrainingOptions.Builder options(float alpha) {
        return TrainingOptions.builder().routedLayers(ROUTED).contextLength(CTX).alpha(alpha).learningRate(1e-2f)
                .warmupSteps(2).epochs(2).seed(7).threads(2).initialRouterBias(2f);
    }

    static List<TrainingProgress> train(TrainingOptions options, Path out) {
        List<TrainingProgress> steps = new ArrayList<>();
        FlexiDepthTrainer.create(model, options).train(TrainingData.tokens(tokens), out, steps::add);
        return steps;
    }

    static double mean(List<TrainingProgress> steps, int from, int to, java.util.function.ToDoubleFunction<TrainingProgress> f) {
        return steps.subList(from, to).stream().mapToDouble(f).average().orElseThrow();
    }

    /** Mean layers per token, and the routing, of a loaded plug-in on the first window of the data. */
    static TokenScores route(Path plugin) {
        try (FlexiDepthPlugin p = model.loadFlexiDepth(plugin);
             Session s = model.newSession()) {
            s.attach(p, p.defaultThreshold());
            return s.score(java.util.Arrays.copyOf(tokens, CTX));
        }
    }

    static double meanLayers(TokenScores scores) {
        return scores.layers().stream().mapToInt(LayerUsage::layersUsed).average().orElseThrow();
    }

    @Test
    void theLossFallsAndAlphaMovesTheLayersUsed() {
        List<TrainingProgress> lmOnly = train(options(0f).build(), dir.resolve("alpha0.gguf"));
        List<TrainingProgress> skipping = train(options(2f).build(), dir.resolve("alpha2.gguf"));
        int n = lmOnly.size();
        assertEquals(2 * ((tokens.length - 1) / CTX), n);
        assertEquals(n, lmOnly.get(n - 1).totalSteps());
        // the language-model loss falls when it is all there is to minimise
        assertTrue(mean(lmOnly, n - 5, n, TrainingProgress::lmLoss) < mean(lmOnly, 0, 5, TrainingProgress::lmLoss) - 0.1,
                () -> "LM loss did not fall: " + lmOnly.get(0) + " -> " + lmOnly.get(n - 1));
        // a large alpha lowers the skip loss and the layers used, during training and in the runtime
        assertTrue(mean(skipping, n - 5, n, TrainingProgress::skipLoss) < mean(skipping, 0, 5, TrainingProgress::skipLoss) * 0.5);
        assertTrue(mean(skipping, n - 5, n, TrainingProgress::meanLayers) < SHAPE.layers() - 0.5);
        assertEquals(SHAPE.layers(), skipping.get(0).meanLayers(), 1e-9, "a fresh plug-in runs every layer");
        double layersAlpha0 = meanLayers(route(dir.resolve("alpha0.gguf")));
        double layersAlpha2 = meanLayers(route(dir.resolve("alpha2.gguf")));
        assertTrue(layersAlpha2 < layersAlpha0 - 0.5, layersAlpha2 + " vs " + layersAlpha0);
        System.out.printf("layers used after training: alpha 0 %.3f, alpha 2 %.3f%n", layersAlpha0, layersAlpha2);
        assertFalse(Files.exists(dir.resolve("alpha2.gguf.checkpoint")), "the default checkpoint is removed at the end");
    }

    /**
     * The other skip families train on the same objective: the skip loss falls, tokens come to skip
     * routed layers, and the plug-in written declares its family (with no adapter where the family
     * has none). A LAYER_NO_KV plug-in refuses session snapshots, which could not restore which
     * tokens skipped.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(value = SkipFamily.class, names = {"LAYER_NO_KV", "ATTENTION", "FFN"})
    void everySkipFamilyTrains(SkipFamily family) throws IOException {
        Path out = dir.resolve(family + ".gguf");
        List<TrainingProgress> steps = train(options(2f).skipFamily(family).build(), out);
        int n = steps.size();
        assertTrue(mean(steps, n - 5, n, TrainingProgress::skipLoss) < mean(steps, 0, 5, TrainingProgress::skipLoss) * 0.5,
                () -> family + ": skip loss " + steps.get(0).skipLoss() + " -> " + steps.get(n - 1).skipLoss());
        assertTrue(mean(steps, n - 5, n, TrainingProgress::meanLayers) < SHAPE.layers() - 0.5, family + " skips");
        try (FlexiDepthPlugin p = model.loadFlexiDepth(out); Session s = model.newSession()) {
            assertEquals(family, p.skipFamily());
            assertEquals(family.hasAdapter(), p.adapterSize() > 0);
            s.attach(p, p.defaultThreshold());
            TokenScores scores = s.score(java.util.Arrays.copyOf(tokens, CTX));
            assertTrue(meanLayers(scores) < SHAPE.layers() - 0.5, family + " skips in the runtime: " + meanLayers(scores));
            if (family == SkipFamily.LAYER_NO_KV) {
                assertThrows(UnsupportedOperationException.class, s::saveState);
                assertThrows(UnsupportedOperationException.class, () -> s.saveState(dir.resolve("state.bin")));
                assertFalse(Files.exists(dir.resolve("state.bin")));
            } else {
                s.restoreState(s.saveState());
            }
        }
        try (GgufReader r = GgufReader.open(out)) {
            assertEquals(family.name().toLowerCase(), r.file().require("flexidepth.skip").asString());
            assertEquals(family.hasAdapter(), r.file().tensor("blk.2.fd_adapter_gate.weight").isPresent());
        }
    }

    @Test
    void aTrainedPluginRoundTripsThroughSaveAndLoad() throws IOException {
        Path trained = dir.resolve("trained.gguf");
        train(options(0.5f).epochs(1).build(), trained);
        // resuming a finished run loads the file and saves it again without a step
        Path again = dir.resolve("again.gguf");
        TrainingResult r = FlexiDepthTrainer.create(model, options(0.5f).epochs(1).checkpoint(trained).resume(true).build())
                .train(TrainingData.tokens(tokens), again);
        assertTrue(r.last().isEmpty(), "nothing was left to train");
        try (GgufReader a = GgufReader.open(trained); GgufReader b = GgufReader.open(again)) {
            List<String> names = a.file().tensors().stream().map(t -> t.name()).toList();
            assertEquals(names, b.file().tensors().stream().map(t -> t.name()).toList());
            assertEquals(8 * ROUTED.size(), names.size(), "router, bias and adapter of every routed layer");
            for (String name : names) {
                assertArrayEquals(a.readFloats(name), b.readFloats(name), name);
            }
        }
        TokenScores first = route(trained), second = route(again);
        assertEquals(first.layers(), second.layers(), "identical routing after save and load");
        assertArrayEquals(first.logProbabilities(), second.logProbabilities());
        // and training changed the routing of the fresh plug-in (all layers, g = sigmoid(2))
        assertTrue(meanLayers(first) < SHAPE.layers(), "trained routers skip some layers");
    }

    @Test
    void cancellingWritesACheckpointThatResumes() {
        Path out = dir.resolve("cancelled.gguf");
        TrainingOptions opts = options(0.5f).build();
        FlexiDepthTrainer trainer = FlexiDepthTrainer.create(model, opts);
        TrainingCancelledException e = assertThrows(TrainingCancelledException.class,
                () -> trainer.train(TrainingData.tokens(tokens), out, p -> {
                    if (p.step() == 3) {
                        trainer.cancel();
                    }
                }));
        assertEquals(FlexiDepthException.Reason.CANCELLED, e.reason());
        assertTrue(Files.isRegularFile(e.checkpoint()), "checkpoint " + e.checkpoint());
        assertFalse(Files.exists(out));
        List<TrainingProgress> resumed = new ArrayList<>();
        FlexiDepthTrainer.create(model, opts.toBuilder().resume(true).build()).train(TrainingData.tokens(tokens), out, resumed::add);
        assertEquals(4, resumed.get(0).step(), "resumed after the 3 steps done");
        assertEquals(resumed.get(0).totalSteps(), resumed.get(resumed.size() - 1).step());
        assertTrue(Files.isRegularFile(out));
        // an exception from the listener cancels too, and is the cause
        IllegalStateException boom = new IllegalStateException("listener failed");
        TrainingCancelledException e2 = assertThrows(TrainingCancelledException.class,
                () -> FlexiDepthTrainer.create(model, opts).train(TrainingData.tokens(tokens), dir.resolve("boom.gguf"), p -> {
                    throw boom;
                }));
        assertEquals(boom, e2.getCause());
    }

    @Test
    void trainsOnAQuantizedBaseAndOnChatData() throws IOException, InterruptedException {
        Path f32 = dir.resolve("model.gguf"), q4 = dir.resolve("model-q4_0.gguf");
        Process quantize = new ProcessBuilder(ProjectPaths.nativeBuild().resolve("bin/llama-quantize").toString(),
                f32.toString(), q4.toString(), "Q4_0").redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        assertEquals(0, quantize.waitFor(), "llama-quantize");
        Path out = dir.resolve("q4-plugin.gguf");
        // the base stays Q4_0; its CPU-repacked layout has no backward pass, so it is loaded plain
        try (LlamaModel quantized = LlamaModel.load(q4, ModelOptions.builder().repackWeights(false).build())) {
            List<TrainingProgress> steps = new ArrayList<>();
            FlexiDepthTrainer.create(quantized, options(2f).build()).train(TrainingData.tokens(tokens), out, steps::add);
            int n = steps.size();
            assertTrue(mean(steps, n - 5, n, TrainingProgress::skipLoss) < mean(steps, 0, 5, TrainingProgress::skipLoss) * 0.5);
        }
        try (LlamaModel repacked = LlamaModel.load(q4); FlexiDepthPlugin p = repacked.loadFlexiDepth(out); Session s = repacked.newSession()) {
            s.attach(p, 0.5f);
            assertTrue(s.score(java.util.Arrays.copyOf(tokens, CTX)).meanLayers() < SHAPE.layers());
        }
        // chat JSONL rendered with a named template
        Path jsonl = dir.resolve("chats.jsonl");
        StringBuilder chats = new StringBuilder();
        for (int i = 0; i < 40; i++) {
            chats.append("{\"messages\":[{\"role\":\"user\",\"content\":\"say the king said ").append(i)
                    .append("\"},{\"role\":\"assistant\",\"content\":\"the king said to his people that they were in the house\"}]}\n");
        }
        Files.writeString(jsonl, chats);
        TrainingResult r = FlexiDepthTrainer.create(model, options(0.5f).build())
                .train(TrainingData.chatJsonl(List.of(jsonl), Optional.of("chatml")), dir.resolve("chat-plugin.gguf"));
        assertTrue(r.last().orElseThrow().totalSteps() >= 2, "the chats render to several sequences: " + r);
    }

    @Test
    void badInputIsRefusedClearly() throws IOException {
        Path out = dir.resolve("bad.gguf");
        FlexiDepthTrainer trainer = FlexiDepthTrainer.create(model, options(0.1f).build());
        FlexiDepthException missing = assertThrows(FlexiDepthException.class,
                () -> trainer.train(TrainingData.textFiles(dir.resolve("nope.txt")), out));
        assertEquals(FlexiDepthException.Reason.IO, missing.reason());
        FlexiDepthException tooShort = assertThrows(FlexiDepthException.class,
                () -> trainer.train(TrainingData.tokens(new int[] {1, 5, 6, 7}), out));
        assertEquals(FlexiDepthException.Reason.DATA, tooShort.reason());
        assertTrue(tooShort.getMessage().contains("at least"), tooShort.getMessage());
        Path jsonl = dir.resolve("chat.jsonl");
        Files.writeString(jsonl, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n{not json\n");
        FlexiDepthException badLine = assertThrows(FlexiDepthException.class,
                () -> trainer.train(TrainingData.chatJsonl(List.of(jsonl), Optional.of("chatml")), out));
        assertEquals(FlexiDepthException.Reason.DATA, badLine.reason());
        assertTrue(badLine.getMessage().contains("chat.jsonl:2"), badLine.getMessage());
        assertThrows(InvalidArgumentException.class, () -> options(-1f).build());
        assertThrows(InvalidArgumentException.class, () -> options(0.1f).contextLength(100).build());
        assertThrows(InvalidArgumentException.class, () -> options(0.1f).routedLayers(List.of(3, 2)).build());
        FlexiDepthException outOfRange = assertThrows(FlexiDepthException.class, () -> FlexiDepthTrainer.create(model,
                options(0.1f).routedLayers(List.of(2, 9)).build()).train(TrainingData.tokens(tokens), out));
        assertEquals(FlexiDepthException.Reason.INVALID_ARGUMENT, outOfRange.reason());
        assertThrows(InvalidArgumentException.class, () -> trainer.train(TrainingData.tokens(new int[] {1, 9999, 3}), out));
        assertFalse(Files.exists(out), "nothing written for refused input");
        assertFalse(Files.exists(dir.resolve("bad.gguf.checkpoint")), "not even a checkpoint");
    }
}
