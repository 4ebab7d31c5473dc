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

    /** Creates a writer with no metadata and no tensors. */
    public GgufWriter() {
    }

    /**
     * A writer holding everything an open file holds, for copying it with changes: metadata in file
     * order, and every tensor, whose bytes are read from {@code reader} when the copy is written
     * (keep it open until then).
     *
     * @param reader the file to copy
     * @return a new writer; {@link #put} and {@link #remove} change its metadata
     */
    public static GgufWriter copyOf(GgufReader reader) {
        GgufWriter w = new GgufWriter();
        reader.file().metadata().forEach(w::put);
        for (GgufTensorInfo t : reader.file().tensors()) {
            w.addRawTensor(t.name(), t.type(), t.shape(), ch -> {
                java.nio.ByteBuffer bytes = reader.readBytes(t);
                while (bytes.hasRemaining()) {
                    ch.write(bytes);
                }
            });
        }
        return w;
    }

    /**
     * Removes a metadata key, if present.
     *
     * @param key the metadata key
     * @return this writer
     */
    public GgufWriter remove(String key) {
        metadata.remove(key);
        return this;
    }

    /**
     * Removes a tensor, if present.
     *
     * @param name the tensor name
     * @return this writer
     */
    public GgufWriter removeTensor(String name) {
        tensors.remove(name);
        return this;
    }

    // ---- metadata ----

    /**
     * Sets a metadata key; an existing key keeps its position and gets the new value.
     *
     * @param key   the metadata key, such as {@code general.name}; not empty
     * @param value the value; a {@code general.alignment} value must be a {@code UINT32} power of two
     * @return this writer
     * @throws IllegalArgumentException if {@code key} is null or empty, or the alignment is invalid
     */
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

    /**
     * Sets {@code key} to a {@code STRING}.
     *
     * @param key   the metadata key, such as {@code general.name}; not empty
     * @param value the string, written as UTF-8
     * @return this writer
     */
    public GgufWriter putString(String key, String value) {
        return put(key, GgufValue.string(value));
    }

    /**
     * Sets {@code key} to a {@code BOOL}.
     *
     * @param key   the metadata key, such as {@code general.name}; not empty
     * @param value the value
     * @return this writer
     */
    public GgufWriter putBool(String key, boolean value) {
        return put(key, GgufValue.bool(value));
    }

    /**
     * Sets {@code key} to a {@code UINT8}.
     *
     * @param key   the metadata key, such as {@code general.name}; not empty
     * @param value the value, 0 to 255
     * @return this writer
     * @throws IllegalArgumentException if {@code value} is out of range
     */
    public GgufWriter putUInt8(String key, int value) {
        return put(key, GgufValue.uint8(value));
    }

    /**
     * Sets {@code key} to an {@code INT8}.
     *
     * @param key   the metadata key, such as {@code general.name}; not empty
     * @param value the value, -128 to 127
     * @return this writer
     * @throws IllegalArgumentException if {@code value} is out of range
     */
    public GgufWriter putInt8(String key, int value) {
        return put(key, GgufValue.int8(value));
    }

    /**
     * Sets {@code key} to a {@code UINT16}.
     *
     * @param key   the metadata key, such as {@code general.name}; not empty
     * @param value the value, 0 to 65535
     * @return this writer
     * @throws IllegalArgumentException if {@code value} is out of range
     */
    public GgufWriter putUInt16(String key, int value) {
        return put(key, GgufValue.uint16(value));
    }

    /**
     * Sets {@code key} to an {@code INT16}.
     *
     * @param key   the metadata key, such as {@code general.name}; not empty
     * @param value the value, -32768 to 32767
     * @return this writer
     * @throws IllegalArgumentException if {@code value} is out of range
     */
    public GgufWriter putInt16(String key, int value) {
        return put(key, GgufValue.int16(value));
    }

    /**
     * Sets {@code key} to a {@code UINT32}.
     *
     * @param key   the metadata key, such as {@code general.name}; not empty
     * @param value the value, 0 to 2<sup>32</sup>-1
     * @return this writer
     * @throws IllegalArgumentException if {@code value} is out of range
     */
    public GgufWriter putUInt32(String key, long value) {
        return put(key, GgufValue.uint32(value));
    }

    /**
     * Sets {@code key} to an {@code INT32}.
     *
     * @param key   the metadata key, such as {@code general.name}; not empty
     * @param value the value
     * @return this writer
     */
    public GgufWriter putInt32(String key, int value) {
        return put(key, GgufValue.int32(value));
    }

    /**
     * Sets {@code key} to a {@code UINT64}; {@code value} is the raw 64 bits of the unsigned value.
     *
     * @param key   the metadata key, such as {@code general.name}; not empty
     * @param value the value's bits; negative numbers stand for values above {@link Long#MAX_VALUE}
     * @return this writer
     */
    public GgufWriter putUInt64(String key, long value) {
        return put(key, GgufValue.uint64(value));
    }

    /**
     * Sets {@code key} to an {@code INT64}.
     *
     * @param key   the metadata key, such as {@code general.name}; not empty
     * @param value the value
     * @return this writer
     */
    public GgufWriter putInt64(String key, long value) {
        return put(key, GgufValue.int64(value));
    }

    /**
     * Sets {@code key} to a {@code FLOAT32}.
     *
     * @param key   the metadata key, such as {@code general.name}; not empty
     * @param value the value
     * @return this writer
     */
    public GgufWriter putFloat32(String key, float value) {
        return put(key, GgufValue.float32(value));
    }

    /**
     * Sets {@code key} to a {@code FLOAT64}.
     *
     * @param key   the metadata key, such as {@code general.name}; not empty
     * @param value the value
     * @return this writer
     */
    public GgufWriter putFloat64(String key, double value) {
        return put(key, GgufValue.float64(value));
    }

    /**
     * Sets {@code key} to an array of {@code STRING}s, such as {@code tokenizer.ggml.tokens}.
     *
     * @param key    the metadata key; not empty
     * @param values the strings, copied; none may be {@code null}
     * @return this writer
     */
    public GgufWriter putStringArray(String key, List<String> values) {
        return put(key, GgufValue.stringArray(values));
    }

    /**
     * Sets {@code key} to an array of {@code INT32}s.
     *
     * @param key    the metadata key; not empty
     * @param values the elements, copied
     * @return this writer
     */
    public GgufWriter putInt32Array(String key, int... values) {
        return put(key, GgufValue.int32Array(values));
    }

    /**
     * Sets {@code key} to an array of {@code FLOAT32}s.
     *
     * @param key    the metadata key; not empty
     * @param values the elements, copied
     * @return this writer
     */
    public GgufWriter putFloat32Array(String key, float... values) {
        return put(key, GgufValue.float32Array(values));
    }

    /**
     * Sets {@code key} to an array of any element type, elements represented as {@link GgufValue}
     * describes.
     *
     * @param key         the metadata key; not empty
     * @param elementType the type of every element; not {@code ARRAY}
     * @param values      the elements, copied
     * @return this writer
     * @throws IllegalArgumentException if an element does not fit {@code elementType}
     */
    public GgufWriter putArray(String key, GgufValueType elementType, List<?> values) {
        return put(key, GgufValue.array(elementType, values));
    }

    /**
     * Sets {@code general.alignment}: a power of two; 32 if never set.
     *
     * @param bytes the alignment of the data section and of each tensor's data, in bytes; a power of
     *              two up to 2<sup>30</sup>
     * @return this writer
     * @throws IllegalArgumentException if {@code bytes} is not such a power of two
     */
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
     * F32, F16, BF16, Q8_0 or Q4_0 (rounded as ggml's reference quantisers do).
     *
     * @param name  the tensor name, 1 to {@link GgufTensorInfo#MAX_NAME_BYTES} UTF-8 bytes; unique in the file
     * @param type  the stored type: {@link GgmlType#F32}, {@link GgmlType#F16}, {@link GgmlType#BF16},
     *              {@link GgmlType#Q8_0} or {@link GgmlType#Q4_0}
     * @param shape ggml order, {@code ne0} first: a PyTorch {@code [rows, cols]} weight is {@code {cols, rows}}
     * @param data  supplies the elements when the file is written; it must supply exactly the shape's
     *              element count
     * @return this writer
     * @throws IllegalArgumentException if {@code type} cannot be encoded from floats, the name is taken,
     *         or the name or shape is invalid (see {@link GgufTensorInfo})
     */
    public GgufWriter addTensor(String name, GgmlType type, long[] shape, TensorData data) {
        if (!TensorEncoder.canEncode(type)) {
            throw new IllegalArgumentException("cannot encode floats as " + type + "; use addRawTensor");
        }
        return add(name, type, shape, Objects.requireNonNull(data, "data"), null);
    }

    /**
     * Adds a tensor whose bytes are supplied already encoded, for any type.
     *
     * @param name  the tensor name, 1 to {@link GgufTensorInfo#MAX_NAME_BYTES} UTF-8 bytes; unique in the file
     * @param type  the type the bytes are encoded in
     * @param shape ggml order, {@code ne0} first; {@code ne0} must be a multiple of the type's block size
     * @param data  writes exactly {@code type.byteSize(elements)} bytes when the file is written
     * @return this writer
     * @throws IllegalArgumentException if the name is taken or the name or shape is invalid (see
     *         {@link GgufTensorInfo})
     */
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
     *
     * @param path the file to create or replace
     * @throws IOException if writing fails or a tensor's data source throws it; the file is then left
     *         as it was
     * @throws IllegalStateException if a tensor's data supplies the wrong number of elements or bytes
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

    /**
     * Writes the file to a channel, which stays open.
     *
     * @param channel where the file goes, from its current position
     * @throws IOException if writing fails or a tensor's data source throws it
     * @throws IllegalStateException if a tensor's data supplies the wrong number of elements or bytes
     */
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
