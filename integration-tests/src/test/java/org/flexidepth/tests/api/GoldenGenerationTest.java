package org.flexidepth.tests.api;

import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.StopReason;
import org.flexidepth.llama.Token;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Greedy generation through the Java API equals the pristine upstream library's, token for token. */
class GoldenGenerationTest {
    static final int N = 48;

    @ParameterizedTest
    @ValueSource(strings = {"Once upon a time", "The little dog was sad because", "Lily and Tom went to the park. They"})
    void stories260KMatchesPristineUpstream(String prompt) throws Exception {
        check(RealModels.stories260K(), prompt);
    }

    @ParameterizedTest
    @ValueSource(strings = {"Once upon a time", "Tom had a red ball", "The sun was hot and the birds"})
    void tinyStories656KMatchesPristineUpstream(String prompt) throws Exception {
        check(RealModels.tinyStories656K(), prompt);
    }

    /** Random-weight models of each architecture FlexiDepth supports, through the Java API and the pristine library. */
    @ParameterizedTest
    @ValueSource(strings = {"llama", "qwen2", "qwen3"})
    void randomModelsOfOtherArchitecturesMatchPristineUpstream(String arch, @org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path model = dir.resolve(arch + ".gguf");
        org.flexidepth.tools.RandomFixtures.writeModel(model, arch,
                new org.flexidepth.tools.RandomFixtures.Shape(3, 64, 4, 2, 128, 300, 256), 5,
                org.flexidepth.gguf.GgmlType.F16);
        check(model, "a b c");
    }

    static void check(Path model, String prompt) throws Exception {
        int[] expected = RealModels.referenceGreedy(model, N, prompt);
        try (LlamaModel m = LlamaModel.load(model); Session s = m.newSession()) {
            GenerationResult r = s.complete(prompt, GenerationOptions.builder().maxTokens(N).build());
            List<Token> tokens = r.tokens();
            if (r.stopReason() == StopReason.END_OF_GENERATION) {
                tokens = tokens.subList(0, tokens.size() - 1); // the reference does not print the end token
            }
            assertEquals(Arrays.stream(expected).boxed().toList(), RealModels.ids(tokens), "prompt: " + prompt);
            java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
            for (int t : expected) {
                bytes.writeBytes(m.tokenBytes(t));
            }
            assertEquals(bytes.toString(java.nio.charset.StandardCharsets.UTF_8), r.text(), "text of the same tokens");
        }
    }

    /**
     * An outside fact about the demo model: ../shared/README.md says that greedy decoding from
     * "The King said to his people that" continues "were in the house of the LORD, and the LORD,".
     * Checks the project's conversion of flexi-demo-12L (and the library) against its trainer's word.
     */
    @org.junit.jupiter.api.Test
    void flexiDemo12LContinuesAsItsReadmeSays() throws Exception {
        RealModels.assumeShared();
        try (org.flexidepth.llama.LlamaModel m = org.flexidepth.llama.LlamaModel.load(org.flexidepth.tools.DefaultModel.flexiDemo12L());
             org.flexidepth.llama.Session s = m.newSession()) {
            String text = s.complete("The King said to his people that",
                    org.flexidepth.llama.GenerationOptions.builder().maxTokens(16).build()).text();
            org.junit.jupiter.api.Assertions.assertTrue(text.strip().startsWith("were in the house of the LORD, and the LORD,"), text);
        }
    }
}
