package org.flexidepth.gguf;

import java.util.Optional;

/**
 * The types of GGUF metadata values ({@code enum gguf_type} in {@code gguf.h}), with their ids and,
 * for the fixed-size ones, their encoded size.
 */
public enum GgufValueType {
    /** Unsigned 8-bit integer. */
    UINT8(0, 1),
    /** Signed 8-bit integer. */
    INT8(1, 1),
    /** Unsigned 16-bit integer, little-endian. */
    UINT16(2, 2),
    /** Signed 16-bit integer, little-endian. */
    INT16(3, 2),
    /** Unsigned 32-bit integer, little-endian. */
    UINT32(4, 4),
    /** Signed 32-bit integer, little-endian. */
    INT32(5, 4),
    /** 32-bit IEEE 754 float, little-endian. */
    FLOAT32(6, 4),
    /** Boolean stored as one byte: written as 0 or 1, read as true when non-zero. */
    BOOL(7, 1),
    /** A uint64 byte length followed by UTF-8 bytes, no terminator. */
    STRING(8, -1),
    /** A uint32 element type, a uint64 count, then the elements; arrays of arrays are not allowed. */
    ARRAY(9, -1),
    /** Unsigned 64-bit integer, little-endian. */
    UINT64(10, 8),
    /** Signed 64-bit integer, little-endian. */
    INT64(11, 8),
    /** 64-bit IEEE 754 double, little-endian. */
    FLOAT64(12, 8);

    private final int id;
    private final int size;

    GgufValueType(int id, int size) {
        this.id = id;
        this.size = size;
    }

    /** {@return the id stored in the file} */
    public int id() {
        return id;
    }

    /** {@return encoded bytes of one value, or -1 for {@link #STRING} and {@link #ARRAY}} */
    public int size() {
        return size;
    }

    /** {@return whether values of this type are whole numbers} */
    public boolean isInteger() {
        return switch (this) {
            case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 -> true;
            default -> false;
        };
    }

    /**
     * The type with the given id.
     *
     * @param id the {@code gguf_type} id from the file
     * @return the type, or empty if no type has that id
     */
    public static Optional<GgufValueType> fromId(int id) {
        for (GgufValueType t : values()) {
            if (t.id == id) {
                return Optional.of(t);
            }
        }
        return Optional.empty();
    }
}
