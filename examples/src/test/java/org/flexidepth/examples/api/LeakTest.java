package org.flexidepth.examples.api;

import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Loading, generating and closing 200 times leaves native memory (RSS) flat. */
class LeakTest {
    @Test
    void loadGenerateClose200Times() throws Exception {
        Path path = RealModels.stories260K();
        GenerationOptions o = GenerationOptions.builder().maxTokens(8).build();
        long warm = 0;
        for (int i = 0; i < 200; i++) {
            try (LlamaModel m = LlamaModel.load(path); Session s = m.newSession()) {
                assertEquals(8, s.complete("Once upon a time", o).tokens().size());
            }
            if (i == 29) {
                System.gc();
                warm = RealModels.rssKiB(); // after allocator pools and JIT have settled
            }
        }
        System.gc();
        long end = RealModels.rssKiB();
        // One model + context is several MB, so a leak of either would add hundreds of MB over 170 rounds.
        assertTrue(end - warm < 24 * 1024, "RSS grew from " + warm + " KiB to " + end + " KiB");
    }
}
