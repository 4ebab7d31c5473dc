package org.flexidepth.gguf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Objects;

/**
 * One tensor of a safetensors checkpoint, backed by the memory-mapped file: reading it copies and
 * converts only the part asked for.
 *
 * <p>Shapes are in PyTorch order (last dimension fastest), the reverse of ggml's; see
 * {@link #ggmlShape()}. Valid until the {@link SafetensorsReader} that made it is closed.
 */
public final class SafetensorsTensor {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int CHUNK = 1 << 16;

    private final String name;
    private final SafetensorsDtype dtype;
    private final long[] shape;
    private final MemorySegment data;

    SafetensorsTensor(String name, SafetensorsDtype dtype, long[] shape, MemorySegment data) {
        this.name = name;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.data = data;
    }

    /** The same data under another name. */
    SafetensorsTensor withName(String alias) {
        return new SafetensorsTensor(alias, dtype, shape, data);
    }

    /** {@return the tensor's name in the checkpoint, or the alias it was looked up under} */
    public String name() {
        return name;
    }

    /** {@return the element type stored in the file} */
    public SafetensorsDtype dtype() {
        return dtype;
    }

    /** {@return the shape, PyTorch order ({@code [rows, cols]} for a linear layer's weight)} */
    public long[] shape() {
        return shape.clone();
    }

    /** {@return the shape in ggml order ({@code ne0} first), as GGUF tensor infos want it} */
    public long[] ggmlShape() {
        long[] r = new long[shape.length];
        for (int i = 0; i < shape.length; i++) {
            r[i] = shape[shape.length - 1 - i];
        }
        return r;
    }

    /** {@return the number of dimensions; 0 for a scalar} */
    public int dims() {
        return shape.length;
    }

    /** {@return the number of elements, the product of the shape (1 for a scalar)} */
    public long elementCount() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** {@return the raw little-endian bytes} */
    public MemorySegment bytes() {
        return data;
    }

    /**
     * Copies {@code length} elements starting at flat index {@code first} into {@code dst} as floats.
     *
     * @param first  flat index of the first element to read, in storage (PyTorch, row-major) order
     * @param dst    receives the elements
     * @param offset index in {@code dst} of the first element written
     * @param length number of elements to read, may be 0
     * @throws IndexOutOfBoundsException if either range lies outside {@code dst} or the tensor
     * @throws UnsupportedOperationException for dtypes other than F16, BF16, F32, F64
     */
    public void readFloats(long first, float[] dst, int offset, int length) {
        Objects.checkFromIndexSize(offset, length, dst.length);
        Objects.checkFromIndexSize(first, length, elementCount());
        long byteOffset = first * dtype.size();
        switch (dtype) {
            case F32 -> MemorySegment.copy(data, F32, byteOffset, dst, offset, length);
            case F64 -> {
                for (int i = 0; i < length; i++) {
                    dst[offset + i] = (float) data.get(F64, byteOffset + 8L * i);
                }
            }
            case F16, BF16 -> {
                short[] tmp = new short[Math.min(length, CHUNK)];
                for (int done = 0; done < length; done += tmp.length) {
                    int n = Math.min(tmp.length, length - done);
                    MemorySegment.copy(data, I16, byteOffset + 2L * done, tmp, 0, n);
                    for (int i = 0; i < n; i++) {
                        dst[offset + done + i] = dtype == SafetensorsDtype.F16
                                ? HalfFloats.f16ToFloat(tmp[i]) : HalfFloats.bf16ToFloat(tmp[i]);
                    }
                }
            }
            default -> throw new UnsupportedOperationException("tensor " + name + " is " + dtype + ", not a float type this reader converts");
        }
    }

    /** {@return all elements as floats (at most 2^31 - 9)} */
    public float[] readFloats() {
        long n = elementCount();
        if (n > Integer.MAX_VALUE - 8) {
            throw new UnsupportedOperationException("tensor " + name + " has " + n + " elements; read it in parts");
        }
        float[] out = new float[(int) n];
        readFloats(0, out, 0, out.length);
        return out;
    }

    /** {@return streams the elements, in storage order, to a {@link GgufWriter} in chunks} */
    public TensorData asTensorData() {
        return sink -> {
            long n = elementCount();
            float[] buf = new float[(int) Math.min(n, CHUNK)];
            for (long done = 0; done < n; done += buf.length) {
                int k = (int) Math.min(buf.length, n - done);
                readFloats(done, buf, 0, k);
                sink.accept(buf, 0, k);
            }
        };
    }

    @Override
    public String toString() {
        return name + " " + dtype + " " + Arrays.toString(shape);
    }
}
