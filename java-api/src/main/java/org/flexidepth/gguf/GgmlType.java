package org.flexidepth.gguf;

import java.util.Locale;
import java.util.Optional;

/**
 * The tensor element types of ggml, with the ids that GGUF files store ({@code enum ggml_type} in
 * {@code ggml.h}) and the block layout of each ({@code type_traits} in {@code ggml.c}).
 *
 * <p>Quantised types store elements in blocks: {@link #blockSize()} elements take
 * {@link #typeSize()} bytes. A tensor's first dimension ({@code ne0}) must be a multiple of the block
 * size. Ids that ggml has retired (4, 5, 31 to 33, 36 to 38) have no constant.
 */
public enum GgmlType {
    /** 32-bit IEEE 754 floats. */
    F32(0, 1, 4),
    /** 16-bit IEEE 754 half-precision floats. */
    F16(1, 1, 2),
    /** 4-bit blocks of 32 with one f16 scale ({@code x = d * (q - 8)}); 4.5 bits per weight. */
    Q4_0(2, 32, 18),
    /**
     * 4-bit blocks of 32 with an f16 scale and an f16 minimum ({@code x = d * q + m}); 5 bits per weight.
     */
    Q4_1(3, 32, 20),
    /** 5-bit blocks of 32 with one f16 scale; 5.5 bits per weight. */
    Q5_0(6, 32, 22),
    /** 5-bit blocks of 32 with an f16 scale and an f16 minimum; 6 bits per weight. */
    Q5_1(7, 32, 24),
    /** 8-bit blocks of 32 with one f16 scale; 8.5 bits per weight. */
    Q8_0(8, 32, 34),
    /**
     * 8-bit blocks of 32 with an f16 scale and an f16 scaled sum; ggml's intermediate format for
     * activations.
     */
    Q8_1(9, 32, 36),
    /**
     * 2-bit k-quant: super-blocks of 256 (16 blocks of 16) with 4-bit scales and minimums; 2.625 bits per
     * weight.
     */
    Q2_K(10, 256, 84),
    /** 3-bit k-quant: super-blocks of 256 (16 blocks of 16) with 6-bit scales; 3.4375 bits per weight. */
    Q3_K(11, 256, 110),
    /**
     * 4-bit k-quant: super-blocks of 256 (8 blocks of 32) with 6-bit scales and minimums; 4.5 bits per
     * weight.
     */
    Q4_K(12, 256, 144),
    /**
     * 5-bit k-quant: super-blocks of 256 (8 blocks of 32) with 6-bit scales and minimums; 5.5 bits per
     * weight.
     */
    Q5_K(13, 256, 176),
    /** 6-bit k-quant: super-blocks of 256 (16 blocks of 16) with 8-bit scales; 6.5625 bits per weight. */
    Q6_K(14, 256, 210),
    /**
     * 8-bit super-blocks of 256 with an f32 scale and sums per 16; ggml's intermediate format for k-quant
     * dot products.
     */
    Q8_K(15, 256, 292),
    /**
     * 2-bit importance quant: super-blocks of 256 coded from a lattice codebook with one f16 scale; 2.0625
     * bits per weight.
     */
    IQ2_XXS(16, 256, 66),
    /** 2-bit importance quant with 4-bit scales per block of 16; 2.3125 bits per weight. */
    IQ2_XS(17, 256, 74),
    /**
     * 3-bit importance quant: super-blocks of 256 coded from a codebook with one f16 scale; 3.0625 bits per
     * weight.
     */
    IQ3_XXS(18, 256, 98),
    /** 1-bit importance quant: super-blocks of 256 with one f16 scale; 1.5625 bits per weight. */
    IQ1_S(19, 256, 50),
    /**
     * 4-bit non-linear blocks of 32 (indices into a fixed table of 16 levels) with one f16 scale; 4.5 bits
     * per weight.
     */
    IQ4_NL(20, 32, 18),
    /** 3-bit importance quant with separate sign bits and 4-bit scales; 3.4375 bits per weight. */
    IQ3_S(21, 256, 110),
    /** 2-bit importance quant with 4-bit scales per block of 16; 2.5625 bits per weight. */
    IQ2_S(22, 256, 82),
    /** 4-bit non-linear super-blocks of 256 with 6-bit scales per block of 32; 4.25 bits per weight. */
    IQ4_XS(23, 256, 136),
    /** 8-bit signed integers. */
    I8(24, 1, 1),
    /** 16-bit signed integers. */
    I16(25, 1, 2),
    /** 32-bit signed integers. */
    I32(26, 1, 4),
    /** 64-bit signed integers. */
    I64(27, 1, 8),
    /** 64-bit IEEE 754 doubles. */
    F64(28, 1, 8),
    /**
     * 1-bit importance quant with 3-bit scales per block of 16 and the f16 super-block scale packed into
     * their spare bits; 1.75 bits per weight.
     */
    IQ1_M(29, 256, 56),
    /** bfloat16: the upper 16 bits of an f32 (8-bit exponent, 7-bit mantissa). */
    BF16(30, 1, 2),
    /**
     * Ternary ({@code -1, 0, +1}) super-blocks of 256, five values per byte, with one f16 scale; 1.6875
     * bits per weight.
     */
    TQ1_0(34, 256, 54),
    /**
     * Ternary ({@code -1, 0, +1}) super-blocks of 256, 2 bits per value, with one f16 scale; 2.0625 bits
     * per weight.
     */
    TQ2_0(35, 256, 66),
    /** OCP microscaling FP4: blocks of 32 E2M1 values with one shared E8M0 scale; 4.25 bits per weight. */
    MXFP4(39, 32, 17),
    /** NVIDIA FP4: blocks of 64 E2M1 values with one UE4M3 scale per 16; 4.5 bits per weight. */
    NVFP4(40, 64, 36),
    /**
     * 1-bit blocks of 128 with one f16 scale (each value is {@code +d} or {@code -d}); 1.125 bits per
     * weight.
     */
    Q1_0(41, 128, 18),
    /**
     * 2-bit blocks of 64 with one f16 scale ({@code x = d * (q - 1)}, so -1 to +2); 2.25 bits per weight.
     */
    Q2_0(42, 64, 18);

    private static final GgmlType[] BY_ID = new GgmlType[64];

    static {
        for (GgmlType t : values()) {
            BY_ID[t.id] = t;
        }
    }

    private final int id;
    private final int blockSize;
    private final int typeSize;

    GgmlType(int id, int blockSize, int typeSize) {
        this.id = id;
        this.blockSize = blockSize;
        this.typeSize = typeSize;
    }

    /** {@return the id stored in GGUF tensor infos} */
    public int id() {
        return id;
    }

    /** {@return elements per block (1 for the plain types)} */
    public int blockSize() {
        return blockSize;
    }

    /** {@return bytes per block} */
    public int typeSize() {
        return typeSize;
    }

    /** {@return whether elements are stored in blocks with shared scales rather than one by one} */
    public boolean isQuantized() {
        return blockSize > 1;
    }

    /** {@return the lower-case name ggml prints ({@code q8_0}, {@code bf16}, ...)} */
    public String ggmlName() {
        String n = name().toLowerCase(Locale.ROOT);
        // ggml spells the k-quants with a capital K
        return n.endsWith("_k") ? n.substring(0, n.length() - 1) + "K" : n;
    }

    /**
     * The number of bytes that {@code elements} elements take.
     *
     * @param elements number of elements, a non-negative multiple of {@link #blockSize()}
     * @return the size in bytes: {@code elements / blockSize() * typeSize()}
     * @throws ArithmeticException if the size overflows a {@code long}
     * @throws IllegalArgumentException if {@code elements} is not a whole number of blocks
     */
    public long byteSize(long elements) {
        if (elements < 0 || elements % blockSize != 0) {
            throw new IllegalArgumentException(elements + " elements are not a whole number of " + this
                    + " blocks of " + blockSize);
        }
        return Math.multiplyExact(elements / blockSize, (long) typeSize);
    }

    /**
     * The type with the given GGUF id, if ggml still defines it.
     *
     * @param id the {@code ggml_type} id from a tensor info
     * @return the type, or empty for a retired, unknown or negative id
     */
    public static Optional<GgmlType> fromId(int id) {
        return id >= 0 && id < BY_ID.length ? Optional.ofNullable(BY_ID[id]) : Optional.empty();
    }
}
