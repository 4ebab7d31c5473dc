package org.flexidepth.llama;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Turns token bytes into text without ever splitting a multi-byte character: bytes of an
 * incomplete trailing sequence stay here until the tokens that complete it arrive.
 */
final class Utf8Accumulator {
    private byte[] pending = new byte[16];
    private int length;

    /** Appends bytes and returns all complete characters so far. */
    String append(byte[] bytes) {
        if (length + bytes.length > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(pending.length * 2, length + bytes.length));
        }
        System.arraycopy(bytes, 0, pending, length, bytes.length);
        length += bytes.length;
        int complete = completePrefix();
        String text = new String(pending, 0, complete, StandardCharsets.UTF_8);
        System.arraycopy(pending, complete, pending, 0, length - complete);
        length -= complete;
        return text;
    }

    /** Whatever is left, with malformed bytes replaced (end of generation). */
    String flush() {
        String text = new String(pending, 0, length, StandardCharsets.UTF_8);
        length = 0;
        return text;
    }

    /** Length of the longest prefix that does not end inside a character. */
    private int completePrefix() {
        // Look back at most 3 bytes for the lead byte of a sequence that is still open.
        for (int back = 1; back <= Math.min(3, length); back++) {
            int b = pending[length - back] & 0xFF;
            if ((b & 0xC0) == 0x80) {
                continue; // continuation byte: keep looking for the lead
            }
            int need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
            return need > back ? length - back : length;
        }
        return length;
    }
}
