package org.flexidepth.gguf;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;

/** Little-endian, buffered, position-counting output for the GGUF encoding. */
final class GgufOutput implements WritableByteChannel {
    private static final int BUFFER_BYTES = 1 << 20;

    private final WritableByteChannel channel;
    private final ByteBuffer buf = ByteBuffer.allocateDirect(BUFFER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    private long position;

    GgufOutput(WritableByteChannel channel) {
        this.channel = channel;
    }

    /** Bytes written so far, buffered ones included. */
    long position() {
        return position;
    }

    private ByteBuffer room(int n) throws IOException {
        if (buf.remaining() < n) {
            flush();
        }
        position += n;
        return buf;
    }

    void u8(int v) throws IOException {
        room(1).put((byte) v);
    }

    void u16(int v) throws IOException {
        room(2).putShort((short) v);
    }

    void u32(long v) throws IOException {
        room(4).putInt((int) v);
    }

    void u64(long v) throws IOException {
        room(8).putLong(v);
    }

    void f32(float v) throws IOException {
        room(4).putFloat(v);
    }

    void f64(double v) throws IOException {
        room(8).putDouble(v);
    }

    void string(String s) throws IOException {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        u64(bytes.length);
        bytes(bytes, 0, bytes.length);
    }

    void bytes(byte[] b, int off, int len) throws IOException {
        while (len > 0) {
            if (!buf.hasRemaining()) {
                flush();
            }
            int n = Math.min(len, buf.remaining());
            buf.put(b, off, n);
            position += n;
            off += n;
            len -= n;
        }
    }

    /** Zero bytes up to the next multiple of {@code alignment}. */
    void pad(int alignment) throws IOException {
        while (position % alignment != 0) {
            u8(0);
        }
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        int n = src.remaining();
        if (n >= buf.capacity()) {
            flush();
            while (src.hasRemaining()) {
                channel.write(src);
            }
            position += n;
            return n;
        }
        room(n).put(src);
        return n;
    }

    void flush() throws IOException {
        buf.flip();
        while (buf.hasRemaining()) {
            channel.write(buf);
        }
        buf.clear();
    }

    @Override
    public boolean isOpen() {
        return channel.isOpen();
    }

    /** Flushes; the channel stays open, its owner closes it. */
    @Override
    public void close() throws IOException {
        flush();
    }
}
