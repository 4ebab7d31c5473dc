package org.flexidepth.gguf;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Converts tensor bytes of the float, integer, Q8_0 and Q4_0 types back to floats. */
final class TensorDecoder {
    private TensorDecoder() {
    }

    static boolean canDecode(GgmlType type) {
        return switch (type) {
            case F32, F16, BF16, Q8_0, Q4_0, F64, I8, I16, I32 -> true;
            default -> false;
        };
    }

    /** Decodes all of {@code src} (little-endian, from its position) into {@code dst}. */
    static void decode(GgmlType type, ByteBuffer src, float[] dst) {
        ByteBuffer b = src.slice().order(ByteOrder.LITTLE_ENDIAN);
        switch (type) {
            case F32 -> b.asFloatBuffer().get(dst);
            case F64 -> {
                for (int i = 0; i < dst.length; i++) {
                    dst[i] = (float) b.getDouble(i * 8);
                }
            }
            case F16 -> {
                for (int i = 0; i < dst.length; i++) {
                    dst[i] = HalfFloats.f16ToFloat(b.getShort(i * 2));
                }
            }
            case BF16 -> {
                for (int i = 0; i < dst.length; i++) {
                    dst[i] = HalfFloats.bf16ToFloat(b.getShort(i * 2));
                }
            }
            case I8 -> {
                for (int i = 0; i < dst.length; i++) {
                    dst[i] = b.get(i);
                }
            }
            case I16 -> {
                for (int i = 0; i < dst.length; i++) {
                    dst[i] = b.getShort(i * 2);
                }
            }
            case I32 -> {
                for (int i = 0; i < dst.length; i++) {
                    dst[i] = b.getInt(i * 4);
                }
            }
            case Q8_0 -> {
                int qk = GgmlType.Q8_0.blockSize();
                int blockBytes = GgmlType.Q8_0.typeSize();
                for (int blk = 0; blk < dst.length / qk; blk++) {
                    int base = blk * blockBytes;
                    float d = HalfFloats.f16ToFloat(b.getShort(base));
                    for (int j = 0; j < qk; j++) {
                        dst[blk * qk + j] = d * b.get(base + 2 + j);
                    }
                }
            }
            case Q4_0 -> {
                int qk = GgmlType.Q4_0.blockSize();
                int blockBytes = GgmlType.Q4_0.typeSize();
                for (int blk = 0; blk < dst.length / qk; blk++) {
                    int base = blk * blockBytes;
                    float d = HalfFloats.f16ToFloat(b.getShort(base));
                    for (int j = 0; j < qk / 2; j++) {
                        int q = b.get(base + 2 + j) & 0xFF;
                        dst[blk * qk + j] = ((q & 0x0F) - 8) * d;
                        dst[blk * qk + qk / 2 + j] = ((q >> 4) - 8) * d;
                    }
                }
            }
            default -> throw new UnsupportedOperationException("reading " + type + " tensors as floats is not supported");
        }
    }
}
