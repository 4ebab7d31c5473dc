package org.flexidepth.tests.api;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import org.flexidepth.gguf.GgufFile;
import org.flexidepth.gguf.GgufReader;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.tools.ProjectPaths;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

import java.io.DataInputStream;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The default and demonstration models, as the project converts them from ../shared's llama2.c
 * checkpoints: their GGUF says the context length they were trained with (the checkpoint header's
 * seq_len, not the 128 upstream's converter writes) and names no special token the vocabulary
 * lacks, so loading one and opening a session logs no warning, and the library logs one INFO line
 * for each.
 */
class DefaultModelsTest {
    static int seqLen(Path checkpoint) throws Exception {
        try (InputStream in = Files.newInputStream(checkpoint)) {
            byte[] header = new DataInputStream(in).readNBytes(28);
            return ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN).getInt(24);
        }
    }

    void check(Path gguf, Path checkpoint) throws Exception {
        GgufFile f = GgufReader.readHeader(gguf);
        int trained = seqLen(checkpoint);
        assertTrue(trained > 128, checkpoint + " was trained with more than upstream's 128 tokens: " + trained);
        assertEquals(trained, f.require("llama.context_length").asInt(), gguf + ": the checkpoint's context length");
        long vocab = f.require("tokenizer.ggml.tokens").asList().size();
        f.metadata().forEach((k, v) -> {
            if (k.endsWith("_token_id")) {
                assertTrue(v.asLong() >= 0 && v.asLong() < vocab, k + " = " + v.asLong() + " names no token of " + vocab);
            }
        });

        Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        Logger library = (Logger) LoggerFactory.getLogger("org.flexidepth.llama");
        Logger nativeLog = (Logger) LoggerFactory.getLogger("org.flexidepth.llama.native");
        Level was = library.getLevel(), nativeWas = nativeLog.getLevel();
        ListAppender<ILoggingEvent> seen = new ListAppender<>();
        seen.start();
        root.addAppender(seen);
        library.setLevel(Level.DEBUG); // logback's level without a configuration
        nativeLog.setLevel(Level.DEBUG);
        try (LlamaModel m = LlamaModel.load(gguf); Session s = m.newSession()) {
            assertEquals(trained, s.contextSize(), "the default context is the trained one");
        } finally {
            root.detachAppender(seen);
            library.setLevel(was);
            nativeLog.setLevel(nativeWas);
        }
        List<String> warnings = seen.list.stream().filter(e -> e.getLevel().isGreaterOrEqual(Level.WARN)).map(ILoggingEvent::getFormattedMessage).toList();
        assertEquals(List.of(), warnings, gguf + " loads without warnings");
        List<ILoggingEvent> info = seen.list.stream().filter(e -> e.getLevel() == Level.INFO).toList();
        assertEquals(2, info.size(), "one INFO line for the model and one for the session: " + info);
        assertTrue(info.get(0).getFormattedMessage().contains("trained context " + trained), info.get(0).getFormattedMessage());
        assertTrue(seen.list.stream().noneMatch(e -> e.getLoggerName().equals("org.flexidepth.llama.native")),
                "llama.cpp's own output stays below DEBUG: " + seen.list.stream().filter(e -> e.getLoggerName().endsWith("native")).limit(3).toList());
    }

    @Test
    void stories260KSaysItsTrueContextAndLoadsQuietly() throws Exception {
        Path shared = ProjectPaths.shared().orElse(null);
        RealModels.assumeShared();
        check(RealModels.stories260K(), shared.resolve("models/stories260K.bin"));
    }

    @Test
    void flexiDemo12LSaysItsTrueContextAndLoadsQuietly() throws Exception {
        Path shared = ProjectPaths.shared().orElse(null);
        RealModels.assumeShared();
        check(RealModels.flexiDemo12L(), shared.resolve("models/flexi-demo-12L/model.bin"));
    }
}
