package org.flexidepth.gguf;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;

/**
 * Little-endian, buffered, sequential reads of the GGUF header from a file. Lengths read from the
 * file are checked against the bytes left, so a corrupt count fails cleanly instead of allocating
 * gigabytes.
 */
final class GgufInput {
    private final FileChannel channel;
    private final long size;
    private final ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
    private long bufStart;

    GgufInput(FileChannel channel) throws IOException {
        this.channel = channel;
        this.size = channel.size();
        buf.limit(0);
    }

    long position() {
        return bufStart + buf.position();
    }

    long remaining() {
        return size - position();
    }

    private ByteBuffer need(int n) throws IOException {
        if (buf.remaining() < n) {
            long pos = position();
            buf.compact();
            bufStart = pos;
            while (buf.position() < n) {
                int r = channel.read(buf, bufStart + buf.position());
                if (r < 0) {
                    throw new GgufFormatException("truncated file: needed " + n + " bytes at offset " + pos);
                }
            }
            buf.flip();
        }
        return buf;
    }

    int u8() throws IOException {
        return need(1).get() & 0xFF;
    }

    int i8() throws IOException {
        return need(1).get();
    }

    int u16() throws IOException {
        return need(2).getShort() & 0xFFFF;
    }

    int i16() throws IOException {
        return need(2).getShort();
    }

    long u32() throws IOException {
        return need(4).getInt() & 0xFFFF_FFFFL;
    }

    int i32() throws IOException {
        return need(4).getInt();
    }

    long i64() throws IOException {
        return need(8).getLong();
    }

    float f32() throws IOException {
        return need(4).getFloat();
    }

    double f64() throws IOException {
        return need(8).getDouble();
    }

    /** A uint64 count of items of at least {@code minItemBytes} each that must fit in the rest of the file. */
    long count(int minItemBytes, String what) throws IOException {
        long n = i64();
        if (n < 0 || n > remaining() / Math.max(1, minItemBytes)) {
            throw new GgufFormatException("implausible " + what + ": " + Long.toUnsignedString(n)
                    + " with " + remaining() + " bytes left at offset " + position());
        }
        return n;
    }

    String string() throws IOException {
        long n = count(1, "string length");
        if (n > Integer.MAX_VALUE - 8) {
            throw new GgufFormatException("string of " + n + " bytes at offset " + position());
        }
        byte[] bytes = new byte[(int) n];
        int off = 0;
        while (off < bytes.length) {
            ByteBuffer b = need(1);
            int k = Math.min(b.remaining(), bytes.length - off);
            b.get(bytes, off, k);
            off += k;
        }
        return new String(bytes, StandardCharsets.UTF_8);
    }

    void skipTo(long absolute) throws IOException {
        if (absolute > size) {
            throw new EOFException("offset " + absolute + " is past the end of the file (" + size + " bytes)");
        }
        buf.limit(0);
        bufStart = absolute;
    }
}
