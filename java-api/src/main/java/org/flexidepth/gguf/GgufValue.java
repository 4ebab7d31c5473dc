package org.flexidepth.gguf;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * One typed GGUF metadata value.
 *
 * <p>Java representation of {@link #value()} by {@link #type()}: {@code UINT8}, {@code INT8},
 * {@code UINT16}, {@code INT16}, {@code INT32}: {@link Integer}; {@code UINT32}, {@code INT64},
 * {@code UINT64}: {@link Long} ({@code UINT64} holds the raw 64 bits, so values above
 * {@link Long#MAX_VALUE} read as negative); {@code FLOAT32}: {@link Float}; {@code FLOAT64}:
 * {@link Double}; {@code BOOL}: {@link Boolean}; {@code STRING}: {@link String}; {@code ARRAY}: an
 * unmodifiable {@link List} of values of {@link #elementType()}, each represented as above.
 *
 * <p>Use the factory methods; the canonical constructor checks ranges and representations.
 *
 * @param type        the value's type
 * @param elementType the element type of an {@code ARRAY}, otherwise {@code null}
 * @param value       the value, never {@code null}
 */
public record GgufValue(GgufValueType type, GgufValueType elementType, Object value) {

    /**
     * Checks that {@code value} is represented as the class comment describes and fits {@code type}'s
     * range; an array's list is copied into an unmodifiable one.
     *
     * @throws IllegalArgumentException if the value has the wrong representation or is out of range, or
     *         if {@code elementType} is set for a non-array or is {@code ARRAY}
     * @throws NullPointerException if {@code type}, {@code value}, an array's element type or any element
     *         is {@code null}
     */
    public GgufValue {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(value, "value");
        if (type == GgufValueType.ARRAY) {
            Objects.requireNonNull(elementType, "elementType of an array");
            if (elementType == GgufValueType.ARRAY) {
                throw new IllegalArgumentException("GGUF does not allow arrays of arrays");
            }
            if (!(value instanceof List<?> list)) {
                throw new IllegalArgumentException("an ARRAY value must be a List, not " + value.getClass().getName());
            }
            List<Object> copy = new ArrayList<>(list.size());
            for (Object element : list) {
                copy.add(checkScalar(elementType, element));
            }
            value = Collections.unmodifiableList(copy);
        } else {
            if (elementType != null) {
                throw new IllegalArgumentException("only arrays have an element type");
            }
            value = checkScalar(type, value);
        }
    }

    private static Object checkScalar(GgufValueType type, Object v) {
        Objects.requireNonNull(v, "GGUF values cannot be null");
        return switch (type) {
            case UINT8 -> intInRange(type, v, 0, 0xFF);
            case INT8 -> intInRange(type, v, Byte.MIN_VALUE, Byte.MAX_VALUE);
            case UINT16 -> intInRange(type, v, 0, 0xFFFF);
            case INT16 -> intInRange(type, v, Short.MIN_VALUE, Short.MAX_VALUE);
            case INT32 -> intInRange(type, v, Integer.MIN_VALUE, Integer.MAX_VALUE);
            case UINT32 -> {
                long l = wholeNumber(type, v);
                if (l < 0 || l > 0xFFFF_FFFFL) {
                    throw new IllegalArgumentException(l + " is out of range for UINT32");
                }
                yield l;
            }
            case UINT64, INT64 -> wholeNumber(type, v);
            case FLOAT32 -> {
                if (!(v instanceof Float f)) {
                    throw mismatch(type, v);
                }
                yield f;
            }
            case FLOAT64 -> {
                if (!(v instanceof Double d)) {
                    throw mismatch(type, v);
                }
                yield d;
            }
            case BOOL -> {
                if (!(v instanceof Boolean b)) {
                    throw mismatch(type, v);
                }
                yield b;
            }
            case STRING -> {
                if (!(v instanceof String s)) {
                    throw mismatch(type, v);
                }
                yield s;
            }
            case ARRAY -> throw new IllegalArgumentException("GGUF does not allow arrays of arrays");
        };
    }

    private static long wholeNumber(GgufValueType type, Object v) {
        if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte) {
            return ((Number) v).longValue();
        }
        throw mismatch(type, v);
    }

    private static int intInRange(GgufValueType type, Object v, long min, long max) {
        long l = wholeNumber(type, v);
        if (l < min || l > max) {
            throw new IllegalArgumentException(l + " is out of range for " + type);
        }
        return (int) l;
    }

    private static IllegalArgumentException mismatch(GgufValueType type, Object v) {
        return new IllegalArgumentException("a " + type + " value cannot be a " + v.getClass().getSimpleName());
    }

    // ---- factories ----

    /**
     * A {@code UINT8} value.
     *
     * @param v the value, 0 to 255
     * @return the value
     * @throws IllegalArgumentException if {@code v} is out of range
     */
    public static GgufValue uint8(int v) {
        return new GgufValue(GgufValueType.UINT8, null, v);
    }

    /**
     * An {@code INT8} value.
     *
     * @param v the value, -128 to 127
     * @return the value
     * @throws IllegalArgumentException if {@code v} is out of range
     */
    public static GgufValue int8(int v) {
        return new GgufValue(GgufValueType.INT8, null, v);
    }

    /**
     * A {@code UINT16} value.
     *
     * @param v the value, 0 to 65535
     * @return the value
     * @throws IllegalArgumentException if {@code v} is out of range
     */
    public static GgufValue uint16(int v) {
        return new GgufValue(GgufValueType.UINT16, null, v);
    }

    /**
     * An {@code INT16} value.
     *
     * @param v the value, -32768 to 32767
     * @return the value
     * @throws IllegalArgumentException if {@code v} is out of range
     */
    public static GgufValue int16(int v) {
        return new GgufValue(GgufValueType.INT16, null, v);
    }

    /**
     * A {@code UINT32} value.
     *
     * @param v the value, 0 to 2<sup>32</sup>-1
     * @return the value
     * @throws IllegalArgumentException if {@code v} is out of range
     */
    public static GgufValue uint32(long v) {
        return new GgufValue(GgufValueType.UINT32, null, v);
    }

    /**
     * An {@code INT32} value.
     *
     * @param v the value
     * @return the value
     */
    public static GgufValue int32(int v) {
        return new GgufValue(GgufValueType.INT32, null, v);
    }

    /**
     * A {@code UINT64} value; {@code v} is taken as the raw 64 bits of the unsigned value.
     *
     * @param v the value's bits; negative numbers stand for values above {@link Long#MAX_VALUE}
     * @return the value
     */
    public static GgufValue uint64(long v) {
        return new GgufValue(GgufValueType.UINT64, null, v);
    }

    /**
     * An {@code INT64} value.
     *
     * @param v the value
     * @return the value
     */
    public static GgufValue int64(long v) {
        return new GgufValue(GgufValueType.INT64, null, v);
    }

    /**
     * A {@code FLOAT32} value.
     *
     * @param v the value; NaN and infinities are stored as they are
     * @return the value
     */
    public static GgufValue float32(float v) {
        return new GgufValue(GgufValueType.FLOAT32, null, v);
    }

    /**
     * A {@code FLOAT64} value.
     *
     * @param v the value; NaN and infinities are stored as they are
     * @return the value
     */
    public static GgufValue float64(double v) {
        return new GgufValue(GgufValueType.FLOAT64, null, v);
    }

    /**
     * A {@code BOOL} value.
     *
     * @param v the value
     * @return the value
     */
    public static GgufValue bool(boolean v) {
        return new GgufValue(GgufValueType.BOOL, null, v);
    }

    /**
     * A {@code STRING} value, written as UTF-8.
     *
     * @param v the value, not {@code null}
     * @return the value
     */
    public static GgufValue string(String v) {
        return new GgufValue(GgufValueType.STRING, null, v);
    }

    /**
     * An array whose elements are represented as described in the class comment.
     *
     * @param elementType the type of every element; not {@code ARRAY}
     * @param elements    the elements, copied; may be empty
     * @return the value
     * @throws IllegalArgumentException if an element does not fit {@code elementType}
     */
    public static GgufValue array(GgufValueType elementType, List<?> elements) {
        return new GgufValue(GgufValueType.ARRAY, elementType, elements);
    }

    /**
     * An array of {@code STRING}s, such as a tokenizer's vocabulary.
     *
     * @param elements the strings, copied; none may be {@code null}
     * @return the value
     */
    public static GgufValue stringArray(List<String> elements) {
        return array(GgufValueType.STRING, elements);
    }

    /**
     * An array of {@code INT32}s.
     *
     * @param elements the elements, copied
     * @return the value
     */
    public static GgufValue int32Array(int... elements) {
        List<Integer> list = new ArrayList<>(elements.length);
        for (int e : elements) {
            list.add(e);
        }
        return array(GgufValueType.INT32, list);
    }

    /**
     * An array of {@code FLOAT32}s.
     *
     * @param elements the elements, copied
     * @return the value
     */
    public static GgufValue float32Array(float... elements) {
        List<Float> list = new ArrayList<>(elements.length);
        for (float e : elements) {
            list.add(e);
        }
        return array(GgufValueType.FLOAT32, list);
    }

    // ---- accessors ----

    /** {@return whether this is an array} */
    public boolean isArray() {
        return type == GgufValueType.ARRAY;
    }

    /** {@return a {@code STRING} value} */
    public String asString() {
        return (String) expect(GgufValueType.STRING);
    }

    /** {@return a {@code BOOL} value} */
    public boolean asBoolean() {
        return (Boolean) expect(GgufValueType.BOOL);
    }

    /** {@return any integer value, widened ({@code UINT64} as its raw bits)} */
    public long asLong() {
        if (!type.isInteger()) {
            throw new IllegalStateException("not an integer but " + type);
        }
        return ((Number) value).longValue();
    }

    /** {@return any integer value that fits an {@code int}} */
    public int asInt() {
        return Math.toIntExact(asLong());
    }

    /** {@return any numeric value, integer or floating point} */
    public double asDouble() {
        if (!(value instanceof Number n) || type == GgufValueType.ARRAY) {
            throw new IllegalStateException("not a number but " + type);
        }
        return n.doubleValue();
    }

    /** {@return an array's elements} */
    public List<?> asList() {
        return (List<?>) expect(GgufValueType.ARRAY);
    }

    /** {@return a {@code STRING} array's elements} */
    @SuppressWarnings("unchecked")
    public List<String> asStringList() {
        expectArrayOf(GgufValueType.STRING);
        return (List<String>) value;
    }

    /** {@return a numeric array's elements as floats} */
    public float[] asFloatArray() {
        List<?> list = asList();
        if (!elementType.isInteger() && elementType != GgufValueType.FLOAT32 && elementType != GgufValueType.FLOAT64) {
            throw new IllegalStateException("not a numeric array but an array of " + elementType);
        }
        float[] out = new float[list.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ((Number) list.get(i)).floatValue();
        }
        return out;
    }

    /** {@return an integer array's elements, each of which must fit an {@code int}} */
    public int[] asIntArray() {
        List<?> list = asList();
        if (!elementType.isInteger()) {
            throw new IllegalStateException("not an integer array but an array of " + elementType);
        }
        int[] out = new int[list.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = Math.toIntExact(((Number) list.get(i)).longValue());
        }
        return out;
    }

    private Object expect(GgufValueType t) {
        if (type != t) {
            throw new IllegalStateException("expected " + t + " but the value is " + type);
        }
        return value;
    }

    private void expectArrayOf(GgufValueType t) {
        expect(GgufValueType.ARRAY);
        if (elementType != t) {
            throw new IllegalStateException("expected an array of " + t + " but it holds " + elementType);
        }
    }

    /** {@return abbreviates long arrays, which vocabularies make common} */
    @Override
    public String toString() {
        if (type != GgufValueType.ARRAY) {
            return type + ":" + (value instanceof String s ? '"' + s + '"' : value);
        }
        List<?> list = (List<?>) value;
        String head = list.size() <= 8 ? list.toString() : list.subList(0, 8).toString().replaceFirst("]$", ", ...]");
        return "ARRAY<" + elementType + ">[" + list.size() + "]" + head;
    }
}
