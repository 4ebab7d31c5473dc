package org.flexidepth.tests.flexidepth;

import org.flexidepth.gguf.GgufReader;
import org.flexidepth.gguf.GgufTensorInfo;
import org.flexidepth.gguf.GgufValue;
import org.flexidepth.gguf.GgufWriter;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Predicate;

/** Copies a GGUF file with some metadata replaced and some tensors left out: broken plug-ins for tests. */
public final class GgufEdit {
    private GgufEdit() {
    }

    /** Overwrites element {@code index} of an F32 tensor in place: NaN and Inf weights for tests. */
    public static Path pokeFloat(Path file, String tensor, long index, float value) throws IOException {
        long at;
        try (GgufReader r = GgufReader.open(file)) {
            GgufTensorInfo t = r.file().tensor(tensor).orElseThrow(() -> new IllegalArgumentException("no tensor " + tensor));
            if (t.type() != org.flexidepth.gguf.GgmlType.F32) {
                throw new IllegalArgumentException(tensor + " is " + t.type() + ", not F32");
            }
            at = r.file().dataOffset() + t.offset() + 4 * index;
        }
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(4).order(java.nio.ByteOrder.LITTLE_ENDIAN).putFloat(0, value), at);
        }
        return file;
    }

    public static Path copy(Path in, Path out, Map<String, GgufValue> replace, Predicate<String> keepTensor) throws IOException {
        try (GgufReader r = GgufReader.open(in)) {
            GgufWriter w = GgufWriter.copyOf(r);
            replace.forEach(w::put);
            r.file().tensors().stream().map(GgufTensorInfo::name).filter(keepTensor.negate()).forEach(w::removeTensor);
            w.write(out);
        }
        return out;
    }
}
