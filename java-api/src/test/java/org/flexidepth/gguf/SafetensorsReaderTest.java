package org.flexidepth.gguf;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafetensorsReaderTest {
    @TempDir
    Path dir;

    /** A tensor to write: name, dtype, PyTorch shape, values. */
    private record T(String name, String dtype, long[] shape, float[] values) {
    }

    /** Writes a safetensors file the way the reference implementation lays it out. */
    private static void write(Path file, Map<String, String> metadata, T... tensors) {
        StringBuilder header = new StringBuilder("{");
        if (!metadata.isEmpty()) {
            header.append("\"__metadata__\":{");
            List<String> kv = new ArrayList<>();
            metadata.forEach((k, v) -> kv.add("\"" + k + "\":\"" + v + "\""));
            header.append(String.join(",", kv)).append("},");
        }
        ByteBuffer data = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        List<String> entries = new ArrayList<>();
        for (T t : tensors) {
            int begin = data.position();
            for (float v : t.values()) {
                switch (t.dtype()) {
                    case "F32" -> data.putFloat(v);
                    case "F16" -> data.putShort(Float.floatToFloat16(v));
                    case "BF16" -> data.putShort((short) (Float.floatToRawIntBits(v) >>> 16));
                    default -> throw new IllegalArgumentException(t.dtype());
                }
            }
            StringBuilder shape = new StringBuilder();
            for (long d : t.shape()) {
                shape.append(shape.isEmpty() ? "" : ",").append(d);
            }
            entries.add("\"" + t.name() + "\":{\"dtype\":\"" + t.dtype() + "\",\"shape\":[" + shape
                    + "],\"data_offsets\":[" + begin + "," + data.position() + "]}");
        }
        header.append(String.join(",", entries)).append("}");
        byte[] h = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (h.length + 7) / 8 * 8; // the reference pads the header with spaces to 8 bytes
        ByteBuffer out = ByteBuffer.allocate(8 + padded + data.position()).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(padded).put(h);
        while (out.position() < 8 + padded) {
            out.put((byte) ' ');
        }
        out.put(data.flip());
        try {
            Files.write(file, out.array());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Test
    void readsFloatTypesAndShapes() throws IOException {
        // values exactly representable in bf16 and f16
        float[] v = {1, -2, 0.5f, 3, 0.25f, -0.125f};
        write(dir.resolve("model.safetensors"), Map.of("format", "pt"),
                new T("a.f32", "F32", new long[] {2, 3}, v),
                new T("b.f16", "F16", new long[] {6}, v),
                new T("c.bf16", "BF16", new long[] {3, 2}, v));
        try (SafetensorsReader st = SafetensorsReader.open(dir)) {
            assertEquals(List.of("a.f32", "b.f16", "c.bf16"), new ArrayList<>(st.tensors().keySet()));
            assertEquals("pt", st.metadata().get("format"));
            SafetensorsTensor a = st.tensor("a.f32");
            assertArrayEquals(new long[] {2, 3}, a.shape());
            assertArrayEquals(new long[] {3, 2}, a.ggmlShape());
            assertEquals(SafetensorsDtype.F32, a.dtype());
            assertArrayEquals(v, a.readFloats());
            assertArrayEquals(v, st.tensor("b.f16").readFloats());
            assertArrayEquals(v, st.tensor("c.bf16").readFloats());
            float[] part = new float[2];
            st.tensor("c.bf16").readFloats(3, part, 0, 2);
            assertArrayEquals(new float[] {3, 0.25f}, part);
            assertTrue(st.find("nope").isEmpty());
        }
    }

    @Test
    void streamsIntoAGgufTensor() throws IOException {
        float[] v = new float[3 * 64];
        for (int i = 0; i < v.length; i++) {
            v[i] = i * 0.5f;
        }
        write(dir.resolve("w.safetensors"), Map.of(), new T("w", "BF16", new long[] {3, 64}, v));
        Path gguf = dir.resolve("w.gguf");
        try (SafetensorsReader st = SafetensorsReader.open(dir.resolve("w.safetensors"))) {
            SafetensorsTensor t = st.tensor("w");
            new GgufWriter().addTensor("w", GgmlType.F32, t.ggmlShape(), t.asTensorData()).write(gguf);
        }
        try (GgufReader r = GgufReader.open(gguf)) {
            assertArrayEquals(new long[] {64, 3}, r.file().tensors().getFirst().shape());
            assertArrayEquals(v, r.readFloats("w"));
        }
    }

    @Test
    void readsShardsThroughTheIndexAndResolvesTiedAliases() throws IOException {
        Map<String, String> alias = new LinkedHashMap<>();
        alias.put("format", "pt");
        alias.put("model.embed_tokens.weight", "lm_head.weight");
        write(dir.resolve("model-00001-of-00002.safetensors"), alias,
                new T("lm_head.weight", "F32", new long[] {2, 2}, new float[] {1, 2, 3, 4}));
        write(dir.resolve("model-00002-of-00002.safetensors"), Map.of(),
                new T("model.norm.weight", "BF16", new long[] {2}, new float[] {5, 6}));
        Files.writeString(dir.resolve(SafetensorsReader.INDEX_FILE), """
                {"metadata": {"total_size": 20},
                 "weight_map": {"lm_head.weight": "model-00001-of-00002.safetensors",
                                "model.norm.weight": "model-00002-of-00002.safetensors"}}
                """);
        try (SafetensorsReader st = SafetensorsReader.open(dir)) {
            assertEquals(2, st.files().size());
            assertEquals(List.of("lm_head.weight", "model.norm.weight", "model.embed_tokens.weight"),
                    new ArrayList<>(st.tensors().keySet()));
            assertArrayEquals(new float[] {5, 6}, st.tensor("model.norm.weight").readFloats());
            SafetensorsTensor embd = st.tensor("model.embed_tokens.weight");
            assertEquals("model.embed_tokens.weight", embd.name());
            assertArrayEquals(new float[] {1, 2, 3, 4}, embd.readFloats());
        }

        Files.writeString(dir.resolve(SafetensorsReader.INDEX_FILE), """
                {"weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors"}}
                """);
        assertThrows(IOException.class, () -> SafetensorsReader.open(dir), "the index names the wrong shard");
    }

    @Test
    void rejectsInconsistentHeaders() throws IOException {
        Path f = dir.resolve("bad.safetensors");
        byte[] h = "{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}".getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + 12).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Files.write(f, b.array());
        assertThrows(IOException.class, () -> SafetensorsReader.open(f), "4 floats in 12 bytes");

        Files.write(f, new byte[] {(byte) 0xFF, (byte) 0xFF, 0, 0, 0, 0, 0, 0, '{', '}'});
        assertThrows(IOException.class, () -> SafetensorsReader.open(f), "header longer than the file");
    }
}
