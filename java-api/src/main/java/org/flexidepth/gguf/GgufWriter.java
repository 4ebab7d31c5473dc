package org.flexidepth.gguf;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Writes GGUF version 3 files (little-endian), as ggml's {@code gguf_write_to_file} lays them out:
 * header, metadata, tensor infos, padding to the alignment, then each tensor's data padded to the
 * alignment.
 *
 * <p>Collect metadata and tensors, then {@link #write}. Tensor data is pulled from each tensor's
 * {@link TensorData} (or {@link RawTensorData}) only while that tensor is written, so a converter
 * can stream weights from memory-mapped checkpoints without holding the model in memory.
 *
 * <pre>{@code
 * new GgufWriter()
 *     .putString("general.architecture", "llama")
 *     .putUInt32("llama.block_count", 2)
 *     .addTensor("output_norm.weight", GgmlType.F32, new long[] {128}, TensorData.of(norm))
 *     .write(Path.of("model.gguf"));
 * }</pre>
 *
 * <p>Keys and tensor names are unique: putting a key again replaces its value; adding a tensor
 * name twice is an error. Not thread-safe.
 */
public final class GgufWriter {
    /** The GGUF version written. */
    public static final int VERSION = 3;
    private static final byte[] MAGIC = "GGUF".getBytes(StandardCharsets.US_ASCII);

    private final Map<String, GgufValue> metadata = new LinkedHashMap<>();
    private final Map<String, PendingTensor> tensors = new LinkedHashMap<>();

    private record PendingTensor(GgufTensorInfo shapeAndType, TensorData floats, RawTensorData raw) {
    }

    // ---- metadata ----

    /** Sets a metadata key; an existing key keeps its position and gets the new value. */
    public GgufWriter put(String key, GgufValue value) {
        Objects.requireNonNull(value, "value");
        if (key == null || key.isEmpty()) {
            throw new IllegalArgumentException("metadata keys must be non-empty");
        }
        if (key.equals(GgufFile.ALIGNMENT_KEY)) {
            checkAlignment(value);
        }
        metadata.put(key, value);
        return this;
    }

    public GgufWriter putString(String key, String value) {
        return put(key, GgufValue.string(value));
    }

    public GgufWriter putBool(String key, boolean value) {
        return put(key, GgufValue.bool(value));
    }

    public GgufWriter putUInt8(String key, int value) {
        return put(key, GgufValue.uint8(value));
    }

    public GgufWriter putInt8(String key, int value) {
        return put(key, GgufValue.int8(value));
    }

    public GgufWriter putUInt16(String key, int value) {
        return put(key, GgufValue.uint16(value));
    }

    public GgufWriter putInt16(String key, int value) {
        return put(key, GgufValue.int16(value));
    }

    public GgufWriter putUInt32(String key, long value) {
        return put(key, GgufValue.uint32(value));
    }

    public GgufWriter putInt32(String key, int value) {
        return put(key, GgufValue.int32(value));
    }

    /** {@code value} is the raw 64 bits of the unsigned value. */
    public GgufWriter putUInt64(String key, long value) {
        return put(key, GgufValue.uint64(value));
    }

    public GgufWriter putInt64(String key, long value) {
        return put(key, GgufValue.int64(value));
    }

    public GgufWriter putFloat32(String key, float value) {
        return put(key, GgufValue.float32(value));
    }

    public GgufWriter putFloat64(String key, double value) {
        return put(key, GgufValue.float64(value));
    }

    public GgufWriter putStringArray(String key, List<String> values) {
        return put(key, GgufValue.stringArray(values));
    }

    public GgufWriter putInt32Array(String key, int... values) {
        return put(key, GgufValue.int32Array(values));
    }

    public GgufWriter putFloat32Array(String key, float... values) {
        return put(key, GgufValue.float32Array(values));
    }

    /** An array of any element type, elements represented as {@link GgufValue} describes. */
    public GgufWriter putArray(String key, GgufValueType elementType, List<?> values) {
        return put(key, GgufValue.array(elementType, values));
    }

    /** Sets {@code general.alignment}: a power of two; 32 if never set. */
    public GgufWriter alignment(int bytes) {
        return putUInt32(GgufFile.ALIGNMENT_KEY, bytes);
    }

    /** {@return the alignment the file will use} */
    public int alignment() {
        GgufValue v = metadata.get(GgufFile.ALIGNMENT_KEY);
        return v == null ? GgufFile.DEFAULT_ALIGNMENT : (int) v.asLong();
    }

    /** {@return the metadata so far, in file order} */
    public Map<String, GgufValue> metadata() {
        return Collections.unmodifiableMap(metadata);
    }

    private static void checkAlignment(GgufValue v) {
        if (v.type() != GgufValueType.UINT32) {
            throw new IllegalArgumentException(GgufFile.ALIGNMENT_KEY + " must be UINT32, llama.cpp rejects other types");
        }
        long a = v.asLong();
        if (a == 0 || (a & (a - 1)) != 0 || a > 1 << 30) {
            throw new IllegalArgumentException(GgufFile.ALIGNMENT_KEY + " must be a power of two, not " + a);
        }
    }

    // ---- tensors ----

    /**
     * Adds a tensor whose elements are given as floats and stored as {@code type}, which must be
     * F32, F16, BF16 or Q8_0 (rounded as ggml's reference quantiser does).
     *
     * @param shape ggml order, {@code ne0} first: a PyTorch {@code [rows, cols]} weight is {@code {cols, rows}}
     */
    public GgufWriter addTensor(String name, GgmlType type, long[] shape, TensorData data) {
        if (!TensorEncoder.canEncode(type)) {
            throw new IllegalArgumentException("cannot encode floats as " + type + "; use addRawTensor");
        }
        return add(name, type, shape, Objects.requireNonNull(data, "data"), null);
    }

    /** Adds a tensor whose bytes are supplied already encoded, for any type. */
    public GgufWriter addRawTensor(String name, GgmlType type, long[] shape, RawTensorData data) {
        return add(name, type, shape, null, Objects.requireNonNull(data, "data"));
    }

    private GgufWriter add(String name, GgmlType type, long[] shape, TensorData floats, RawTensorData raw) {
        GgufTensorInfo info = new GgufTensorInfo(name, type, shape, 0);
        if (tensors.containsKey(name)) {
            throw new IllegalArgumentException("duplicate tensor name " + name);
        }
        tensors.put(name, new PendingTensor(info, floats, raw));
        return this;
    }

    /** {@return the tensor infos as they will be written, offsets included} */
    public List<GgufTensorInfo> tensorInfos() {
        int alignment = alignment();
        List<GgufTensorInfo> out = new ArrayList<>(tensors.size());
        long offset = 0;
        for (PendingTensor p : tensors.values()) {
            GgufTensorInfo t = p.shapeAndType();
            out.add(new GgufTensorInfo(t.name(), t.type(), t.shape(), offset));
            offset += GgufReader.padded(t.byteSize(), alignment);
        }
        return out;
    }

    // ---- output ----

    /**
     * Writes the file. It appears at {@code path} only once complete: the data goes to a temporary
     * file beside it that is then renamed, so an interrupted conversion leaves no half-written
     * model that a loader might pick up.
     */
    public void write(Path path) throws IOException {
        Path abs = path.toAbsolutePath();
        // not Files.createTempFile: its owner-only permissions would stick to the model file
        Path tmp = abs.resolveSibling(abs.getFileName() + "." + Long.toHexString(System.nanoTime()) + ".partial");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.CREATE_NEW)) {
                write(ch);
            }
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** Writes the file to a channel, which stays open. */
    public void write(WritableByteChannel channel) throws IOException {
        int alignment = alignment();
        List<GgufTensorInfo> infos = tensorInfos();
        GgufOutput out = new GgufOutput(channel);

        out.bytes(MAGIC, 0, MAGIC.length);
        out.u32(VERSION);
        out.u64(infos.size());
        out.u64(metadata.size());
        for (Map.Entry<String, GgufValue> e : metadata.entrySet()) {
            out.string(e.getKey());
            writeValue(out, e.getValue());
        }
        for (GgufTensorInfo t : infos) {
            out.string(t.name());
            out.u32(t.dims());
            for (long d : t.shape()) {
                out.u64(d);
            }
            out.u32(t.type().id());
            out.u64(t.offset());
        }
        out.pad(alignment);

        long dataStart = out.position();
        int i = 0;
        for (PendingTensor p : tensors.values()) {
            GgufTensorInfo t = infos.get(i++);
            long start = out.position();
            if (start - dataStart != t.offset()) {
                throw new IllegalStateException("layout mismatch at tensor " + t.name());
            }
            if (p.floats() != null) {
                TensorEncoder enc = TensorEncoder.create(t.type(), out);
                p.floats().writeTo(enc);
                if (enc.count() != t.elementCount()) {
                    throw new IllegalStateException("tensor " + t.name() + " declared " + t.elementCount()
                            + " elements but its data supplied " + enc.count());
                }
                enc.finish();
            } else {
                p.raw().writeTo(out);
            }
            long written = out.position() - start;
            if (written != t.byteSize()) {
                throw new IllegalStateException("tensor " + t.name() + " should take " + t.byteSize()
                        + " bytes as " + t.type() + " but " + written + " were written");
            }
            out.pad(alignment);
        }
        out.flush();
    }

    private static void writeValue(GgufOutput out, GgufValue v) throws IOException {
        out.u32(v.type().id());
        if (v.isArray()) {
            out.u32(v.elementType().id());
            List<?> list = v.asList();
            out.u64(list.size());
            for (Object element : list) {
                writeScalar(out, v.elementType(), element);
            }
        } else {
            writeScalar(out, v.type(), v.value());
        }
    }

    private static void writeScalar(GgufOutput out, GgufValueType type, Object value) throws IOException {
        switch (type) {
            case UINT8, INT8 -> out.u8((Integer) value);
            case UINT16, INT16 -> out.u16((Integer) value);
            case INT32 -> out.u32((Integer) value);
            case UINT32 -> out.u32((Long) value);
            case UINT64, INT64 -> out.u64((Long) value);
            case FLOAT32 -> out.f32((Float) value);
            case FLOAT64 -> out.f64((Double) value);
            case BOOL -> out.u8((Boolean) value ? 1 : 0);
            case STRING -> out.string((String) value);
            case ARRAY -> throw new IllegalStateException("GGUF does not allow arrays of arrays");
        }
    }
}
