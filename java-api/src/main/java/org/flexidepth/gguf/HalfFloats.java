package org.flexidepth.gguf;

/** Conversions between {@code float} and the 16-bit formats that tensors are stored in. */
final class HalfFloats {
    private HalfFloats() {
    }

    static float f16ToFloat(short bits) {
        return Float.float16ToFloat(bits);
    }

    /** Rounds to nearest, ties to even, like ggml's {@code GGML_FP32_TO_FP16}. */
    static short floatToF16(float f) {
        return Float.floatToFloat16(f);
    }

    static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** Rounds to nearest, ties to even, and keeps NaNs NaN, as ggml's {@code ggml_compute_fp32_to_bf16} does. */
    static short floatToBf16(float f) {
        int u = Float.floatToRawIntBits(f);
        if ((u & 0x7FFF_FFFF) > 0x7F80_0000) {
            // truncating could clear every mantissa bit and turn the NaN into an infinity
            return (short) ((u >>> 16) | 64);
        }
        return (short) ((u + (0x7FFF + ((u >>> 16) & 1))) >>> 16);
    }
}
