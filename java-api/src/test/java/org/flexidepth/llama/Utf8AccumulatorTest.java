package org.flexidepth.llama;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;

class Utf8AccumulatorTest {
    @Test
    void multiByteCharactersSplitAcrossChunksAreNeverBroken() {
        String text = "a é 中 🦙 z";
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        // Feed one byte at a time: every split point inside a character is exercised.
        Utf8Accumulator acc = new Utf8Accumulator();
        StringBuilder out = new StringBuilder();
        for (byte b : bytes) {
            String chunk = acc.append(new byte[] {b});
            assertEquals(-1, chunk.indexOf('\uFFFD'), "a chunk contained a broken character: " + chunk);
            out.append(chunk);
        }
        out.append(acc.flush());
        assertEquals(text, out.toString());
    }

    @Test
    void incompleteTailIsHeldUntilCompleted() {
        byte[] llama = "🦙".getBytes(StandardCharsets.UTF_8);
        Utf8Accumulator acc = new Utf8Accumulator();
        assertEquals("x", acc.append(new byte[] {'x', llama[0], llama[1]}));
        assertEquals("🦙", acc.append(new byte[] {llama[2], llama[3]}));
    }

    @Test
    void flushReplacesATruncatedCharacter() {
        Utf8Accumulator acc = new Utf8Accumulator();
        assertEquals("", acc.append(new byte[] {(byte) 0xE4}));
        assertEquals("\uFFFD", acc.flush());
    }
}
