package org.flexidepth.tests.api;

import org.flexidepth.tools.RandomFixtures;
import org.flexidepth.gguf.GgmlType;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Loading, generating and closing 200 times leaves native memory (RSS) flat. */
class LeakTest {
    @TempDir
    Path dir;

    @Test
    void loadGenerateClose200Times() throws Exception {
        Path path = RealModels.stories260K();
        GenerationOptions o = GenerationOptions.builder().maxTokens(8).build();
        RssWindows rss = new RssWindows();
        for (int i = 0; i < 200; i++) {
            try (LlamaModel m = LlamaModel.load(path); Session s = m.newSession()) {
                assertEquals(8, s.complete("Once upon a time", o).tokens().size());
            }
            rss.sample(i);
        }
        // One model + context is several MB, so a leak of either would add hundreds of MB over 170 rounds.
        rss.assertFlat();
    }

    /**
     * RSS moves by tens of MB as the Java heap and malloc's arenas grow and shrink; a leak
     * only grows. So the lowest reading of rounds 30-59 (after pools and JIT have settled) is
     * compared with the lowest of rounds 170-199.
     */
    static final class RssWindows {
        private long warm = Long.MAX_VALUE, end = Long.MAX_VALUE;

        void sample(int round) {
            if (round >= 30 && round < 60 && round % 5 == 0) {
                warm = Math.min(warm, reading());
            } else if (round >= 170 && round % 5 == 0) {
                end = Math.min(end, reading());
            }
        }

        private static long reading() {
            System.gc();
            try {
                return RealModels.rssKiB();
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }

        void assertFlat() {
            System.out.printf("RSS, lowest of rounds 30-59: %d KiB, of rounds 170-199: %d KiB%n", warm, end);
            // what a round allocates (a model and context of several MB, or a 1.5 MiB plug-in) leaked
            // would add 200 MB or more over the 140 rounds between the windows; malloc's per-thread
            // arenas alone moved RSS by up to 28 MB on a loaded 2-core machine
            assertTrue(end - warm < 48 * 1024, "RSS grew from " + warm + " KiB to " + end + " KiB");
        }
    }

    /**
     * Plug-ins loaded, attached and closed in every order around their sessions and models: closing
     * the plug-in first, the session first, or only the model (which closes the other two).
     */
    @Test
    void pluginLifecycles200Times() throws Exception {
        RandomFixtures.Shape shape = new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 512);
        Path model = dir.resolve("model.gguf"), plugin = dir.resolve("plugin.gguf");
        RandomFixtures.writeModel(model, shape, 11, GgmlType.F32);
        // adapters of 1024 make each plug-in 1.5 MiB, so that leaking them would show
        RandomFixtures.writePlugin(plugin, shape, 17, List.of(2, 3), 8, 1024, 0.5f, null, GgmlType.F32);
        GenerationOptions o = GenerationOptions.builder().maxTokens(8).build();
        RssWindows rss = new RssWindows();
        for (int i = 0; i < 200; i++) {
            LlamaModel m = LlamaModel.load(model);
            FlexiDepthPlugin p = m.loadFlexiDepth(plugin);
            Session s = m.newSession();
            s.attach(p, 0.5f);
            assertEquals(8, s.complete("w1 w2 w3", o).tokens().size());
            switch (i % 3) {
                case 0 -> { p.close(); s.close(); m.close(); }
                case 1 -> { s.close(); p.close(); m.close(); }
                default -> m.close();
            }
            rss.sample(i);
        }
        rss.assertFlat();
    }
}
