package org.flexidepth.gguf;

import java.io.IOException;
import java.util.Objects;

/**
 * Converts a stream of floats to one of the ggml types that can be produced without a search for
 * the best quantisation (F32, F16, BF16, Q8_0, Q4_0) and writes the bytes, as ggml's reference
 * quantisers do.
 */
abstract sealed class TensorEncoder implements TensorData.Sink {
    /** The types {@link #create} accepts. */
    static boolean canEncode(GgmlType type) {
        return switch (type) {
            case F32, F16, BF16, Q8_0, Q4_0 -> true;
            default -> false;
        };
    }

    static TensorEncoder create(GgmlType type, GgufOutput out) {
        return switch (type) {
            case F32 -> new F32(out);
            case F16 -> new F16(out);
            case BF16 -> new BF16(out);
            case Q8_0 -> new Q8_0(out);
            case Q4_0 -> new Q4_0(out);
            default -> throw new IllegalArgumentException("cannot encode floats as " + type
                    + "; supply the bytes with GgufWriter.addRawTensor");
        };
    }

    final GgufOutput out;
    private long count;

    TensorEncoder(GgufOutput out) {
        this.out = out;
    }

    /** Elements accepted so far. */
    long count() {
        return count;
    }

    @Override
    public final void accept(float[] values, int offset, int length) throws IOException {
        Objects.checkFromIndexSize(offset, length, values.length);
        for (int i = offset; i < offset + length; i++) {
            put(values[i]);
        }
        count += length;
    }

    abstract void put(float v) throws IOException;

    /** Called after the last element; the element count is a whole number of blocks by then. */
    void finish() throws IOException {
    }

    private static final class F32 extends TensorEncoder {
        F32(GgufOutput out) {
            super(out);
        }

        @Override
        void put(float v) throws IOException {
            out.f32(v);
        }
    }

    private static final class F16 extends TensorEncoder {
        F16(GgufOutput out) {
            super(out);
        }

        @Override
        void put(float v) throws IOException {
            out.u16(HalfFloats.floatToF16(v));
        }
    }

    private static final class BF16 extends TensorEncoder {
        BF16(GgufOutput out) {
            super(out);
        }

        @Override
        void put(float v) throws IOException {
            out.u16(HalfFloats.floatToBf16(v));
        }
    }

    /** Collects the values of one block at a time for a block quantizer. */
    private abstract static sealed class BlockEncoder extends TensorEncoder {
        private final GgmlType type;
        private final float[] block;
        private int filled;

        BlockEncoder(GgufOutput out, GgmlType type) {
            super(out);
            this.type = type;
            this.block = new float[type.blockSize()];
        }

        @Override
        final void put(float v) throws IOException {
            block[filled++] = v;
            if (filled == block.length) {
                writeBlock(block);
                filled = 0;
            }
        }

        abstract void writeBlock(float[] block) throws IOException;

        @Override
        final void finish() {
            if (filled != 0) {
                throw new IllegalStateException(type + " data ended inside a block");
            }
        }
    }

    /** ggml's {@code quantize_row_q8_0_ref}: per 32 values an fp16 scale {@code amax/127}, then 32 int8. */
    private static final class Q8_0 extends BlockEncoder {
        Q8_0(GgufOutput out) {
            super(out, GgmlType.Q8_0);
        }

        @Override
        void writeBlock(float[] block) throws IOException {
            float amax = 0;
            for (float v : block) {
                amax = Math.max(amax, Math.abs(v));
            }
            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            out.u16(HalfFloats.floatToF16(d));
            for (float v : block) {
                float x = v * id;
                // C's roundf rounds halves away from zero; Math.round alone would round -2.5 to -2
                out.u8((int) Math.copySign(Math.round(Math.abs(x)), x));
            }
        }
    }

    /**
     * ggml's {@code quantize_row_q4_0_ref}: per 32 values an fp16 scale {@code max / -8}, where max is
     * the value of largest magnitude (its sign kept), then 16 bytes: value j in the low nibble of byte
     * j, value j + 16 in its high nibble, each {@code min(15, trunc(x / d + 8.5))}.
     */
    private static final class Q4_0 extends BlockEncoder {
        Q4_0(GgufOutput out) {
            super(out, GgmlType.Q4_0);
        }

        @Override
        void writeBlock(float[] block) throws IOException {
            float amax = 0, max = 0;
            for (float v : block) {
                if (amax < Math.abs(v)) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            float d = max / -8;
            float id = d != 0 ? 1.0f / d : 0.0f;
            out.u16(HalfFloats.floatToF16(d));
            int half = block.length / 2;
            for (int j = 0; j < half; j++) {
                // C's (int8_t) cast truncates toward zero, as Java's (int) does
                int lo = Math.min(15, (int) (block[j] * id + 8.5f));
                int hi = Math.min(15, (int) (block[half + j] * id + 8.5f));
                out.u8(lo | (hi << 4));
            }
        }
    }
}
