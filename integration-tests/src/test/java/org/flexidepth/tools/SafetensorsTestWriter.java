package org.flexidepth.tools;

import org.flexidepth.gguf.SafetensorsDtype;
import org.flexidepth.gguf.SafetensorsReader;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes small safetensors checkpoints for tests, laid out as the reference writer does: 8-byte
 * little-endian header length, JSON header (with {@code __metadata__}) padded with spaces to a
 * multiple of 8, then the tensors' data back to back. Sharded checkpoints get the
 * {@code model.safetensors.index.json} that transformers writes.
 */
final class SafetensorsTestWriter {
    /** A tensor in PyTorch shape order; {@code values} are rounded to {@code dtype} when written. */
    record Tensor(String name, SafetensorsDtype dtype, long[] shape, float[] values) {
        Tensor {
            if (Arrays.stream(shape).reduce(1, (a, b) -> a * b) != values.length) {
                throw new IllegalArgumentException(name + ": " + values.length + " values for shape " + Arrays.toString(shape));
            }
        }

        /** The values as the file stores them, back as floats. */
        float[] stored() {
            float[] r = values.clone();
            for (int i = 0; i < r.length; i++) {
                r[i] = round(dtype, r[i]);
            }
            return r;
        }
    }

    private SafetensorsTestWriter() {
    }

    /** Round to nearest even, as torch's float-to-bfloat16 conversion does. */
    static float bf16(float f) {
        return Float.intBitsToFloat(bf16Bits(f) << 16);
    }

    private static int bf16Bits(float f) {
        int u = Float.floatToRawIntBits(f);
        return (u + 0x7FFF + ((u >>> 16) & 1)) >>> 16;
    }

    static float round(SafetensorsDtype dtype, float v) {
        return switch (dtype) {
            case F32 -> v;
            case BF16 -> bf16(v);
            case F16 -> Float.float16ToFloat(Float.floatToFloat16(v));
            case I8 -> (byte) Math.round(v);
            default -> throw new IllegalArgumentException("cannot write " + dtype);
        };
    }

    /** One file. */
    static void write(Path file, List<Tensor> tensors) throws IOException {
        List<String> entries = new ArrayList<>();
        entries.add("\"__metadata__\":{\"format\":\"pt\"}");
        long offset = 0;
        for (Tensor t : tensors) {
            long end = offset + (long) t.values().length * t.dtype().size();
            entries.add('"' + t.name() + "\":{\"dtype\":\"" + t.dtype() + "\",\"shape\":"
                    + Arrays.toString(t.shape()).replace(" ", "") + ",\"data_offsets\":[" + offset + "," + end + "]}");
            offset = end;
        }
        StringBuilder header = new StringBuilder("{" + String.join(",", entries) + "}");
        while (header.length() % 8 != 0) {
            header.append(' ');
        }
        byte[] h = header.toString().getBytes(StandardCharsets.US_ASCII);
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(8 + h.length + offset)).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        for (Tensor t : tensors) {
            for (float v : t.values()) {
                switch (t.dtype()) {
                    case F32 -> b.putFloat(v);
                    case BF16 -> b.putShort((short) bf16Bits(v));
                    case F16 -> b.putShort(Float.floatToFloat16(v));
                    case I8 -> b.put((byte) Math.round(v));
                    default -> throw new IllegalArgumentException("cannot write " + t.dtype());
                }
            }
        }
        Files.write(file, b.array());
    }

    /**
     * Splits the tensors, in order, into {@code shards} files named as transformers names them
     * ({@code model-00001-of-00002.safetensors}) and writes the index mapping each tensor to its file.
     */
    static void writeSharded(Path dir, List<Tensor> tensors, int shards) throws IOException {
        Map<String, String> weightMap = new LinkedHashMap<>();
        long totalSize = 0;
        int perShard = (tensors.size() + shards - 1) / shards;
        for (int s = 0; s < shards; s++) {
            String file = String.format("model-%05d-of-%05d.safetensors", s + 1, shards);
            List<Tensor> part = tensors.subList(Math.min(tensors.size(), s * perShard), Math.min(tensors.size(), (s + 1) * perShard));
            for (Tensor t : part) {
                weightMap.put(t.name(), file);
                totalSize += (long) t.values().length * t.dtype().size();
            }
            write(dir.resolve(file), part);
        }
        StringBuilder index = new StringBuilder("{\n  \"metadata\": {\"total_size\": " + totalSize + "},\n  \"weight_map\": {");
        String sep = "\n";
        for (Map.Entry<String, String> e : weightMap.entrySet()) {
            index.append(sep).append("    \"").append(e.getKey()).append("\": \"").append(e.getValue()).append('"');
            sep = ",\n";
        }
        Files.writeString(dir.resolve(SafetensorsReader.INDEX_FILE), index.append("\n  }\n}\n").toString());
    }
}
