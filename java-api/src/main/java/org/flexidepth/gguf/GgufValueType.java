package org.flexidepth.gguf;

import java.util.Optional;

/**
 * The types of GGUF metadata values ({@code enum gguf_type} in {@code gguf.h}), with their ids and,
 * for the fixed-size ones, their encoded size.
 */
public enum GgufValueType {
    UINT8(0, 1),
    INT8(1, 1),
    UINT16(2, 2),
    INT16(3, 2),
    UINT32(4, 4),
    INT32(5, 4),
    FLOAT32(6, 4),
    BOOL(7, 1),
    /** A uint64 byte length followed by UTF-8 bytes, no terminator. */
    STRING(8, -1),
    /** A uint32 element type, a uint64 count, then the elements; arrays of arrays are not allowed. */
    ARRAY(9, -1),
    UINT64(10, 8),
    INT64(11, 8),
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

    /** The type with the given id. */
    public static Optional<GgufValueType> fromId(int id) {
        for (GgufValueType t : values()) {
            if (t.id == id) {
                return Optional.of(t);
            }
        }
        return Optional.empty();
    }
}
