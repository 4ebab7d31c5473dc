package org.flexidepth.tests.api;

import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.tools.RandomFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The default context is the model's training context, capped at 4096 tokens. */
class DefaultContextTest {
    @Test
    void aLongContextModelGets4096AndAShortOneItsOwn(@TempDir Path dir) throws Exception {
        Path lng = dir.resolve("long.gguf");
        Path shrt = dir.resolve("short.gguf");
        RandomFixtures.writeModel(lng, "llama", new RandomFixtures.Shape(2, 32, 2, 1, 64, 300, 131072), 1, org.flexidepth.gguf.GgmlType.F32);
        RandomFixtures.writeModel(shrt, "llama", new RandomFixtures.Shape(2, 32, 2, 1, 64, 300, 512), 1, org.flexidepth.gguf.GgmlType.F32);
        try (LlamaModel m = LlamaModel.load(lng); Session s = m.newSession()) {
            assertEquals(131072, m.info().contextLength());
            assertEquals(4096, s.contextSize());
        }
        try (LlamaModel m = LlamaModel.load(shrt); Session s = m.newSession();
             Session big = m.newSession(SessionOptions.builder().contextSize(1024).build())) {
            assertEquals(512, s.contextSize());
            assertEquals(1024, big.contextSize(), "an explicit size is taken as it is");
        }
    }
}
