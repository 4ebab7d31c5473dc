package org.flexidepth.gguf;

import java.util.Optional;

/** The element types of safetensors files, by the names their headers use. */
public enum SafetensorsDtype {
    BOOL(1), U8(1), I8(1), U16(2), I16(2), U32(4), I32(4), U64(8), I64(8),
    F8_E4M3(1), F8_E5M2(1), F8_E8M0(1), F16(2), BF16(2), F32(4), F64(8);

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

    /** The dtype with the given header name ({@code "BF16"}, ...). */
    public static Optional<SafetensorsDtype> fromName(String name) {
        for (SafetensorsDtype d : values()) {
            if (d.name().equals(name)) {
                return Optional.of(d);
            }
        }
        return Optional.empty();
    }
}
