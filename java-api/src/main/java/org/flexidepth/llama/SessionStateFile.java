package org.flexidepth.llama;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * The session state file: a header saying what the state was computed with, then llama.cpp's
 * state data as {@code llama_state_get_data} writes it (llama.cpp's own session file has no room
 * for the model identity and routing). Little-endian:
 * <pre>
 * "FLXSTATE" u32 version  u32 len, model fingerprint (UTF-8)  u32 len, routing (UTF-8)
 * u32 n_tokens, i32 tokens[n_tokens]  u32 dmtd_pending, u8 dmtd_starts_cycle
 * u32 n_hidden, i32 dmtd_hidden[n_hidden]
 * u64 n_bytes, state data[n_bytes]
 * </pre>
 * Version 1 files, which have no DMTD fields, are read as none pending, and version 2 files, which
 * have no hidden positions (DMTD without refill), as none hidden.
 * The data is streamed between native memory and the file, so states beyond 2 GiB work.
 */
final class SessionStateFile {
    private static final byte[] MAGIC = "FLXSTATE".getBytes(StandardCharsets.US_ASCII);
    private static final int VERSION = 3;
    private static final int MAX_STRING = 1 << 16;
    private static final int CHUNK = 1 << 26;

    record Header(String model, String routing, int[] tokens, SessionState.Cycle cycle) {
    }

    private SessionStateFile() {
    }

    /** Writes to a temporary file beside {@code file}, then renames it: a failed write leaves any old file intact. */
    static void write(Path file, Header header, MemorySegment data) {
        byte[] model = header.model().getBytes(StandardCharsets.UTF_8);
        byte[] routing = header.routing().getBytes(StandardCharsets.UTF_8);
        ByteBuffer head = ByteBuffer.allocate(MAGIC.length + 4 + 4 + model.length + 4 + routing.length + 4
                + 4 * header.tokens().length + 4 + 1 + 4 + 4 * header.cycle().hidden().size() + 8).order(ByteOrder.LITTLE_ENDIAN);
        head.put(MAGIC).putInt(VERSION).putInt(model.length).put(model).putInt(routing.length).put(routing)
                .putInt(header.tokens().length);
        for (int t : header.tokens()) {
            head.putInt(t);
        }
        head.putInt(header.cycle().pending()).put((byte) (header.cycle().startsCycle() ? 1 : 0));
        head.putInt(header.cycle().hidden().size());
        for (int p : header.cycle().hidden()) {
            head.putInt(p);
        }
        head.putLong(data.byteSize()).flip();
        Path dir = file.toAbsolutePath().getParent();
        Path tmp = null;
        try {
            tmp = Files.createTempFile(dir, file.getFileName().toString(), ".part");
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                while (head.hasRemaining()) {
                    ch.write(head);
                }
                for (long at = 0; at < data.byteSize(); at += CHUNK) {
                    ByteBuffer b = data.asSlice(at, Math.min(CHUNK, data.byteSize() - at)).asByteBuffer();
                    while (b.hasRemaining()) {
                        ch.write(b);
                    }
                }
                ch.force(true);
            }
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // the original failure is what the caller needs to see
                }
            }
            throw new LlamaException("cannot write session state to " + file + ": " + e.getMessage(), e);
        }
    }

    static Reader open(Path file) {
        return new Reader(file);
    }

    /** Reads the header at once, the data on request; every size is checked against the file's length. */
    static final class Reader implements AutoCloseable {
        private final Path file;
        private final FileChannel ch;
        private final Header header;
        private final long dataBytes;

        private Reader(Path file) {
            this.file = file;
            try {
                ch = FileChannel.open(file, StandardOpenOption.READ);
            } catch (IOException e) {
                throw new InvalidArgumentException("cannot read session state file " + file + ": " + e.getMessage());
            }
            try {
                byte[] magic = new byte[MAGIC.length];
                read(ByteBuffer.wrap(magic));
                if (!java.util.Arrays.equals(magic, MAGIC)) {
                    throw corrupt("it is not a session state file (bad magic)");
                }
                int version = readInt();
                if (version < 1 || version > VERSION) {
                    throw corrupt("unsupported version " + version);
                }
                String model = readString();
                String routing = readString();
                int n = readInt();
                if (n < 0 || 4L * n > remaining()) {
                    throw corrupt("token count " + n + " exceeds the file");
                }
                ByteBuffer toks = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
                read(toks);
                toks.flip();
                int[] tokens = new int[n];
                toks.asIntBuffer().get(tokens);
                SessionState.Cycle cycle = SessionState.Cycle.NONE;
                if (version >= 2) {
                    int pending = readInt();
                    ByteBuffer starts = ByteBuffer.allocate(1);
                    read(starts);
                    if (pending < 0 || pending > n || (starts.get(0) != 0 && starts.get(0) != 1)) {
                        throw corrupt("DMTD place " + pending + "/" + starts.get(0) + " does not fit its " + n + " tokens");
                    }
                    java.util.List<Integer> hidden = new java.util.ArrayList<>();
                    if (version >= 3) {
                        int h = readInt();
                        if (h < 0 || h > n || 4L * h > remaining()) {
                            throw corrupt("DMTD hidden position count " + h + " does not fit its " + n + " tokens");
                        }
                        for (int j = 0; j < h; j++) {
                            int p = readInt();
                            if (p < 0 || p >= n || (j > 0 && p <= hidden.get(j - 1))) {
                                throw corrupt("DMTD hidden position " + p + " is not a new position of its " + n + " tokens");
                            }
                            hidden.add(p);
                        }
                    }
                    cycle = new SessionState.Cycle(pending, starts.get(0) == 1, hidden);
                }
                dataBytes = readLong();
                if (dataBytes != remaining()) {
                    throw corrupt("it is truncated or has trailing bytes (" + remaining() + " bytes of state data, header says " + dataBytes + ")");
                }
                header = new Header(model, routing, tokens, cycle);
            } catch (RuntimeException e) {
                close();
                throw e;
            }
        }

        Header header() {
            return header;
        }

        MemorySegment readData(Arena arena) {
            MemorySegment data = arena.allocate(Math.max(1, dataBytes)).asSlice(0, dataBytes);
            for (long at = 0; at < dataBytes; at += CHUNK) {
                read(data.asSlice(at, Math.min(CHUNK, dataBytes - at)).asByteBuffer());
            }
            return data;
        }

        private long remaining() {
            try {
                return ch.size() - ch.position();
            } catch (IOException e) {
                throw corrupt(e.getMessage());
            }
        }

        private int readInt() {
            ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
            read(b);
            return b.getInt(0);
        }

        private long readLong() {
            ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            read(b);
            return b.getLong(0);
        }

        private String readString() {
            int n = readInt();
            if (n < 0 || n > MAX_STRING || n > remaining()) {
                throw corrupt("a header string of " + n + " bytes");
            }
            ByteBuffer b = ByteBuffer.allocate(n);
            read(b);
            return new String(b.array(), StandardCharsets.UTF_8);
        }

        private void read(ByteBuffer b) {
            try {
                while (b.hasRemaining()) {
                    if (ch.read(b) < 0) {
                        throw corrupt("it is truncated");
                    }
                }
            } catch (IOException e) {
                throw corrupt(e.getMessage());
            }
        }

        private InvalidArgumentException corrupt(String why) {
            return new InvalidArgumentException("cannot restore session state from " + file + ": " + why);
        }

        @Override
        public void close() {
            try {
                ch.close();
            } catch (IOException ignored) {
                // read-only: nothing is lost
            }
        }
    }
}
