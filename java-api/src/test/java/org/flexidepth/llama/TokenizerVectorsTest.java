package org.flexidepth.llama;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * Tokenization through the Java API against the vectors upstream ships beside its vocab-only
 * models (the same inputs and expected ids as upstream's test-tokenizer-0).
 */
class TokenizerVectorsTest {
    private static final String SEPARATOR = "\n__ggml_vocab_test__\n";

    @TestFactory
    Stream<DynamicTest> everyVocabularyMatchesItsVectors() throws IOException {
        List<Path> vocabs;
        try (Stream<Path> files = Files.list(TestPaths.upstreamModels())) {
            vocabs = files.filter(p -> p.toString().endsWith(".gguf") && Files.exists(Path.of(p + ".inp"))).sorted().toList();
        }
        assertFalse(vocabs.isEmpty(), "no vocab test vectors under " + TestPaths.upstreamModels());
        return vocabs.stream().map(v -> DynamicTest.dynamicTest(v.getFileName().toString(), () -> check(v)));
    }

    private static void check(Path vocab) throws IOException {
        String inp = Files.readString(Path.of(vocab + ".inp"), StandardCharsets.UTF_8);
        List<String> inputs = new ArrayList<>(Arrays.asList(inp.split(SEPARATOR, -1)));
        if (inputs.get(inputs.size() - 1).isEmpty() || inputs.get(inputs.size() - 1).equals("\n")) {
            inputs.remove(inputs.size() - 1);
        }
        List<String> outputs = Files.readAllLines(Path.of(vocab + ".out"), StandardCharsets.UTF_8);
        assertEquals(outputs.size(), inputs.size(), "vector count of " + vocab);
        try (LlamaModel model = LlamaModel.load(vocab, ModelOptions.builder().vocabOnly(true).build())) {
            for (int i = 0; i < inputs.size(); i++) {
                String line = outputs.get(i).strip();
                int[] expected = line.isEmpty() ? new int[0] : Arrays.stream(line.split("\\s+")).mapToInt(Integer::parseInt).toArray();
                int[] actual = model.tokenize(inputs.get(i), false, false);
                assertArrayEquals(expected, actual, vocab.getFileName() + " vector " + i + ": '" + inputs.get(i) + "'");
            }
        }
    }
}
