package org.flexidepth.tools;

import org.flexidepth.tools.SafetensorsTestWriter.Tensor;
import org.flexidepth.gguf.GgmlType;
import org.flexidepth.gguf.GgufFile;
import org.flexidepth.gguf.GgufReader;
import org.flexidepth.gguf.GgufTensorInfo;
import org.flexidepth.gguf.SafetensorsDtype;
import org.flexidepth.gguf.SafetensorsReader;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.Generation;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.LayerUsage;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.Token;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The converter of released FlexiDepth checkpoints, on synthetic checkpoints in the released layout
 * (DDLlama names, bf16, two shards with an index, base-model weights alongside the plug-in's)
 * scaled down to a model that {@link RandomFixtures} can generate, so the result also loads and runs.
 */
class CheckpointConverterTest {
    static final RandomFixtures.Shape SHAPE = new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 512);
    static final int D = SHAPE.embd(), DR = 8, DA = 32;
    /** The latter half, as in the release. */
    static final List<Integer> ROUTED = List.of(2, 3);

    /** Checkpoint module to plug-in tensor kind, written out independently of the converter's own table. */
    static final Map<String, String> PLUGIN_KIND = Map.of(
            "router.router_enc", PluginFormat.ROUTER_DOWN,
            "router.router_norm", PluginFormat.ROUTER_NORM,
            "router.router_dec", PluginFormat.ROUTER_UP,
            "router.router_head", PluginFormat.ROUTER_HEAD,
            "router_proj.gate_proj", PluginFormat.ADAPTER_GATE,
            "router_proj.down_proj", PluginFormat.ADAPTER_UP,
            "router_proj.up_proj", PluginFormat.ADAPTER_DOWN);

    @TempDir
    Path tmp;
    final ByteArrayOutputStream logBytes = new ByteArrayOutputStream();
    final PrintStream log = new PrintStream(logBytes, true, StandardCharsets.UTF_8);

    // ---- synthetic checkpoints ----

    private static float[] gaussian(SplittableRandom r, long n, double mean, double std) {
        float[] v = new float[Math.toIntExact(n)];
        for (int i = 0; i < v.length; i++) {
            double u1 = r.nextDouble(), u2 = r.nextDouble();
            v[i] = (float) (mean + std * Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2));
        }
        return v;
    }

    private static float[] abs(float[] v, float sign) {
        for (int i = 0; i < v.length; i++) {
            v[i] = sign * (Math.abs(v[i]) + 1e-3f);
        }
        return v;
    }

    private static Tensor t(String name, SafetensorsDtype dtype, float[] values, long... shape) {
        return new Tensor(name, dtype, shape, values);
    }

    /**
     * The released layout in HF's order (layer by layer, modules alphabetically), base weights
     * included. The adapter's input projection ({@code down_proj}) is all positive and its output
     * projection ({@code up_proj}) all negative, so the naming trap shows in the values too.
     */
    static List<Tensor> releasedLayout(RandomFixtures.Shape s, List<Integer> routed, int dr, int da, long seed,
                                       SafetensorsDtype routerDtype, SafetensorsDtype baseDtype) {
        SplittableRandom r = new SplittableRandom(seed);
        long d = s.embd();
        List<Tensor> out = new ArrayList<>();
        out.add(t("model.embed_tokens.weight", baseDtype, gaussian(r, s.vocab() * d, 0, 1), s.vocab(), d));
        for (int l = 0; l < s.layers(); l++) {
            String p = "model.layers." + l + ".";
            out.add(t(p + "input_layernorm.weight", baseDtype, gaussian(r, d, 1, 0.1), d));
            out.add(t(p + "mlp.gate_proj.weight", baseDtype, gaussian(r, s.ff() * d, 0, 0.1), s.ff(), d));
            if (routed.contains(l)) {
                SafetensorsDtype rt = routerDtype;
                out.add(t(p + "router.router_dec.weight", rt, gaussian(r, d * dr, 0, 1 / Math.sqrt(dr)), d, dr));
                out.add(t(p + "router.router_enc.weight", rt, gaussian(r, dr * d, 0, 1 / Math.sqrt(d)), dr, d));
                // sized so that logits spread over a few units around 0 and decisions are mixed
                out.add(t(p + "router.router_head.weight", rt, gaussian(r, d, 0, 4 / Math.sqrt(d)), 1, d));
                out.add(t(p + "router.router_norm.weight", rt, gaussian(r, dr, 1, 0.1), dr));
                out.add(t(p + "router_proj.down_proj.weight", rt, abs(gaussian(r, da * d, 0, 1 / Math.sqrt(d)), 1), da, d));
                out.add(t(p + "router_proj.gate_proj.weight", rt, gaussian(r, da * d, 0, 1 / Math.sqrt(d)), da, d));
                out.add(t(p + "router_proj.up_proj.weight", rt, abs(gaussian(r, d * da, 0, 1 / Math.sqrt(da)), -1), d, da));
            }
            out.add(t(p + "self_attn.q_proj.weight", baseDtype, gaussian(r, d * d, 0, 0.1), d, d));
            out.add(t(p + "self_attn.k_proj.weight", baseDtype, gaussian(r, s.kvDim() * d, 0, 0.1), s.kvDim(), d));
        }
        out.add(t("model.norm.weight", baseDtype, gaussian(r, d, 1, 0.1), d));
        out.add(t("lm_head.weight", baseDtype, gaussian(r, s.vocab() * d, 0, 0.1), s.vocab(), d));
        return out;
    }

    static List<Tensor> releasedLayout(long seed) {
        return releasedLayout(SHAPE, ROUTED, DR, DA, seed, SafetensorsDtype.BF16, SafetensorsDtype.BF16);
    }

    /** Writes config.json and the tensors (two shards and an index, or model.safetensors) into a new directory. */
    Path writeCheckpoint(String name, String modelType, RandomFixtures.Shape s, List<Tensor> tensors, boolean sharded)
            throws IOException {
        Path dir = Files.createDirectories(tmp.resolve(name));
        Files.writeString(dir.resolve("config.json"), """
                {
                  "architectures": ["DDLlamaForCausalLM"],
                  "model_type": "%s",
                  "hidden_size": %d,
                  "intermediate_size": %d,
                  "num_hidden_layers": %d,
                  "num_attention_heads": %d,
                  "num_key_value_heads": %d,
                  "vocab_size": %d,
                  "rms_norm_eps": 1e-05,
                  "torch_dtype": "bfloat16"
                }
                """.formatted(modelType, s.embd(), s.ff(), s.layers(), s.heads(), s.kvHeads(), s.vocab()));
        if (sharded) {
            SafetensorsTestWriter.writeSharded(dir, tensors, 2);
        } else {
            SafetensorsTestWriter.write(dir.resolve(SafetensorsReader.SINGLE_FILE), tensors);
        }
        return dir;
    }

    Path writeCheckpoint(String name, List<Tensor> tensors) throws IOException {
        return writeCheckpoint(name, "ddllama", SHAPE, tensors, true);
    }

    private static List<Tensor> edit(List<Tensor> tensors, String name, UnaryOperator<Tensor> change) {
        List<Tensor> out = new ArrayList<>();
        boolean found = false;
        for (Tensor t : tensors) {
            if (t.name().equals(name)) {
                found = true;
                Tensor c = change.apply(t);
                if (c != null) {
                    out.add(c);
                }
            } else {
                out.add(t);
            }
        }
        assertTrue(found, name);
        return out;
    }

    private static Tensor find(List<Tensor> tensors, String name) {
        return tensors.stream().filter(t -> t.name().equals(name)).findFirst().orElseThrow();
    }

    // ---- checks on the plug-in ----

    private static String pluginName(String checkpointName) {
        String rest = checkpointName.substring("model.layers.".length());
        int layer = Integer.parseInt(rest.substring(0, rest.indexOf('.')));
        String module = rest.substring(rest.indexOf('.') + 1, rest.length() - ".weight".length());
        return PluginFormat.tensorName(layer, PLUGIN_KIND.get(module));
    }

    private static boolean isPluginTensor(Tensor t) {
        return t.name().contains(".router.") || t.name().contains(".router_proj.");
    }

    private static boolean isRouter(Tensor t) {
        return t.name().contains(".router.");
    }

    private static long[] reversed(long[] shape) {
        long[] r = new long[shape.length];
        for (int i = 0; i < shape.length; i++) {
            r[i] = shape[shape.length - 1 - i];
        }
        return r;
    }

    /** Every plug-in tensor holds its checkpoint tensor's stored values, in the ggml shape, to the type's precision. */
    private static void assertConverted(Path plugin, List<Tensor> checkpoint, GgmlType adapterType) throws IOException {
        try (GgufReader r = GgufReader.open(plugin)) {
            List<Tensor> expected = checkpoint.stream().filter(CheckpointConverterTest::isPluginTensor).toList();
            assertEquals(expected.size(), r.file().tensors().size(), "one plug-in tensor per router/adapter tensor, nothing else");
            for (Tensor t : expected) {
                String name = pluginName(t.name());
                GgufTensorInfo info = r.file().tensor(name).orElseThrow(() -> new AssertionError("no " + name));
                assertArrayEquals(reversed(t.shape()), info.shape(), name + " shape");
                GgmlType type = isRouter(t) ? GgmlType.F32 : adapterType;
                assertEquals(type, info.type(), name + " type");
                float[] want = t.stored();
                float[] got = r.readFloats(info);
                switch (type) {
                    case F32 -> assertArrayEquals(want, got, name);
                    case F16 -> {
                        for (int i = 0; i < want.length; i++) {
                            float f16 = Float.float16ToFloat(Float.floatToFloat16(want[i]));
                            assertEquals(f16, got[i], name + "[" + i + "]");
                            assertEquals(want[i], got[i], Math.ulp(want[i]) * 8192 + 0x1p-25f, name + "[" + i + "] f16 rounding");
                        }
                    }
                    case Q8_0 -> {
                        for (int b = 0; b < want.length; b += 32) {
                            float amax = 0;
                            for (int i = b; i < b + 32; i++) {
                                amax = Math.max(amax, Math.abs(want[i]));
                            }
                            for (int i = b; i < b + 32; i++) {
                                // half a step of amax/127, plus the scale's own f16 rounding
                                assertEquals(want[i], got[i], 0.51f * amax / 127 + amax * 0x1p-11f, name + "[" + i + "]");
                            }
                        }
                    }
                    default -> throw new AssertionError(type);
                }
            }
        }
    }

    private Path convert(Path checkpoint, GgmlType adapterType) throws IOException {
        Path out = tmp.resolve(checkpoint.getFileName() + "-" + adapterType.ggmlName() + ".gguf");
        CheckpointConverter.convert(checkpoint, out, adapterType, 0.5f, log);
        return out;
    }

    // ---- conversions ----

    @Test
    void detectsRoutedLayersAndSizesAndWritesTheMetadata() throws IOException {
        List<Tensor> tensors = releasedLayout(1);
        Path ckpt = writeCheckpoint("sharded", tensors);
        String index = Files.readString(ckpt.resolve(SafetensorsReader.INDEX_FILE));
        assertTrue(index.contains("\"model.layers.2.router.router_enc.weight\": \"model-00001-of-00002.safetensors\"")
                        && index.contains("\"model.layers.3.router_proj.up_proj.weight\": \"model-00002-of-00002.safetensors\""),
                "the plug-in's tensors are spread over both shards: " + index);

        Path out = convert(ckpt, GgmlType.F16);
        GgufFile f = GgufReader.readHeader(out);
        assertEquals("adapter", f.require("general.type").asString());
        assertEquals("flexidepth", f.require("adapter.type").asString());
        assertEquals("llama", f.require("general.architecture").asString());
        assertEquals(4, f.require("flexidepth.block_count").asInt());
        assertEquals(64, f.require("flexidepth.embedding_length").asInt());
        assertArrayEquals(new int[] {2, 3}, f.require("flexidepth.routed_layers").asIntArray());
        assertEquals(DR, f.require("flexidepth.router_size").asInt());
        assertEquals(DA, f.require("flexidepth.adapter_size").asInt());
        assertEquals(0.5, f.require("flexidepth.threshold").asDouble());
        assertFalse(f.tensor("blk.2.fd_router_head.bias").isPresent(), "checkpoints have no head bias");
        String logText = logBytes.toString(StandardCharsets.UTF_8);
        assertTrue(logText.contains("routed layers 2-3 (2), router size 8, adapter size 32"), logText);
        try (Stream<Path> files = Files.list(tmp)) {
            assertEquals(List.of(), files.filter(p -> p.toString().endsWith(".partial")).toList(), "no temporary file is left");
        }
    }

    @Test
    void routersAreExactF32AndTheF16AdapterIsWithinF16Rounding() throws IOException {
        List<Tensor> tensors = releasedLayout(2);
        assertConverted(convert(writeCheckpoint("f16", tensors), GgmlType.F16), tensors, GgmlType.F16);
    }

    @Test
    void f32AdapterIsExact() throws IOException {
        List<Tensor> tensors = releasedLayout(3);
        assertConverted(convert(writeCheckpoint("f32", tensors), GgmlType.F32), tensors, GgmlType.F32);
    }

    @Test
    void q8_0AdapterIsWithinQuantisationTolerance() throws IOException {
        List<Tensor> tensors = releasedLayout(4);
        assertConverted(convert(writeCheckpoint("q8", tensors), GgmlType.Q8_0), tensors, GgmlType.Q8_0);
    }

    /** router_proj.down_proj is the adapter's input projection and up_proj its output: SPEC.md section 3. */
    @Test
    void adapterDownProjIsTheInputProjectionAndUpProjTheOutput() throws IOException {
        List<Tensor> tensors = releasedLayout(5);
        Path out = convert(writeCheckpoint("trap", tensors), GgmlType.F32);
        try (GgufReader r = GgufReader.open(out)) {
            for (int l : ROUTED) {
                GgufTensorInfo up = r.file().tensor("blk." + l + ".fd_adapter_up.weight").orElseThrow();
                GgufTensorInfo down = r.file().tensor("blk." + l + ".fd_adapter_down.weight").orElseThrow();
                assertArrayEquals(new long[] {D, DA}, up.shape(), "input projection: d -> d_a");
                assertArrayEquals(new long[] {DA, D}, down.shape(), "output projection: d_a -> d");
                float[] upValues = r.readFloats(up);
                float[] downValues = r.readFloats(down);
                for (float v : upValues) {
                    assertTrue(v > 0, "fd_adapter_up holds router_proj.down_proj (all positive)");
                }
                for (float v : downValues) {
                    assertTrue(v < 0, "fd_adapter_down holds router_proj.up_proj (all negative)");
                }
                String p = "model.layers." + l + ".router_proj.";
                assertArrayEquals(find(tensors, p + "down_proj.weight").stored(), upValues);
                assertArrayEquals(find(tensors, p + "up_proj.weight").stored(), downValues);
                assertArrayEquals(find(tensors, p + "gate_proj.weight").stored(), r.readFloats("blk." + l + ".fd_adapter_gate.weight"));
            }
        }
    }

    @Test
    void singleFileCheckpointsOfF32AndF16Work() throws IOException {
        for (SafetensorsDtype dtype : List.of(SafetensorsDtype.F32, SafetensorsDtype.F16)) {
            List<Tensor> tensors = releasedLayout(SHAPE, ROUTED, DR, DA, 6, dtype, dtype);
            Path ckpt = writeCheckpoint("single-" + dtype, "ddllama", SHAPE, tensors, false);
            assertFalse(Files.exists(ckpt.resolve(SafetensorsReader.INDEX_FILE)));
            assertConverted(convert(ckpt, GgmlType.F32), tensors, GgmlType.F32);
        }
    }

    /** The real checkpoint carries 16 GB of base weights; the converter must not even look at their data. */
    @Test
    void baseModelWeightsAreNeverRead() throws IOException {
        // I8 cannot be read as floats: any attempt to convert a base tensor would fail
        List<Tensor> tensors = releasedLayout(SHAPE, ROUTED, DR, DA, 7, SafetensorsDtype.BF16, SafetensorsDtype.I8);
        Path out = convert(writeCheckpoint("int8-base", tensors), GgmlType.F16);
        Set<String> names = new HashSet<>();
        GgufReader.readHeader(out).tensors().forEach(t -> names.add(t.name()));
        assertEquals(7 * ROUTED.size(), names.size());
        names.forEach(n -> assertTrue(n.matches("blk\\.[23]\\.fd_\\w+\\.weight"), n));
    }

    @Test
    void thresholdAndArchitectureComeFromTheOptionsAndModelType() throws IOException {
        List<Tensor> tensors = releasedLayout(8);
        Map<String, String> archOf = Map.of("ddllama", "llama", "llama", "llama", "mistral", "llama", "qwen2", "qwen2", "qwen3", "qwen3");
        for (Map.Entry<String, String> e : archOf.entrySet()) {
            Path ckpt = writeCheckpoint("type-" + e.getKey(), e.getKey(), SHAPE, tensors, false);
            Path out = tmp.resolve("type-" + e.getKey() + ".gguf");
            CheckpointConverter.convert(ckpt, out, GgmlType.F16, 0.25f, log);
            GgufFile f = GgufReader.readHeader(out);
            assertEquals(e.getValue(), f.require("general.architecture").asString(), e.getKey());
            assertEquals(0.25, f.require("flexidepth.threshold").asDouble());
        }
    }

    // ---- refusals ----

    /** Converts and expects an IOException whose message contains every fragment; no output may remain. */
    private void assertRefused(Path ckpt, GgmlType type, String... fragments) throws IOException {
        Path out = tmp.resolve("refused.gguf");
        IOException e = assertThrows(IOException.class, () -> CheckpointConverter.convert(ckpt, out, type, 0.5f, log));
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "\"" + f + "\" in: " + e.getMessage());
        }
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        try (Stream<Path> files = Files.list(tmp)) {
            assertEquals(List.of(), files.filter(p -> p.getFileName().toString().startsWith("refused")).toList());
        }
    }

    @Test
    void refusesARoutedLayerWithAMissingTensor() throws IOException {
        List<Tensor> tensors = edit(releasedLayout(9), "model.layers.3.router.router_norm.weight", t -> null);
        assertRefused(writeCheckpoint("no-norm", tensors), GgmlType.F16,
                "routed layer 3 lacks model.layers.3.router.router_norm.weight");
    }

    @Test
    void refusesShapesThatDisagreeBetweenLayers() throws IOException {
        List<Tensor> tensors = edit(releasedLayout(10), "model.layers.3.router_proj.gate_proj.weight",
                t -> new Tensor(t.name(), t.dtype(), new long[] {16, D}, new float[16 * D]));
        assertRefused(writeCheckpoint("gate-16", tensors), GgmlType.F16,
                "model.layers.3.router_proj.gate_proj.weight has shape [16, 64], expected [32, 64]", "adapter size 32 as in layer 2");
    }

    @Test
    void refusesShapesThatDisagreeWithinALayer() throws IOException {
        List<Tensor> tensors = edit(releasedLayout(11), "model.layers.2.router.router_dec.weight",
                t -> new Tensor(t.name(), t.dtype(), new long[] {DR, D}, t.values()));
        assertRefused(writeCheckpoint("dec-transposed", tensors), GgmlType.F16,
                "model.layers.2.router.router_dec.weight has shape [8, 64], expected [64, 8]");
    }

    @Test
    void refusesRoutersOfAnotherHiddenSize() throws IOException {
        RandomFixtures.Shape wider = new RandomFixtures.Shape(4, 96, 4, 2, 128, 320, 512);
        List<Tensor> tensors = releasedLayout(wider, ROUTED, DR, DA, 12, SafetensorsDtype.BF16, SafetensorsDtype.BF16);
        Path ckpt = writeCheckpoint("wider", "ddllama", wider, tensors, true);
        Files.writeString(ckpt.resolve("config.json"), Files.readString(ckpt.resolve("config.json")).replace("\"hidden_size\": 96", "\"hidden_size\": 64"));
        assertRefused(ckpt, GgmlType.F16, "model.layers.2.router.router_enc.weight has shape [8, 96]", "hidden_size 64");
    }

    @Test
    void refusesACheckpointWithoutRouters() throws IOException {
        List<Tensor> tensors = releasedLayout(13).stream().filter(t -> !isPluginTensor(t)).toList();
        assertRefused(writeCheckpoint("plain-llama", tensors), GgmlType.F16, "no FlexiDepth router tensors", "not a FlexiDepth checkpoint");
    }

    @Test
    void refusesAnUnknownModelType() throws IOException {
        assertRefused(writeCheckpoint("gpt2", "gpt2", SHAPE, releasedLayout(14), true), GgmlType.F16,
                "model_type gpt2 is not supported");
    }

    @Test
    void refusesRouterTensorsThePluginCannotHold() throws IOException {
        List<Tensor> tensors = new ArrayList<>(releasedLayout(15));
        tensors.add(t("model.layers.2.router.router_enc.bias", SafetensorsDtype.BF16, new float[DR], DR));
        assertRefused(writeCheckpoint("bias", tensors), GgmlType.F16, "unexpected tensor model.layers.2.router.router_enc.bias");
    }

    @Test
    void refusesRoutedLayersBeyondTheModel() throws IOException {
        List<Tensor> tensors = releasedLayout(SHAPE, List.of(2, 3), DR, DA, 16, SafetensorsDtype.BF16, SafetensorsDtype.BF16);
        Path ckpt = writeCheckpoint("too-deep", tensors);
        Files.writeString(ckpt.resolve("config.json"), Files.readString(ckpt.resolve("config.json"))
                .replace("\"num_hidden_layers\": 4", "\"num_hidden_layers\": 3"));
        assertRefused(ckpt, GgmlType.F16, "model.layers.3.", "beyond num_hidden_layers = 3");
    }

    @Test
    void refusesQ8_0ForAdaptersThatAreNotWholeBlocks() throws IOException {
        List<Tensor> tensors = releasedLayout(SHAPE, ROUTED, DR, 24, 17, SafetensorsDtype.BF16, SafetensorsDtype.BF16);
        Path ckpt = writeCheckpoint("da-24", tensors);
        assertRefused(ckpt, GgmlType.Q8_0, "q8_0 needs", "adapter size (24)");
        assertConverted(convert(ckpt, GgmlType.F16), tensors, GgmlType.F16);
    }

    // ---- the program ----

    private int run(String... args) {
        return CheckpointConverter.run(args, log);
    }

    @Test
    void commandLineExitCodes() throws IOException {
        Path ckpt = writeCheckpoint("cli", releasedLayout(18));
        Path out = tmp.resolve("cli.gguf");
        assertEquals(2, run());
        assertEquals(2, run(ckpt.toString()));
        assertEquals(2, run(ckpt.toString(), out.toString(), "--adapter-type", "q4_0"));
        assertEquals(2, run(ckpt.toString(), out.toString(), "--threshold", "half"));
        assertEquals(2, run(ckpt.toString(), out.toString(), "--threshold"));
        assertEquals(2, run(ckpt.toString(), out.toString(), "extra"));
        assertEquals(2, run(ckpt.toString(), out.toString(), "--type", "f16"));
        assertFalse(Files.exists(out));
        assertTrue(logBytes.toString(StandardCharsets.UTF_8).contains("usage: CheckpointConverter"));

        logBytes.reset();
        assertEquals(1, run(tmp.resolve("absent").toString(), out.toString()));
        assertEquals(1, logBytes.toString(StandardCharsets.UTF_8).lines().count(), logBytes.toString(StandardCharsets.UTF_8));
        logBytes.reset();
        Path noRouters = writeCheckpoint("cli-plain", releasedLayout(18).stream().filter(t -> !isPluginTensor(t)).toList());
        assertEquals(1, run(noRouters.toString(), out.toString()));
        String err = logBytes.toString(StandardCharsets.UTF_8);
        assertEquals(1, err.lines().count(), err);
        assertTrue(err.startsWith("error: no FlexiDepth router tensors"), err);
        assertFalse(Files.exists(out));

        assertEquals(0, run(ckpt.toString(), out.toString(), "--adapter-type", "Q8_0", "--threshold", "0.75"));
        GgufFile f = GgufReader.readHeader(out);
        assertEquals(0.75, f.require("flexidepth.threshold").asDouble());
        assertEquals(GgmlType.Q8_0, f.tensor("blk.3.fd_adapter_down.weight").orElseThrow().type());
        assertEquals(GgmlType.F32, f.tensor("blk.3.fd_router_up.weight").orElseThrow().type());
    }

    // ---- end to end ----

    /** A converted checkpoint loads onto a base model of its shape and routes every generated token. */
    @Test
    void convertedPluginLoadsAndRoutesOnABaseModelOfTheSameShape() throws IOException {
        Path model = tmp.resolve("base.gguf");
        RandomFixtures.writeModel(model, SHAPE, 21, GgmlType.F32);
        Path plugin = convert(writeCheckpoint("e2e", releasedLayout(22)), GgmlType.F16);
        int[] prompt = {1, 300, 301, 302, 303};
        try (LlamaModel m = LlamaModel.load(model); FlexiDepthPlugin p = m.loadFlexiDepth(plugin); Session s = m.newSession()) {
            assertEquals(ROUTED, p.routedLayers());
            assertEquals(DR, p.routerSize());
            assertEquals(DA, p.adapterSize());
            assertEquals("llama", p.architecture());
            s.attach(p, 0.5f);
            List<Token> tokens;
            try (Generation g = s.generate(prompt, GenerationOptions.builder().maxTokens(5).build())) {
                tokens = g.result().tokens();
                assertEquals(prompt.length, g.promptLayerUsage().size());
            }
            assertFalse(tokens.isEmpty(), "a greedy random model may stop early at </s>, never before the first token");
            for (Token t : tokens) {
                LayerUsage u = t.layers().orElseThrow(() -> new AssertionError("token " + t.id() + " has no layer usage"));
                assertEquals(ROUTED, u.routedLayers());
                assertEquals(SHAPE.layers(), u.totalLayers());
                int ran = 0;
                for (int i = 0; i < ROUTED.size(); i++) {
                    assertTrue(u.gate(i) >= 0 && u.gate(i) <= 1, "gate " + u.gate(i));
                    assertEquals(u.gate(i) > 0.5f, u.ran(i));
                    ran += u.ran(i) ? 1 : 0;
                }
                assertEquals(SHAPE.layers() - ROUTED.size() + ran, u.layersUsed());
            }
        }
    }
}
