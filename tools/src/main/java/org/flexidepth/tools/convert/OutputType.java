package org.flexidepth.tools.convert;

import org.flexidepth.gguf.GgmlType;

import java.util.Locale;

/**
 * The {@code --type} choices: how the matrices are stored. Vectors (norms, biases) stay F32
 * whatever the choice, as upstream's converter keeps them, since they are tiny and precision there
 * is cheap.
 *
 * @param matrixType the ggml type of the two-dimensional weights
 * @param fileType   {@code general.file_type}, llama.cpp's {@code llama_ftype}
 */
public enum OutputType {
    F32(GgmlType.F32, 0),
    F16(GgmlType.F16, 1),
    Q8_0(GgmlType.Q8_0, 7),
    BF16(GgmlType.BF16, 32);

    private final GgmlType matrixType;
    private final int fileType;

    OutputType(GgmlType matrixType, int fileType) {
        this.matrixType = matrixType;
        this.fileType = fileType;
    }

    public GgmlType matrixType() {
        return matrixType;
    }

    public int fileType() {
        return fileType;
    }

    /** {@code f32}, {@code f16}, {@code bf16} or {@code q8_0}, any case. */
    public static OutputType parse(String s) {
        try {
            return valueOf(s.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown --type " + s + " (f32, f16, bf16 or q8_0)");
        }
    }

    /**
     * The type for one tensor: F32 for vectors; F16 for a Q8_0 matrix whose rows are not whole
     * blocks, as upstream falls back.
     */
    public GgmlType typeFor(long[] ggmlShape) {
        if (ggmlShape.length < 2) {
            return GgmlType.F32;
        }
        if (ggmlShape[0] % matrixType.blockSize() != 0) {
            return GgmlType.F16;
        }
        return matrixType;
    }
}
