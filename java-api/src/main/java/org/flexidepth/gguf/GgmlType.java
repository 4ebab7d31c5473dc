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
    F32(0, 1, 4),
    F16(1, 1, 2),
    Q4_0(2, 32, 18),
    Q4_1(3, 32, 20),
    Q5_0(6, 32, 22),
    Q5_1(7, 32, 24),
    Q8_0(8, 32, 34),
    Q8_1(9, 32, 36),
    Q2_K(10, 256, 84),
    Q3_K(11, 256, 110),
    Q4_K(12, 256, 144),
    Q5_K(13, 256, 176),
    Q6_K(14, 256, 210),
    Q8_K(15, 256, 292),
    IQ2_XXS(16, 256, 66),
    IQ2_XS(17, 256, 74),
    IQ3_XXS(18, 256, 98),
    IQ1_S(19, 256, 50),
    IQ4_NL(20, 32, 18),
    IQ3_S(21, 256, 110),
    IQ2_S(22, 256, 82),
    IQ4_XS(23, 256, 136),
    I8(24, 1, 1),
    I16(25, 1, 2),
    I32(26, 1, 4),
    I64(27, 1, 8),
    F64(28, 1, 8),
    IQ1_M(29, 256, 56),
    BF16(30, 1, 2),
    TQ1_0(34, 256, 54),
    TQ2_0(35, 256, 66),
    MXFP4(39, 32, 17),
    NVFP4(40, 64, 36),
    Q1_0(41, 128, 18),
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
     * @throws IllegalArgumentException if {@code elements} is not a whole number of blocks
     */
    public long byteSize(long elements) {
        if (elements < 0 || elements % blockSize != 0) {
            throw new IllegalArgumentException(elements + " elements are not a whole number of " + this
                    + " blocks of " + blockSize);
        }
        return Math.multiplyExact(elements / blockSize, (long) typeSize);
    }

    /** The type with the given GGUF id, if ggml still defines it. */
    public static Optional<GgmlType> fromId(int id) {
        return id >= 0 && id < BY_ID.length ? Optional.ofNullable(BY_ID[id]) : Optional.empty();
    }
}
