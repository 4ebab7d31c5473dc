package org.flexidepth.tests.flexidepth;

import org.flexidepth.tools.RandomFixtures;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.gguf.GgufReader;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.LlamaException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Property: whatever is done to a model or plug-in file (bytes flipped in the header or the data,
 * truncation, counts and lengths in the header set to extremes), loading and using it either works
 * or throws a {@link LlamaException} subclass. Any other throwable, or a JVM crash, fails the test.
 * Deterministic: the mutations come from fixed seeds.
 */
class FileMutationTest {
    static final RandomFixtures.Shape SHAPE = FlexiDepthSessionTest.SHAPE;
    static final int MUTANTS = 300;
    static final GenerationOptions THREE = GenerationOptions.builder().maxTokens(3).build();

    @TempDir
    static Path dir;
    static Path modelPath, pluginPath;
    static byte[] model, plugin;
    static long modelHeader, pluginHeader;

    @BeforeAll
    static void fixtures() throws IOException {
        modelPath = dir.resolve("model.gguf");
        pluginPath = dir.resolve("plugin.gguf");
        RandomFixtures.writeModel(modelPath, SHAPE, 11, GgmlType.Q8_0);
        RandomFixtures.writePlugin(pluginPath, SHAPE, 17, FlexiDepthSessionTest.ROUTED, 8, 32, 0.5f, null, GgmlType.Q8_0);
        model = Files.readAllBytes(modelPath);
        plugin = Files.readAllBytes(pluginPath);
        modelHeader = GgufReader.readHeader(modelPath).dataOffset();
        pluginHeader = GgufReader.readHeader(pluginPath).dataOffset();
    }

    /** One mutation of a GGUF file's bytes; header is where its data section starts. */
    static byte[] mutate(byte[] original, long header, SplittableRandom r, StringBuilder what) {
        byte[] b = original.clone();
        switch (r.nextInt(5)) {
            case 0 -> { // a few bytes of the header
                int n = 1 + r.nextInt(4);
                for (int i = 0; i < n; i++) {
                    int at = r.nextInt((int) header);
                    b[at] = (byte) r.nextInt(256);
                }
                what.append("header bytes");
            }
            case 1 -> { // bytes anywhere, data included (NaN weights among them)
                for (int i = 0; i < 16; i++) {
                    b[r.nextInt(b.length)] = (byte) r.nextInt(256);
                }
                what.append("bytes anywhere");
            }
            case 2 -> { // truncated
                b = Arrays.copyOf(b, r.nextInt(b.length));
                what.append("truncated to ").append(b.length);
            }
            case 3 -> { // tensor or key count (u64 at 8 and 16) set to an extreme
                long[] extremes = {0, 1, Long.MAX_VALUE, -1L, 1L << 32, 100_000};
                ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(r.nextBoolean() ? 8 : 16, extremes[r.nextInt(extremes.length)]);
                what.append("count");
            }
            default -> { // an 8-byte field somewhere in the header (a string length, a dimension, an offset)
                int at = 24 + r.nextInt((int) header - 32);
                long[] extremes = {0, -1L, Long.MAX_VALUE, 1L << 40, 0x7FFFFFFFL};
                ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(at, extremes[r.nextInt(extremes.length)]);
                what.append("8-byte field at ").append(at);
            }
        }
        return b;
    }

    /** "works", or the simple name of the LlamaException it threw; anything else fails the test. */
    static String outcome(int mutant, StringBuilder what, Runnable use) {
        try {
            use.run();
            return "works";
        } catch (LlamaException e) {
            return e.getClass().getSimpleName();
        } catch (Throwable t) {
            throw new AssertionError("mutant " + mutant + " (" + what + ") threw " + t, t);
        }
    }

    @Test
    void mutatedModelsLoadAndRunOrFailWithTypedExceptions() throws IOException {
        SplittableRandom r = new SplittableRandom(20261201);
        TreeMap<String, Integer> outcomes = new TreeMap<>();
        for (int i = 0; i < MUTANTS; i++) {
            StringBuilder what = new StringBuilder();
            Path m = Files.write(dir.resolve("mutant-model.gguf"), mutate(model, modelHeader, r, what));
            outcomes.merge(outcome(i, what, () -> {
                try (LlamaModel loaded = LlamaModel.load(m); Session s = loaded.newSession()) {
                    s.complete("w1 w2 w3", THREE);
                }
            }), 1, Integer::sum);
        }
        System.out.println("mutated models: " + outcomes);
        assertTrue(outcomes.getOrDefault("ModelLoadException", 0) > MUTANTS / 4, "most mutations break the file: " + outcomes);
    }

    @Test
    void mutatedPluginsLoadAndRunOrFailWithTypedExceptions() throws IOException {
        SplittableRandom r = new SplittableRandom(20261202);
        TreeMap<String, Integer> outcomes = new TreeMap<>();
        try (LlamaModel loaded = LlamaModel.load(modelPath); Session s = loaded.newSession()) {
            for (int i = 0; i < MUTANTS; i++) {
                StringBuilder what = new StringBuilder();
                Path p = Files.write(dir.resolve("mutant-plugin.gguf"), mutate(plugin, pluginHeader, r, what));
                outcomes.merge(outcome(i, what, () -> {
                    try (FlexiDepthPlugin fd = loaded.loadFlexiDepth(p)) {
                        s.attach(fd, 0.5f);
                        s.complete("w1 w2 w3", THREE);
                    }
                }), 1, Integer::sum);
            }
            // the model and the session are unharmed by all of it
            assertTrue(s.attachedPlugin().isEmpty());
            s.clear();
            s.complete("w1 w2 w3", THREE);
        }
        System.out.println("mutated plug-ins: " + outcomes);
        assertTrue(outcomes.getOrDefault("FlexiDepthException", 0) > MUTANTS / 4, "most mutations break the file: " + outcomes);
    }
}
