package org.flexidepth.gguf;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Objects;

/**
 * A tensor's entry in a GGUF file's header.
 *
 * @param name   at most 63 UTF-8 bytes, unique in the file
 * @param type   the element type
 * @param shape  the dimensions in ggml order: {@code shape[0]} ({@code ne0}) varies fastest, so a
 *               PyTorch {@code [rows, cols]} matrix is {@code {cols, rows}}; one to four entries
 * @param offset where the data starts, relative to the start of the file's data section
 */
public record GgufTensorInfo(String name, GgmlType type, long[] shape, long offset) {
    /** ggml's {@code GGML_MAX_NAME} is 64 including the terminator. */
    public static final int MAX_NAME_BYTES = 63;
    /** ggml's {@code GGML_MAX_DIMS}. */
    public static final int MAX_DIMS = 4;

    /**
     * Checks the entry and copies {@code shape}.
     *
     * @throws IllegalArgumentException if the name is empty or too long, the shape has no or more than
     *         {@link #MAX_DIMS} dimensions or a negative one, {@code ne0} is not a multiple of the type's
     *         block size, or the offset is negative
     * @throws ArithmeticException if the element count overflows a {@code long}
     */
    public GgufTensorInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(type, "type");
        shape = shape.clone();
        if (name.isEmpty() || name.getBytes(StandardCharsets.UTF_8).length > MAX_NAME_BYTES) {
            throw new IllegalArgumentException("tensor name must be 1 to " + MAX_NAME_BYTES + " bytes: '" + name + "'");
        }
        if (shape.length < 1 || shape.length > MAX_DIMS) {
            throw new IllegalArgumentException("tensor " + name + " has " + shape.length + " dimensions, ggml allows 1 to " + MAX_DIMS);
        }
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("tensor " + name + " has a negative dimension: " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        if (shape[0] % type.blockSize() != 0) {
            throw new IllegalArgumentException("tensor " + name + ": ne0 = " + shape[0] + " is not a multiple of the "
                    + type + " block size " + type.blockSize());
        }
        if (offset < 0) {
            throw new IllegalArgumentException("negative offset for tensor " + name);
        }
    }

    /** {@return a copy of the shape, ggml order} */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /**
     * Dimension {@code i} ({@code ne[i]}); 1 beyond the stored dimensions, as in ggml.
     *
     * @param i the dimension index, 0 for {@code ne0}; not negative
     * @return the dimension's length, or 1 if {@code i >= dims()}
     */
    public long ne(int i) {
        return i < shape.length ? shape[i] : 1;
    }

    /** {@return the number of stored dimensions} */
    public int dims() {
        return shape.length;
    }

    /** {@return the number of elements} */
    public long elementCount() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** {@return the size of the data in bytes, without alignment padding} */
    public long byteSize() {
        return type.byteSize(elementCount());
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GgufTensorInfo t && name.equals(t.name) && type == t.type
                && Arrays.equals(shape, t.shape) && offset == t.offset;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, type, Arrays.hashCode(shape), offset);
    }

    @Override
    public String toString() {
        return name + " " + type + " " + Arrays.toString(shape) + " @" + offset;
    }
}
