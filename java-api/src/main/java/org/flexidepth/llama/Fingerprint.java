package org.flexidepth.llama;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Identifies the file a model or plug-in was loaded from, so that a saved session state is
 * refused by any other: SHA-256 of the size and the first and last MiB (header, metadata and the
 * tensor data at the end), which tells apart models of the same shape in other types or with
 * other weights without reading gigabytes.
 */
final class Fingerprint {
    private static final int SAMPLE = 1 << 20;

    private Fingerprint() {
    }

    static String of(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            long size = ch.size();
            sha.update(ByteBuffer.allocate(8).putLong(0, size));
            digest(ch, sha, 0, Math.min(size, SAMPLE));
            if (size > SAMPLE) {
                long from = Math.max(SAMPLE, size - SAMPLE);
                digest(ch, sha, from, size - from);
            }
            return HexFormat.of().formatHex(sha.digest());
        } catch (IOException e) {
            throw new LlamaException("cannot read " + file + ": " + e.getMessage(), e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void digest(FileChannel ch, MessageDigest sha, long at, long length) throws IOException {
        // in small pieces: loading models in a loop must not grow the Java heap by megabytes each time
        ByteBuffer buf = ByteBuffer.allocate(1 << 16);
        for (long done = 0; done < length; ) {
            buf.clear().limit((int) Math.min(buf.capacity(), length - done));
            int n = ch.read(buf, at + done);
            if (n < 0) {
                throw new IOException("the file shrank while it was read");
            }
            sha.update(buf.flip());
            done += n;
        }
    }
}
