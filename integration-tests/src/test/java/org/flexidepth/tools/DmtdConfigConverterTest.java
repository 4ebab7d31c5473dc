package org.flexidepth.tools;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.gguf.GgufFile;
import org.flexidepth.gguf.GgufReader;
import org.flexidepth.llama.Dmtd;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Sampling;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.llama.Token;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The released DMTD checkpoint's config keys onto a qwen3 GGUF (a random fixture in the layout
 * upstream's converter writes): the runtime then reads the split from the file, and configs that
 * do not belong to the model are refused.
 */
class DmtdConfigConverterTest {
    static final RandomFixtures.Shape SHAPE = new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 256);

    @TempDir
    Path dir;

    int run(ByteArrayOutputStream log, String... args) {
        return DmtdConfigConverter.run(args, new PrintStream(log, true, StandardCharsets.UTF_8));
    }

    Path config(String json) throws Exception {
        return Files.writeString(Files.createTempFile(dir, "config", ".json"), json);
    }

    @Test
    void theSplitReachesTheRuntime() throws Exception {
        Path model = dir.resolve("qwen3.gguf"), out = dir.resolve("qwen3-dmtd.gguf");
        RandomFixtures.writeModel(model, "qwen3", SHAPE, 5, GgmlType.F32);
        Path config = config("""
                {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "num_hidden_layers": 4,
                 "num_encoding_layers": 0, "num_thinking_layers": 3, "num_decoding_layers": 1, "mtp_horizon": 4}""");
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        assertEquals(0, run(log, model.toString(), out.toString(), "--config", config.toString()), log::toString);
        GgufFile f = GgufReader.readHeader(out);
        assertEquals(3, f.require("dmtd.thinking_layers").asInt());
        assertEquals(4, f.require("dmtd.cycle").asInt());
        try (LlamaModel m = LlamaModel.load(out);
             Session s = m.newSession(SessionOptions.builder().dmtd(Dmtd.cycle(4)).build())) {
            List<Token> tokens = new ArrayList<>();
            s.generate(new int[] {1, 300, 301}, GenerationOptions.builder().maxTokens(6).sampling(Sampling.greedy()).build())
                    .forEachRemaining(tokens::add);
            List<Token.Step> full = List.of(Token.Step.FULL_DEPTH), dec = List.of(Token.Step.DECODING_LAYERS);
            List<Token.Step> expected = new ArrayList<>(full);
            expected.addAll(full);
            for (int i = 0; i < 3; i++) {
                expected.addAll(dec);
            }
            expected.addAll(full);
            assertEquals(expected, tokens.stream().map(t -> t.step().orElseThrow()).toList());
        }
    }

    @Test
    void aConfigThatDoesNotFitIsRefused() throws Exception {
        Path model = dir.resolve("qwen3.gguf"), out = dir.resolve("out.gguf");
        RandomFixtures.writeModel(model, "qwen3", SHAPE, 5, GgmlType.F32);
        for (String[] c : new String[][] {
                {"{\"num_thinking_layers\": 3, \"num_decoding_layers\": 2, \"mtp_horizon\": 4}", "splits 5 layers"},
                {"{\"num_encoding_layers\": 1, \"num_thinking_layers\": 2, \"num_decoding_layers\": 1, \"mtp_horizon\": 4}", "num_encoding_layers"},
                {"{\"num_hidden_layers\": 4}", "no integer num_thinking_layers"}}) {
            ByteArrayOutputStream log = new ByteArrayOutputStream();
            assertEquals(1, run(log, model.toString(), out.toString(), "--config", config(c[0]).toString()));
            assertTrue(log.toString().contains(c[1]), log::toString);
            assertFalse(Files.exists(out), "nothing is written");
        }
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        assertEquals(2, run(log, model.toString(), out.toString()));
        assertTrue(log.toString().contains("--config is required"), log::toString);
    }
}
