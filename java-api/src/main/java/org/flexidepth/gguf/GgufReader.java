package org.flexidepth.gguf;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads GGUF files: the header (metadata and tensor infos) when opened, tensor data on request.
 * Checks what ggml's {@code gguf_init_from_file} checks, so a file this reader accepts is also
 * structurally acceptable to llama.cpp.
 *
 * <pre>{@code
 * try (GgufReader r = GgufReader.open(path)) {
 *     String arch = r.file().architecture().orElseThrow();
 *     float[] embd = r.readFloats("token_embd.weight");
 * }
 * }</pre>
 */
public final class GgufReader implements AutoCloseable {
    private static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian int

    private final FileChannel channel;
    private final GgufFile file;

    private GgufReader(FileChannel channel, GgufFile file) {
        this.channel = channel;
        this.file = file;
    }

    /**
     * Opens a file and reads its header; the file stays open for {@link #readFloats} until {@link #close}.
     *
     * @param path the GGUF file
     * @return a reader over the file; close it when done
     * @throws GgufFormatException if the file is not GGUF or its header is corrupt, truncated or of an
     *         unknown version
     * @throws IOException if the file cannot be opened or read
     */
    public static GgufReader open(Path path) throws IOException {
        FileChannel ch = FileChannel.open(path, StandardOpenOption.READ);
        try {
            return new GgufReader(ch, readHeader(ch));
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /**
     * Reads just the header of a file, and closes it.
     *
     * @param path the GGUF file
     * @return the header
     * @throws GgufFormatException if the file is not GGUF or its header is corrupt, truncated or of an
     *         unknown version
     * @throws IOException if the file cannot be opened or read
     */
    public static GgufFile readHeader(Path path) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            return readHeader(ch);
        }
    }

    /** {@return the header} */
    public GgufFile file() {
        return file;
    }

    /**
     * A tensor's data bytes, little-endian. At most 2 GiB.
     *
     * @param tensor a tensor info from this reader's {@link #file()}
     * @return a new buffer, positioned at 0, holding exactly {@link GgufTensorInfo#byteSize()} bytes
     * @throws UnsupportedOperationException if the tensor is larger than a buffer can hold
     * @throws GgufFormatException if the file ends before the tensor's data does
     * @throws IOException if reading fails
     */
    public ByteBuffer readBytes(GgufTensorInfo tensor) throws IOException {
        long n = tensor.byteSize();
        if (n > Integer.MAX_VALUE - 8) {
            throw new UnsupportedOperationException("tensor " + tensor.name() + " has " + n + " bytes, more than one buffer holds");
        }
        ByteBuffer buf = ByteBuffer.allocate((int) n).order(ByteOrder.LITTLE_ENDIAN);
        long pos = file.dataOffset() + tensor.offset();
        while (buf.hasRemaining()) {
            int r = channel.read(buf, pos + buf.position());
            if (r < 0) {
                throw new GgufFormatException("file ends inside the data of tensor " + tensor.name());
            }
        }
        return buf.flip();
    }

    /**
     * A tensor's elements as floats, ggml order. Supports F32, F16, BF16, Q8_0 and Q4_0 (dequantised as
     * ggml does), F64 and the integer types I8 to I32.
     *
     * @param tensor a tensor info from this reader's {@link #file()}
     * @return a new array of {@link GgufTensorInfo#elementCount()} values, {@code ne0} fastest
     * @throws UnsupportedOperationException if the type is not one of those, or the tensor has more
     *         elements than an array can hold
     * @throws GgufFormatException if the file ends before the tensor's data does
     * @throws IOException if reading fails
     */
    public float[] readFloats(GgufTensorInfo tensor) throws IOException {
        if (!TensorDecoder.canDecode(tensor.type())) {
            throw new UnsupportedOperationException("reading " + tensor.type() + " tensors as floats is not supported");
        }
        long n = tensor.elementCount();
        if (n > Integer.MAX_VALUE - 8) {
            throw new UnsupportedOperationException("tensor " + tensor.name() + " has " + n + " elements, more than an array holds");
        }
        float[] out = new float[(int) n];
        TensorDecoder.decode(tensor.type(), readBytes(tensor), out);
        return out;
    }

    /**
     * {@link #readFloats(GgufTensorInfo)} by name.
     *
     * @param tensorName the exact tensor name, such as {@code token_embd.weight}
     * @return a new array of the tensor's elements, {@code ne0} fastest
     * @throws IllegalArgumentException if the file has no tensor of that name
     * @throws UnsupportedOperationException if the tensor's type cannot be read as floats, or it is too large
     * @throws IOException if reading fails
     */
    public float[] readFloats(String tensorName) throws IOException {
        return readFloats(file.tensor(tensorName)
                .orElseThrow(() -> new IllegalArgumentException("no tensor " + tensorName)));
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }

    private static GgufFile readHeader(FileChannel ch) throws IOException {
        GgufInput in = new GgufInput(ch);
        if (in.remaining() < 4 || in.i32() != MAGIC) {
            throw new GgufFormatException("not a GGUF file (bad magic)");
        }
        int version = in.i32();
        if (version != 2 && version != 3) {
            // v1 used 32-bit counts; a byte-swapped 3 means a big-endian file
            throw new GgufFormatException("unsupported GGUF version " + Integer.toUnsignedString(version));
        }
        long nTensors = in.count(8 + 4 + 4 + 8, "tensor count");
        long nKv = in.count(8 + 1 + 4, "metadata count");

        Map<String, GgufValue> metadata = new LinkedHashMap<>();
        for (long i = 0; i < nKv; i++) {
            String key = in.string();
            if (key.isEmpty()) {
                throw new GgufFormatException("metadata key " + i + " is empty");
            }
            GgufValueType type = valueType(in.i32(), key);
            GgufValue value;
            if (type == GgufValueType.ARRAY) {
                GgufValueType elementType = valueType(in.i32(), key);
                if (elementType == GgufValueType.ARRAY) {
                    throw new GgufFormatException("key " + key + " is an array of arrays");
                }
                long n = in.count(elementType == GgufValueType.STRING ? 8 : elementType.size(), "array length of " + key);
                List<Object> elements = new ArrayList<>((int) Math.min(n, 1 << 20));
                for (long j = 0; j < n; j++) {
                    elements.add(readScalar(in, elementType));
                }
                value = GgufValue.array(elementType, elements);
            } else {
                value = new GgufValue(type, null, readScalar(in, type));
            }
            if (metadata.putIfAbsent(key, value) != null) {
                throw new GgufFormatException("duplicate metadata key " + key);
            }
        }

        int alignment = GgufFile.DEFAULT_ALIGNMENT;
        GgufValue a = metadata.get(GgufFile.ALIGNMENT_KEY);
        if (a != null) {
            if (a.type() != GgufValueType.UINT32) {
                throw new GgufFormatException(GgufFile.ALIGNMENT_KEY + " must be UINT32, not " + a.type());
            }
            long al = a.asLong();
            if (al == 0 || (al & (al - 1)) != 0 || al > 1 << 30) {
                throw new GgufFormatException(GgufFile.ALIGNMENT_KEY + " = " + al + " is not a power of 2");
            }
            alignment = (int) al;
        }

        List<GgufTensorInfo> tensors = new ArrayList<>();
        Set<String> names = new HashSet<>();
        long expectedOffset = 0;
        for (long i = 0; i < nTensors; i++) {
            String name = in.string();
            long nDims = in.u32();
            if (nDims > GgufTensorInfo.MAX_DIMS) {
                throw new GgufFormatException("tensor " + name + " has " + nDims + " dimensions");
            }
            long[] shape = new long[(int) nDims];
            for (int d = 0; d < nDims; d++) {
                shape[d] = in.i64();
            }
            int typeId = in.i32();
            GgmlType type = GgmlType.fromId(typeId)
                    .orElseThrow(() -> new GgufFormatException("tensor " + name + " has unknown ggml type " + typeId));
            long offset = in.i64();
            GgufTensorInfo info;
            try {
                // a scalar is stored with zero dimensions; ggml treats it as one element
                info = new GgufTensorInfo(name, type, shape.length == 0 ? new long[] {1} : shape, offset);
            } catch (IllegalArgumentException | ArithmeticException e) {
                throw new GgufFormatException("bad tensor info: " + e.getMessage());
            }
            if (!names.add(name)) {
                throw new GgufFormatException("duplicate tensor name " + name);
            }
            if (offset != expectedOffset) {
                throw new GgufFormatException("tensor " + name + " has offset " + offset + ", expected " + expectedOffset);
            }
            expectedOffset = offset + padded(info.byteSize(), alignment);
            tensors.add(info);
        }

        long dataOffset = padded(in.position(), alignment);
        if (!tensors.isEmpty()) {
            GgufTensorInfo last = tensors.getLast();
            long end = dataOffset + last.offset() + last.byteSize();
            if (end > ch.size()) {
                throw new GgufFormatException("file is truncated: tensor data ends at " + end + " but the file has " + ch.size() + " bytes");
            }
        }
        return new GgufFile(version, metadata, tensors, alignment, dataOffset);
    }

    private static GgufValueType valueType(int id, String key) throws GgufFormatException {
        return GgufValueType.fromId(id).orElseThrow(() -> new GgufFormatException("key " + key + " has unknown value type " + id));
    }

    private static Object readScalar(GgufInput in, GgufValueType type) throws IOException {
        return switch (type) {
            case UINT8 -> in.u8();
            case INT8 -> in.i8();
            case UINT16 -> in.u16();
            case INT16 -> in.i16();
            case UINT32 -> in.u32();
            case INT32 -> in.i32();
            case UINT64, INT64 -> in.i64();
            case FLOAT32 -> in.f32();
            case FLOAT64 -> in.f64();
            case BOOL -> in.u8() != 0;
            case STRING -> in.string();
            case ARRAY -> throw new IllegalStateException("arrays are read by the caller");
        };
    }

    static long padded(long n, int alignment) {
        return (n + alignment - 1) / alignment * alignment;
    }
}
