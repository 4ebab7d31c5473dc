package org.flexidepth.gguf;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GgufRoundTripTest {
    @TempDir
    Path dir;

    private static float[] randomFloats(int n, long seed, float scale) {
        Random r = new Random(seed);
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = (float) (r.nextGaussian() * scale);
        }
        return f;
    }

    @Test
    void metadataOfEveryTypeSurvives() throws IOException {
        Path file = dir.resolve("meta.gguf");
        new GgufWriter()
                .putUInt8("t.u8", 255)
                .putInt8("t.i8", -128)
                .putUInt16("t.u16", 65535)
                .putInt16("t.i16", -32768)
                .putUInt32("t.u32", 0xFFFF_FFFFL)
                .putInt32("t.i32", Integer.MIN_VALUE)
                .putUInt64("t.u64", -1L)
                .putInt64("t.i64", Long.MIN_VALUE)
                .putFloat32("t.f32", 1.5e-6f)
                .putFloat64("t.f64", Math.PI)
                .putBool("t.bool", true)
                .putBool("t.false", false)
                .putString("t.str", "héllo ▁wörld 😀")
                .putString("t.empty", "")
                .putStringArray("t.astr", List.of("<unk>", "▁a", "", "\n"))
                .putInt32Array("t.ai32", 1, -2, 3)
                .putFloat32Array("t.af32", 0.5f, -1e9f, Float.NaN)
                .putArray("t.au8", GgufValueType.UINT8, List.of(0, 255))
                .putArray("t.ai8", GgufValueType.INT8, List.of(-1, 127))
                .putArray("t.au16", GgufValueType.UINT16, List.of(7))
                .putArray("t.ai16", GgufValueType.INT16, List.of(-7))
                .putArray("t.au32", GgufValueType.UINT32, List.of(4_000_000_000L))
                .putArray("t.au64", GgufValueType.UINT64, List.of(1L, -1L))
                .putArray("t.ai64", GgufValueType.INT64, List.of(Long.MAX_VALUE))
                .putArray("t.af64", GgufValueType.FLOAT64, List.of(2.5))
                .putArray("t.abool", GgufValueType.BOOL, List.of(true, false))
                .putArray("t.aempty", GgufValueType.INT32, List.of())
                .write(file);

        GgufFile f = GgufReader.readHeader(file);
        assertEquals(3, f.version());
        assertEquals(32, f.alignment());
        assertTrue(f.tensors().isEmpty());
        Map<String, GgufValue> m = f.metadata();
        assertEquals(List.of("t.u8", "t.i8", "t.u16", "t.i16", "t.u32", "t.i32", "t.u64", "t.i64", "t.f32", "t.f64",
                "t.bool", "t.false", "t.str", "t.empty", "t.astr", "t.ai32", "t.af32", "t.au8", "t.ai8", "t.au16",
                "t.ai16", "t.au32", "t.au64", "t.ai64", "t.af64", "t.abool", "t.aempty"), new ArrayList<>(m.keySet()),
                "keys keep their order");

        assertEquals(GgufValue.uint8(255), m.get("t.u8"));
        assertEquals(GgufValue.int8(-128), m.get("t.i8"));
        assertEquals(GgufValue.uint16(65535), m.get("t.u16"));
        assertEquals(GgufValue.int16(-32768), m.get("t.i16"));
        assertEquals(0xFFFF_FFFFL, m.get("t.u32").asLong());
        assertEquals(GgufValueType.UINT32, m.get("t.u32").type());
        assertEquals(Integer.MIN_VALUE, m.get("t.i32").asInt());
        assertEquals(-1L, m.get("t.u64").asLong());
        assertEquals(GgufValueType.UINT64, m.get("t.u64").type());
        assertEquals(Long.MIN_VALUE, m.get("t.i64").asLong());
        assertEquals(1.5e-6f, (Float) m.get("t.f32").value());
        assertEquals(Math.PI, m.get("t.f64").asDouble());
        assertTrue(m.get("t.bool").asBoolean());
        assertFalse(m.get("t.false").asBoolean());
        assertEquals("héllo ▁wörld 😀", m.get("t.str").asString());
        assertEquals("", m.get("t.empty").asString());
        assertEquals(List.of("<unk>", "▁a", "", "\n"), m.get("t.astr").asStringList());
        assertArrayEquals(new int[] {1, -2, 3}, m.get("t.ai32").asIntArray());
        float[] af = m.get("t.af32").asFloatArray();
        assertEquals(0.5f, af[0]);
        assertEquals(-1e9f, af[1]);
        assertTrue(Float.isNaN(af[2]));
        assertEquals(GgufValue.array(GgufValueType.UINT8, List.of(0, 255)), m.get("t.au8"));
        assertEquals(GgufValue.array(GgufValueType.INT8, List.of(-1, 127)), m.get("t.ai8"));
        assertEquals(GgufValue.array(GgufValueType.UINT16, List.of(7)), m.get("t.au16"));
        assertEquals(GgufValue.array(GgufValueType.INT16, List.of(-7)), m.get("t.ai16"));
        assertEquals(GgufValue.array(GgufValueType.UINT32, List.of(4_000_000_000L)), m.get("t.au32"));
        assertEquals(GgufValue.array(GgufValueType.UINT64, List.of(1L, -1L)), m.get("t.au64"));
        assertEquals(GgufValue.array(GgufValueType.INT64, List.of(Long.MAX_VALUE)), m.get("t.ai64"));
        assertEquals(GgufValue.array(GgufValueType.FLOAT64, List.of(2.5)), m.get("t.af64"));
        assertEquals(GgufValue.array(GgufValueType.BOOL, List.of(true, false)), m.get("t.abool"));
        assertEquals(0, m.get("t.aempty").asList().size());
        assertEquals(GgufValueType.INT32, m.get("t.aempty").elementType());
    }

    @Test
    void headersLargerThanTheReadBufferSurvive() throws IOException {
        List<String> vocab = new ArrayList<>();
        for (int i = 0; i < 50_000; i++) {
            vocab.add("tok" + i + "▁");
        }
        String big = "x".repeat(200_000) + "é";
        float[] scores = new float[vocab.size()];
        for (int i = 0; i < scores.length; i++) {
            scores[i] = -i;
        }
        Path file = dir.resolve("big.gguf");
        new GgufWriter().putStringArray("tokens", vocab).putString("big", big).putFloat32Array("scores", scores)
                .addTensor("t", GgmlType.F32, new long[] {3}, TensorData.of(new float[] {1, 2, 3}))
                .write(file);
        try (GgufReader r = GgufReader.open(file)) {
            assertEquals(vocab, r.file().require("tokens").asStringList());
            assertEquals(big, r.file().require("big").asString());
            assertArrayEquals(scores, r.file().require("scores").asFloatArray());
            assertArrayEquals(new float[] {1, 2, 3}, r.readFloats("t"));
        }
    }

    @Test
    void headerBytesFollowTheSpec() throws IOException {
        Path file = dir.resolve("bytes.gguf");
        new GgufWriter().putUInt32("a", 7).addTensor("t", GgmlType.F32, new long[] {2}, TensorData.of(new float[] {1, 2})).write(file);
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals('G', b.get(0));
        assertEquals('F', b.get(3));
        assertEquals(3, b.getInt(4), "version");
        assertEquals(1, b.getLong(8), "tensor count comes before the key count");
        assertEquals(1, b.getLong(16));
        assertEquals(1, b.getLong(24), "key length");
        assertEquals('a', b.get(32));
        assertEquals(GgufValueType.UINT32.id(), b.getInt(33));
        assertEquals(7, b.getInt(37));
        // tensor info: name, n_dims, ne, type, offset; then padding to 32
        assertEquals(1, b.getLong(41));
        assertEquals('t', b.get(49));
        assertEquals(1, b.getInt(50));
        assertEquals(2, b.getLong(54));
        assertEquals(0, b.getInt(62));
        assertEquals(0, b.getLong(66));
        assertEquals(96 + 32, b.capacity(), "74 header bytes padded to 96, then 8 data bytes padded to 32");
    }

    @Test
    void tensorsRoundTripWithinQuantisationTolerance() throws IOException {
        Path file = dir.resolve("tensors.gguf");
        float[] f32 = randomFloats(3 * 5, 1, 1f);
        float[] f16 = randomFloats(64 * 3, 2, 2f);
        float[] bf16 = randomFloats(8 * 2 * 2, 3, 3f);
        float[] q8 = randomFloats(64 * 4, 4, 0.05f);
        byte[] raw = new byte[GgmlType.Q4_K.typeSize()];
        new Random(5).nextBytes(raw);

        GgufWriter w = new GgufWriter()
                .alignment(64)
                .putString("general.architecture", "test")
                .addTensor("f32", GgmlType.F32, new long[] {5, 3}, TensorData.of(f32))
                .addTensor("f16", GgmlType.F16, new long[] {64, 3}, TensorData.of(f16))
                .addTensor("bf16.3d", GgmlType.BF16, new long[] {8, 2, 2}, TensorData.of(bf16))
                // delivered in odd-sized chunks to exercise block assembly across calls
                .addTensor("q8_0", GgmlType.Q8_0, new long[] {64, 4}, sink -> {
                    for (int i = 0; i < q8.length; i += 7) {
                        sink.accept(q8, i, Math.min(7, q8.length - i));
                    }
                })
                .addRawTensor("q4_k.raw", GgmlType.Q4_K, new long[] {256}, ch -> ch.write(ByteBuffer.wrap(raw)));
        w.write(file);

        try (GgufReader r = GgufReader.open(file)) {
            GgufFile f = r.file();
            assertEquals(64, f.alignment());
            assertEquals(0, f.dataOffset() % 64, "data section is aligned");
            assertEquals(w.tensorInfos(), f.tensors());
            for (GgufTensorInfo t : f.tensors()) {
                assertEquals(0, t.offset() % 64, t.name() + " is aligned");
            }
            GgufTensorInfo last = f.tensors().getLast();
            assertEquals(f.dataOffset() + last.offset() + GgufReader.padded(last.byteSize(), 64), Files.size(file),
                    "the last tensor is padded too, as ggml writes it");

            assertEquals("test", f.architecture().orElseThrow());
            assertArrayEquals(new long[] {5, 3}, f.tensor("f32").orElseThrow().shape());
            assertArrayEquals(f32, r.readFloats("f32"));

            float[] h = r.readFloats("f16");
            for (int i = 0; i < h.length; i++) {
                assertEquals(f16[i], h[i], Math.abs(f16[i]) / 1024 + 1e-7f, "f16[" + i + "]");
            }
            float[] b = r.readFloats("bf16.3d");
            assertArrayEquals(new long[] {8, 2, 2}, f.tensor("bf16.3d").orElseThrow().shape());
            for (int i = 0; i < b.length; i++) {
                assertEquals(bf16[i], b[i], Math.abs(bf16[i]) / 128, "bf16[" + i + "]");
            }
            GgufTensorInfo q8Info = f.tensor("q8_0").orElseThrow();
            assertEquals(GgmlType.Q8_0, q8Info.type());
            assertEquals(8 * 34, q8Info.byteSize());
            float[] q = r.readFloats(q8Info);
            for (int blk = 0; blk < q8.length / 32; blk++) {
                float amax = 0;
                for (int j = 0; j < 32; j++) {
                    amax = Math.max(amax, Math.abs(q8[blk * 32 + j]));
                }
                float tol = 0.6f * amax / 127; // half a step, plus the fp16 rounding of the scale
                for (int j = 0; j < 32; j++) {
                    int i = blk * 32 + j;
                    assertEquals(q8[i], q[i], tol, "q8_0[" + i + "]");
                }
            }
            ByteBuffer rawBack = r.readBytes(f.tensor("q4_k.raw").orElseThrow());
            byte[] rb = new byte[rawBack.remaining()];
            rawBack.get(rb);
            assertArrayEquals(raw, rb);
            assertThrows(UnsupportedOperationException.class, () -> r.readFloats("q4_k.raw"));
        }
    }

    @Test
    void q4_0MatchesGgmlReferenceRounding() throws IOException {
        float[] block = new float[32];
        block[0] = -8;    // the value of largest magnitude, sign kept: d = -8 / -8 = 1
        block[1] = 3.4f;  // trunc(3.4 + 8.5) = 11
        block[2] = 7.9f;  // trunc(16.4) = 16, clamped to 15
        block[16] = -2.6f; // trunc(5.9) = 5, the high nibble of byte 0
        Path file = dir.resolve("q4.gguf");
        new GgufWriter().addTensor("q", GgmlType.Q4_0, new long[] {32}, TensorData.of(block)).write(file);
        try (GgufReader r = GgufReader.open(file)) {
            ByteBuffer b = r.readBytes(r.file().tensors().getFirst());
            assertEquals(Float.floatToFloat16(1.0f), b.getShort(0), "d = max / -8");
            assertEquals(0 | (5 << 4), b.get(2) & 0xFF);
            assertEquals(11 | (8 << 4), b.get(3) & 0xFF);
            assertEquals(15 | (8 << 4), b.get(4) & 0xFF);
            float[] back = r.readFloats("q");
            assertEquals(-8f, back[0]);
            assertEquals(3f, back[1]);
            assertEquals(7f, back[2]);
            assertEquals(-3f, back[16]);
            assertEquals(0f, back[5]);
        }
    }

    @Test
    void q8_0MatchesGgmlReferenceRounding() throws IOException {
        float[] block = new float[32];
        block[0] = 127;
        block[1] = 2.5f;
        block[2] = -2.5f;
        block[3] = 0.5f;
        block[4] = -0.5f;
        block[5] = -127;
        block[6] = 0.49f;
        Path file = dir.resolve("q8.gguf");
        new GgufWriter().addTensor("q", GgmlType.Q8_0, new long[] {32}, TensorData.of(block)).write(file);
        try (GgufReader r = GgufReader.open(file)) {
            ByteBuffer b = r.readBytes(r.file().tensors().getFirst());
            assertEquals(Float.floatToFloat16(1.0f), b.getShort(0), "d = amax / 127");
            // roundf: halves away from zero
            assertArrayEquals(new byte[] {127, 3, -3, 1, -1, -127, 0, 0}, new byte[] {b.get(2), b.get(3), b.get(4),
                    b.get(5), b.get(6), b.get(7), b.get(8), b.get(9)});
        }
        Path zeros = dir.resolve("zeros.gguf");
        new GgufWriter().addTensor("z", GgmlType.Q8_0, new long[] {32}, TensorData.of(new float[32])).write(zeros);
        try (GgufReader r = GgufReader.open(zeros)) {
            assertArrayEquals(new float[32], r.readFloats("z"), "an all-zero block has scale 0, not NaN");
        }
    }

    @Test
    void writerRejectsWhatLlamaCppWould() {
        GgufWriter w = new GgufWriter().addTensor("a", GgmlType.F32, new long[] {4}, TensorData.of(new float[4]));
        assertThrows(IllegalArgumentException.class,
                () -> w.addTensor("a", GgmlType.F32, new long[] {4}, TensorData.of(new float[4])), "duplicate name");
        assertThrows(IllegalArgumentException.class,
                () -> w.addTensor("b", GgmlType.Q8_0, new long[] {33, 2}, TensorData.of(new float[66])), "ne0 not whole blocks");
        assertThrows(IllegalArgumentException.class,
                () -> w.addTensor("c", GgmlType.F32, new long[] {1, 1, 1, 1, 1}, TensorData.of(new float[1])), "five dimensions");
        assertThrows(IllegalArgumentException.class,
                () -> w.addTensor("x".repeat(64), GgmlType.F32, new long[] {1}, TensorData.of(new float[1])), "name too long");
        assertThrows(IllegalArgumentException.class,
                () -> w.addTensor("d", GgmlType.Q4_K, new long[] {256}, TensorData.of(new float[256])), "cannot quantise Q4_K");
        assertThrows(IllegalArgumentException.class, () -> w.alignment(48));
        assertThrows(IllegalArgumentException.class, () -> w.putInt32(GgufFile.ALIGNMENT_KEY, 64));
        assertThrows(IllegalArgumentException.class, () -> w.putUInt8("k", 256));
        assertThrows(IllegalArgumentException.class, () -> w.putArray("k", GgufValueType.INT8, List.of("s")));

        Path file = dir.resolve("short.gguf");
        GgufWriter shortData = new GgufWriter().addTensor("s", GgmlType.F32, new long[] {4}, TensorData.of(new float[3]));
        assertThrows(IllegalStateException.class, () -> shortData.write(file));
        assertFalse(Files.exists(file), "a failed write leaves no file behind");
        try (var s = Files.list(dir)) {
            assertEquals(0, s.count(), "nor a temporary one");
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void readerRejectsBrokenFiles() throws IOException {
        Path notGguf = dir.resolve("not.gguf");
        Files.write(notGguf, "GGML....".getBytes());
        assertThrows(GgufFormatException.class, () -> GgufReader.readHeader(notGguf));

        Path good = dir.resolve("good.gguf");
        new GgufWriter().putStringArray("k", List.of("a", "b"))
                .addTensor("t", GgmlType.F32, new long[] {64}, TensorData.of(new float[64])).write(good);
        byte[] all = Files.readAllBytes(good);
        for (int cut : new int[] {10, 30, 60, all.length - 1}) {
            Path truncated = dir.resolve("cut" + cut + ".gguf");
            Files.write(truncated, Arrays.copyOf(all, cut));
            assertThrows(IOException.class, () -> GgufReader.readHeader(truncated), "cut at " + cut);
        }
        // an absurd array length must fail cleanly rather than try to allocate
        byte[] huge = all.clone();
        ByteBuffer.wrap(huge).order(ByteOrder.LITTLE_ENDIAN).putLong(24 + 8 + 1 + 4 + 4, Long.MAX_VALUE / 2);
        Path corrupt = dir.resolve("corrupt.gguf");
        Files.write(corrupt, huge);
        assertThrows(GgufFormatException.class, () -> GgufReader.readHeader(corrupt));
    }

    @Test
    void ggmlTypesMatchGgml() {
        assertEquals(0, GgmlType.F32.id());
        assertEquals(1, GgmlType.F16.id());
        assertEquals(8, GgmlType.Q8_0.id());
        assertEquals(12, GgmlType.Q4_K.id());
        assertEquals(14, GgmlType.Q6_K.id());
        assertEquals(30, GgmlType.BF16.id());
        assertEquals(GgmlType.Q4_0, GgmlType.fromId(2).orElseThrow());
        assertTrue(GgmlType.fromId(4).isEmpty(), "Q4_2 was removed");
        assertEquals(34, GgmlType.Q8_0.typeSize());
        assertEquals(210, GgmlType.Q6_K.typeSize());
        assertEquals(256, GgmlType.Q6_K.blockSize());
        assertEquals("q4_K", GgmlType.Q4_K.ggmlName());
        assertEquals(34L * 4, GgmlType.Q8_0.byteSize(128));
        assertThrows(IllegalArgumentException.class, () -> GgmlType.Q8_0.byteSize(33));
    }
}
