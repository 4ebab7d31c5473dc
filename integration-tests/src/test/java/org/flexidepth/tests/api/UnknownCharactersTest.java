package org.flexidepth.tests.api;

import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * TinyStories-656K's vocabulary has no byte tokens: characters outside its alphabet become
 * {@code <unk>} (a run of them one {@code <unk>}, as Hugging Face's fuse_unk does) instead of
 * crashing the JVM, which the unpatched tokenizer does.
 */
class UnknownCharactersTest {
    @Test
    void unknownCharactersBecomeUnk() {
        try (LlamaModel m = LlamaModel.load(RealModels.tinyStories656K())) {
            int unk = 0;
            int[] one = m.tokenize("café", false, false);
            assertEquals(unk, one[one.length - 1], Arrays.toString(one));
            int[] run = m.tokenize("x ééà 😀 y", false, false);
            assertEquals(2, Arrays.stream(run).filter(t -> t == unk).count(), "two runs of unknown characters: " + Arrays.toString(run));
            try (Session s = m.newSession()) {
                assertTrue(s.complete("Lily said: ééé and 中文", GenerationOptions.builder().maxTokens(8).build()).tokens().size() > 0);
            }
        }
    }
}
