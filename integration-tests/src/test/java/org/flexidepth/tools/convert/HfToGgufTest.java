package org.flexidepth.tools.convert;

import org.flexidepth.tools.ProjectPaths;
import org.flexidepth.gguf.GgmlType;
import org.flexidepth.gguf.GgufFile;
import org.flexidepth.gguf.GgufReader;
import org.flexidepth.gguf.GgufTensorInfo;
import org.flexidepth.gguf.SafetensorsReader;
import org.flexidepth.gguf.SafetensorsTensor;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Converts ../shared/models/tinystories656k and checks the result, with the pristine upstream tools when built. */
class HfToGgufTest {
    private static final int HEAD_DIM = 16; // 128 / 8 heads

    @TempDir
    static Path tmp;
    static Path model;
    static Path f32;
    static Path q8;
    static String log;

    /** Per test rather than in @BeforeAll, so that surefire lists each skipped test with the reason. */
    @BeforeEach
    void needsTheModel() throws IOException {
        org.flexidepth.tests.Prerequisites.require(ProjectPaths.shared().isPresent(),
                "../shared is absent: the converter tests need ../shared/models/tinystories656k");
        model = ProjectPaths.shared().get().resolve("models/tinystories656k");
        org.flexidepth.tests.Prerequisites.require(Files.isDirectory(model), model + " is absent");
        if (log == null) {
            convertOnce();
        }
    }

    private static void convertOnce() throws IOException {
        f32 = tmp.resolve("tinystories-f32.gguf");
        q8 = tmp.resolve("tinystories-q8_0.gguf");
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8)) {
            HfToGguf.convert(model, f32, OutputType.F32, out);
            HfToGguf.convert(model, q8, OutputType.Q8_0, out);
        }
        log = bytes.toString(StandardCharsets.UTF_8);
    }

    @Test
    void writesLlamaMetadata() throws IOException {
        GgufFile f = GgufReader.readHeader(f32);
        assertEquals("llama", f.architecture().orElseThrow());
        assertEquals("tinystories656k", f.require("general.name").asString());
        assertEquals(0, f.require("general.file_type").asInt());
        assertEquals(2, f.require("llama.block_count").asInt());
        assertEquals(128, f.require("llama.embedding_length").asInt());
        assertEquals(384, f.require("llama.feed_forward_length").asInt());
        assertEquals(512, f.require("llama.context_length").asInt());
        assertEquals(8, f.require("llama.attention.head_count").asInt());
        assertEquals(4, f.require("llama.attention.head_count_kv").asInt());
        assertEquals(16, f.require("llama.rope.dimension_count").asInt());
        assertEquals(10000.0, f.require("llama.rope.freq_base").asDouble());
        assertEquals(1e-6, f.require("llama.attention.layer_norm_rms_epsilon").asDouble(), 1e-12);
        assertEquals(2048, f.require("llama.vocab_size").asInt());
        assertEquals(7, GgufReader.readHeader(q8).require("general.file_type").asInt());
    }

    @Test
    void writesAnSpmVocabularyScoredByMergeRank() throws IOException {
        GgufFile f = GgufReader.readHeader(f32);
        assertEquals("llama", f.require("tokenizer.ggml.model").asString());
        List<String> tokens = f.require("tokenizer.ggml.tokens").asStringList();
        float[] scores = f.require("tokenizer.ggml.scores").asFloatArray();
        int[] types = f.require("tokenizer.ggml.token_type").asIntArray();
        assertEquals(2048, tokens.size());
        assertEquals(2048, scores.length);
        assertEquals(2048, types.length);
        assertEquals(List.of("<unk>", "<|start_story|>", "<|end_story|>", "\n"), tokens.subList(0, 4));
        assertArrayEquals(new int[] {SpmVocab.UNKNOWN, SpmVocab.CONTROL, SpmVocab.CONTROL, SpmVocab.NORMAL},
                Arrays.copyOf(types, 4));
        assertEquals(1, f.require("tokenizer.ggml.bos_token_id").asInt());
        assertEquals(2, f.require("tokenizer.ggml.eos_token_id").asInt());
        assertEquals(0, f.require("tokenizer.ggml.unknown_token_id").asInt());
        assertEquals(0, f.require("tokenizer.ggml.padding_token_id").asInt());
        assertTrue(f.require("tokenizer.ggml.add_bos_token").asBoolean());
        assertFalse(f.require("tokenizer.ggml.add_eos_token").asBoolean());
        assertTrue(f.require("tokenizer.ggml.add_space_prefix").asBoolean());

        // the first merges of tokenizer.json are "e ▁", "d ▁", "t h": highest scores, in that order
        assertEquals(0f, scores[tokens.indexOf("e▁")]);
        assertEquals(-1f, scores[tokens.indexOf("d▁")]);
        assertEquals(-2f, scores[tokens.indexOf("th")]);
        // the last merge ("dog▁named▁" + "Max") has the lowest score of all merged tokens
        assertEquals(-1966f, scores[tokens.indexOf("dog▁named▁Max")]);
        assertEquals(0f, scores[tokens.indexOf("a")], "single characters");
        assertTrue(log.contains("no <0xXX> byte tokens"), "the missing byte tokens are reported: " + log);
    }

    @Test
    void mapsAllTensorsAndLeavesTheTiedOutputOut() throws IOException {
        GgufFile f = GgufReader.readHeader(f32);
        Set<String> names = new HashSet<>();
        f.tensors().forEach(t -> names.add(t.name()));
        Set<String> expected = new HashSet<>(List.of("token_embd.weight", "output_norm.weight"));
        for (int b = 0; b < 2; b++) {
            for (String s : List.of("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")) {
                expected.add("blk." + b + "." + s + ".weight");
            }
        }
        assertEquals(expected, names);
        assertShape(f, "token_embd.weight", 128, 2048);
        assertShape(f, "blk.0.attn_q.weight", 128, 128);
        assertShape(f, "blk.0.attn_k.weight", 128, 64);
        assertShape(f, "blk.0.attn_v.weight", 128, 64);
        assertShape(f, "blk.1.ffn_gate.weight", 128, 384);
        assertShape(f, "blk.1.ffn_down.weight", 384, 128);
        assertShape(f, "blk.1.ffn_norm.weight", 128);
        assertShape(f, "output_norm.weight", 128);
        f.tensors().forEach(t -> assertEquals(GgmlType.F32, t.type(), t.name()));

        GgufFile q = GgufReader.readHeader(q8);
        for (GgufTensorInfo t : q.tensors()) {
            assertEquals(t.dims() == 1 ? GgmlType.F32 : GgmlType.Q8_0, t.type(), t.name());
        }
    }

    private static void assertShape(GgufFile f, String name, long... shape) {
        assertArrayEquals(shape, f.tensor(name).orElseThrow().shape(), name);
    }

    @Test
    void permutesQueryAndKeyRowsForInterleavedRope() throws IOException {
        try (SafetensorsReader st = SafetensorsReader.open(model); GgufReader r = GgufReader.open(f32)) {
            for (int b = 0; b < 2; b++) {
                float[] hfQ = st.tensor("model.layers." + b + ".self_attn.q_proj.weight").readFloats();
                float[] hfK = st.tensor("model.layers." + b + ".self_attn.k_proj.weight").readFloats();
                float[] q = r.readFloats("blk." + b + ".attn_q.weight");
                float[] k = r.readFloats("blk." + b + ".attn_k.weight");
                // within each head of 16 rows, GGUF rows 0,1,2,3... are HF rows 0,8,1,9...
                assertArrayEquals(row(hfQ, 0), row(q, 0));
                assertArrayEquals(row(hfQ, 8), row(q, 1));
                assertArrayEquals(row(hfQ, 1), row(q, 2));
                assertArrayEquals(row(hfQ, 16 + 15), row(q, 16 + 15));
                assertArrayEquals(row(hfQ, 16 + 7), row(q, 16 + 14));
                assertNotEquals(Arrays.toString(row(hfQ, 1)), Arrays.toString(row(q, 1)));
                for (int i = 0; i < 128; i++) {
                    assertArrayEquals(row(hfQ, (int) RopePermutation.sourceRow(i, HEAD_DIM)), row(q, i), "q row " + i);
                }
                for (int i = 0; i < 64; i++) {
                    assertArrayEquals(row(hfK, (int) RopePermutation.sourceRow(i, HEAD_DIM)), row(k, i), "k row " + i);
                }
                float[] hfV = st.tensor("model.layers." + b + ".self_attn.v_proj.weight").readFloats();
                assertArrayEquals(hfV, r.readFloats("blk." + b + ".attn_v.weight"), "V is not permuted");
            }
            assertArrayEquals(st.tensor("lm_head.weight").readFloats(), r.readFloats("token_embd.weight"),
                    "the embedding is the tied lm_head");
        }
    }

    @Test
    void q8_0StaysCloseToTheCheckpoint() throws IOException {
        try (SafetensorsReader st = SafetensorsReader.open(model); GgufReader r = GgufReader.open(q8)) {
            float[] hf = st.tensor("model.layers.1.mlp.up_proj.weight").readFloats();
            float[] q = r.readFloats("blk.1.ffn_up.weight");
            float amax = 0;
            for (float v : hf) {
                amax = Math.max(amax, Math.abs(v));
            }
            for (int i = 0; i < hf.length; i++) {
                assertEquals(hf[i], q[i], 0.6f * amax / 127, "element " + i);
            }
            assertArrayEquals(st.tensor("model.norm.weight").readFloats(), r.readFloats("output_norm.weight"));
        }
    }

    @Test
    void convertsShardedBf16Checkpoints() throws IOException {
        Path sharded = tmp.resolve("sharded-bf16");
        Files.createDirectories(sharded);
        for (String f : List.of("config.json", "tokenizer.json", "tokenizer_config.json")) {
            Files.copy(model.resolve(f), sharded.resolve(f));
        }
        Map<String, String> weightMap = new LinkedHashMap<>();
        try (SafetensorsReader st = SafetensorsReader.open(model)) {
            List<SafetensorsTensor> all = new ArrayList<>();
            // only the stored tensors: a checkpoint without the alias metadata must still find the tied embedding
            st.tensors().values().stream().filter(t -> !t.name().equals("model.embed_tokens.weight")).forEach(all::add);
            for (int shard = 0; shard < 2; shard++) {
                String file = "model-0000" + (shard + 1) + "-of-00002.safetensors";
                List<SafetensorsTensor> part = new ArrayList<>();
                for (int i = shard; i < all.size(); i += 2) {
                    part.add(all.get(i));
                    weightMap.put(all.get(i).name(), file);
                }
                writeBf16Safetensors(sharded.resolve(file), part);
            }
        }
        StringBuilder index = new StringBuilder("{\"metadata\": {}, \"weight_map\": {");
        weightMap.forEach((k, v) -> index.append(index.charAt(index.length() - 1) == '{' ? "" : ", ")
                .append('"').append(k).append("\": \"").append(v).append('"'));
        Files.writeString(sharded.resolve(SafetensorsReader.INDEX_FILE), index.append("}}").toString());

        Path out = tmp.resolve("sharded.gguf");
        HfToGguf.convert(sharded, out, OutputType.F32, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
        try (GgufReader fromShards = GgufReader.open(out); GgufReader reference = GgufReader.open(f32)) {
            assertEquals(reference.file().tensors(), fromShards.file().tensors());
            for (GgufTensorInfo t : reference.file().tensors()) {
                float[] expected = reference.readFloats(t);
                for (int i = 0; i < expected.length; i++) {
                    expected[i] = bf16(expected[i]);
                }
                assertArrayEquals(expected, fromShards.readFloats(t), t.name());
            }
        }
    }

    private static float bf16(float f) {
        int u = Float.floatToRawIntBits(f);
        return Float.intBitsToFloat(((u + 0x7FFF + ((u >>> 16) & 1)) >>> 16) << 16);
    }

    /** A safetensors file as the reference writer lays it out, every tensor converted to BF16. */
    private static void writeBf16Safetensors(Path file, List<SafetensorsTensor> tensors) throws IOException {
        List<String> entries = new ArrayList<>();
        long offset = 0;
        for (SafetensorsTensor t : tensors) {
            long end = offset + 2 * t.elementCount();
            entries.add('"' + t.name() + "\":{\"dtype\":\"BF16\",\"shape\":" + Arrays.toString(t.shape()).replace(" ", "")
                    + ",\"data_offsets\":[" + offset + "," + end + "]}");
            offset = end;
        }
        byte[] header = ("{" + String.join(",", entries) + "}").getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(8 + header.length + offset)).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length).put(header);
        for (SafetensorsTensor t : tensors) {
            for (float v : t.readFloats()) {
                b.putShort((short) (Float.floatToRawIntBits(bf16(v)) >>> 16));
            }
        }
        Files.write(file, b.array());
    }

    private static float[] row(float[] m, int r) {
        return Arrays.copyOfRange(m, r * 128, (r + 1) * 128);
    }

    /** Token ids that HF's BPE gives (merges applied by rank over the ▁-normalised text), with BOS. */
    @Test
    void pristineTokenizerMatchesHfBpe() throws Exception {
        Path exe = pristineTool("llama-tokenize");
        assertEquals("[1, 80, 147, 201, 282, 57]", run(exe, "-m", f32.toString(), "-p", "Once upon a time", "--ids", "--log-disable").strip());
        assertEquals("[1, 80, 147, 201, 282, 215, 286, 598, 1662, 887, 610, 57, 10]",
                run(exe, "-m", q8.toString(), "-p", "Once upon a time, there was a little girl named Lily. She loved to play outside.",
                        "--ids", "--log-disable").strip());
    }

    @Test
    void pristineLlamaSimpleGeneratesStories() throws Exception {
        Path exe = pristineTool("llama-simple");
        for (Path m : List.of(f32, q8)) {
            String out = run(exe, "-m", m.toString(), "-n", "16", "Once upon a time");
            assertTrue(out.contains("Once upon a time"), out);
            String generated = out.substring(out.indexOf("Once upon a time") + "Once upon a time".length());
            List<String> words = new ArrayList<>(Arrays.asList(generated.strip().split("[^A-Za-z']+")));
            words.removeIf(String::isEmpty);
            assertTrue(words.size() >= 8, "generated: " + generated);
            long common = words.stream().filter(w -> Set.of("a", "the", "was", "there", "little", "girl", "boy", "named",
                    "she", "he", "and", "to", "in", "day", "one", "with", "her", "his").contains(w.toLowerCase())).count();
            assertTrue(common >= 2, "expected English-like text, got: " + generated);
            // llama-simple samples greedily; with Q/K rows left in HF order the text stays English-like
            // but goes off the rails from the first token ("Once upon a timear named Sam and Sam")
            assertTrue(generated.startsWith(", a little girl named Lily"), "greedy continuation: " + generated);
        }
    }

    private static Path pristineTool(String name) {
        Path exe = ProjectPaths.nativeBuild().resolve("pristine/bin").resolve(name);
        org.flexidepth.tests.Prerequisites.require(Files.isExecutable(exe), exe + " is not built: build the native tree (see README) to run this check");
        return exe;
    }

    /** Runs a tool; returns its stdout; fails on a non-zero exit. */
    private static String run(Path exe, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(exe.toString()));
        cmd.addAll(List.of(args));
        Path err = tmp.resolve(exe.getFileName() + ".err");
        Process p = new ProcessBuilder(cmd).redirectError(err.toFile()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), exe + " timed out");
        assertEquals(0, p.exitValue(), exe + " failed:\n" + Files.readString(err));
        return out;
    }
}
