package org.flexidepth.tests.lora;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.gguf.GgufValue;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.InvalidArgumentException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.LoraAdapter;
import org.flexidepth.llama.LoraAdapterException;
import org.flexidepth.llama.ResourceClosedException;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionState;
import org.flexidepth.tests.api.RealModels;
import org.flexidepth.tests.flexidepth.GgufEdit;
import org.flexidepth.tools.RandomFixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LoRA adapters written with the project's GGUF writer for the real stories260K: greedy output
 * with one adapter, with two at other scales, after changing them between calls, and with a
 * FlexiDepth plug-in that runs every layer, equals the pristine upstream library's with the same
 * adapters (native/tests/reference-greedy.c --lora); adapters for other models are typed errors.
 */
class UpstreamLoraTest {
    /** stories260K: 5 layers, dim 64, 8 heads, 4 KV heads, FFN 172, vocabulary 512. */
    static final RandomFixtures.Shape STORIES = new RandomFixtures.Shape(5, 64, 8, 4, 172, 512, 512);
    static final String PROMPT = "Once upon a time, there was a little dog";
    static final int N = 24;
    static final GenerationOptions GREEDY = GenerationOptions.builder().maxTokens(N).build();
    @TempDir
    static Path dir;
    static Path modelFile, first, second;
    static LlamaModel model;

    @BeforeAll
    static void load() throws Exception {
        modelFile = RealModels.stories260K();
        first = dir.resolve("lora-a.gguf");
        second = dir.resolve("lora-b.gguf");
        RandomFixtures.writeLora(first, STORIES, 11, 4, 8f);
        RandomFixtures.writeLora(second, STORIES, 12, 2, 2f);
        model = LlamaModel.load(modelFile);
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    static int[] greedy(Session s) {
        return s.complete(PROMPT, GREEDY).tokens().stream().mapToInt(t -> t.id()).toArray();
    }

    static int[] reference(String... lora) throws Exception {
        return RealModels.referenceGreedy(modelFile, N, PROMPT, List.of(lora));
    }

    @Test
    void adaptersGiveWhatUpstreamGives() throws Exception {
        try (LoraAdapter a = model.loadLora(first); LoraAdapter b = model.loadLora(second); Session s = model.newSession()) {
            assertEquals(8f, a.alpha());
            int[] base = greedy(s);
            assertArrayEquals(reference(), base);

            s.setLoras(Map.of(a, 1f));
            int[] withA = greedy(s);
            assertArrayEquals(reference("--lora", first.toString(), "1"), withA);
            assertFalse(Arrays.equals(base, withA), "the adapter must change the output for this to prove anything");

            Map<LoraAdapter, Float> both = new LinkedHashMap<>();
            both.put(a, 0.6f);
            both.put(b, -1.5f);
            s.setLoras(both);
            assertEquals(both, s.loras());
            int[] withBoth = greedy(s);
            assertArrayEquals(reference("--lora", first.toString(), "0.6", "--lora", second.toString(), "-1.5"), withBoth);
            assertFalse(Arrays.equals(withA, withBoth));

            s.setLoras(Map.of());
            assertArrayEquals(base, greedy(s), "removing them gives the base model back");
        }
    }

    @Test
    void anAdapterWorksWithAPluginThatRunsEveryLayer() throws Exception {
        Path plugin = dir.resolve("run-all.gguf");
        RandomFixtures.writePlugin(plugin, STORIES, 5, List.of(2, 3, 4), 8, 8, 0.5f, 1e4f, GgmlType.F32);
        try (LoraAdapter a = model.loadLora(first); FlexiDepthPlugin p = model.loadFlexiDepth(plugin); Session s = model.newSession()) {
            s.setLoras(Map.of(a, 1f));
            s.attach(p, 0.5f);
            int[] tokens = greedy(s);
            assertArrayEquals(reference("--lora", first.toString(), "1"), tokens, "every layer runs (g = 1): the adapted base model");
            assertEquals(Map.of(a, 1f), s.loras(), "attaching a plug-in keeps the adapters");
        }
    }

    @Test
    void savedStatesRecordTheAdapters() {
        try (LoraAdapter a = model.loadLora(first); Session s = model.newSession()) {
            s.setLoras(Map.of(a, 1f));
            s.complete(PROMPT, GREEDY);
            SessionState state = s.saveState();
            s.setLoras(Map.of());
            var e = assertThrows(InvalidArgumentException.class, () -> s.restoreState(state));
            assertTrue(e.getMessage().contains("LoRA"), e.getMessage());
            s.setLoras(Map.of(a, 1f));
            s.restoreState(state);
            assertEquals(state.tokens().length, s.cachedTokenCount());
        }
    }

    @Test
    void adaptersForOtherModelsAreTypedErrors() throws Exception {
        Path wide = dir.resolve("wide.gguf");
        RandomFixtures.writeLora(wide, new RandomFixtures.Shape(5, 96, 8, 4, 172, 512, 512), 1, 4, 8f);
        var shape = assertThrows(LoraAdapterException.class, () -> model.loadLora(wide));
        assertEquals(LoraAdapterException.Reason.WRONG_BASE, shape.reason(), shape.getMessage());

        Path qwen = GgufEdit.copy(first, dir.resolve("qwen.gguf"), Map.of("general.architecture", GgufValue.string("qwen2")), t -> true);
        var arch = assertThrows(LoraAdapterException.class, () -> model.loadLora(qwen));
        assertEquals(LoraAdapterException.Reason.WRONG_BASE, arch.reason());
        assertTrue(arch.getMessage().contains("qwen2"), arch.getMessage());

        var notLora = assertThrows(LoraAdapterException.class, () -> model.loadLora(modelFile));
        assertEquals(LoraAdapterException.Reason.FORMAT, notLora.reason(), notLora.getMessage());
        var missing = assertThrows(LoraAdapterException.class, () -> model.loadLora(dir.resolve("none.gguf")));
        assertEquals(LoraAdapterException.Reason.IO, missing.reason());

        try (LlamaModel other = LlamaModel.load(RealModels.stories260K()); LoraAdapter foreign = other.loadLora(first);
             Session s = model.newSession()) {
            assertThrows(InvalidArgumentException.class, () -> s.setLoras(Map.of(foreign, 1f)), "an adapter loaded onto another model");
        }
    }

    @Test
    void closingAnAdapterTakesItOffItsSessions() {
        try (Session s = model.newSession()) {
            LoraAdapter a = model.loadLora(first);
            s.setLoras(Map.of(a, 1f));
            s.complete(PROMPT, GREEDY);
            a.close();
            assertTrue(s.loras().isEmpty());
            assertEquals(0, s.cachedTokenCount(), "the cache held K/V computed with it");
            assertThrows(ResourceClosedException.class, () -> s.setLoras(Map.of(a, 1f)));
            assertEquals(N, s.complete(PROMPT, GREEDY).tokens().size(), "the session goes on without it");
        }
    }
}
