package org.flexidepth.gguf;

import java.util.Optional;

/** The element types of safetensors files, by the names their headers use. */
public enum SafetensorsDtype {
    /** Boolean, one byte per element. */
    BOOL(1),
    /** Unsigned 8-bit integer. */
    U8(1),
    /** Signed 8-bit integer. */
    I8(1),
    /** Unsigned 16-bit integer. */
    U16(2),
    /** Signed 16-bit integer. */
    I16(2),
    /** Unsigned 32-bit integer. */
    U32(4),
    /** Signed 32-bit integer. */
    I32(4),
    /** Unsigned 64-bit integer. */
    U64(8),
    /** Signed 64-bit integer. */
    I64(8),
    /** 8-bit float with 4 exponent and 3 mantissa bits. */
    F8_E4M3(1),
    /** 8-bit float with 5 exponent and 2 mantissa bits. */
    F8_E5M2(1),
    /** 8-bit exponent-only scale (a power of two), as used by microscaling formats. */
    F8_E8M0(1),
    /** 16-bit IEEE 754 half-precision float. */
    F16(2),
    /** bfloat16: the upper 16 bits of an f32. */
    BF16(2),
    /** 32-bit IEEE 754 float. */
    F32(4),
    /** 64-bit IEEE 754 double. */
    F64(8);

    private final int size;

    SafetensorsDtype(int size) {
        this.size = size;
    }

    /** {@return bytes per element} */
    public int size() {
        return size;
    }

    /** {@return whether {@link SafetensorsTensor#readFloats} converts this type} */
    public boolean isReadableAsFloat() {
        return this == F16 || this == BF16 || this == F32 || this == F64;
    }

    /**
     * The dtype with the given header name ({@code "BF16"}, ...).
     *
     * @param name the {@code dtype} string of a header entry; case-sensitive
     * @return the dtype, or empty if the name is not one of these constants
     */
    public static Optional<SafetensorsDtype> fromName(String name) {
        for (SafetensorsDtype d : values()) {
            if (d.name().equals(name)) {
                return Optional.of(d);
            }
        }
        return Optional.empty();
    }
}
