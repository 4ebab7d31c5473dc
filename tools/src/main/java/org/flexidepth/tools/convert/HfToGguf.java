package org.flexidepth.tools.convert;

import org.flexidepth.tools.ConverterArguments;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.gguf.GgufWriter;
import org.flexidepth.gguf.SafetensorsReader;
import org.flexidepth.gguf.SafetensorsTensor;
import org.flexidepth.gguf.TensorData;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Converts a Hugging Face Llama checkpoint ({@code config.json}, {@code model.safetensors} or
 * shards with {@code model.safetensors.index.json}, {@code tokenizer.json},
 * {@code tokenizer_config.json}) to a GGUF file that llama.cpp loads, like upstream's
 * {@code convert_hf_to_gguf.py} does for {@code LlamaForCausalLM}, without Python.
 *
 * <pre>
 * HfToGguf &lt;hf-dir&gt; &lt;out.gguf&gt; [--type f32|f16|bf16|q8_0]
 * </pre>
 *
 * Matrices are stored as {@code --type} (default f16), vectors as F32. Tensors are streamed from
 * the memory-mapped checkpoint one at a time. The tokenizer must be a SentencePiece-style BPE; see
 * {@link SpmVocab}.
 */
public final class HfToGguf {
    static final String USAGE = """
            usage: HfToGguf <hf-dir> <out.gguf> [--type f32|f16|bf16|q8_0]
              <hf-dir>  a Hugging Face LlamaForCausalLM checkpoint: config.json, model.safetensors
                        (or shards with model.safetensors.index.json), tokenizer.json,
                        tokenizer_config.json
              --type    how matrices are stored (default f16); norms and biases stay f32
            """;

    private static final String EMBED = "model.embed_tokens.weight";
    private static final String LM_HEAD = "lm_head.weight";

    private HfToGguf() {
    }

    public static void main(String[] args) {
        PrintStream err = new PrintStream(System.err, true, StandardCharsets.UTF_8);
        int rc;
        try {
            ConverterArguments a = ConverterArguments.parse(args, Set.of("--type"));
            OutputType type = a.options().containsKey("--type") ? OutputType.parse(a.options().get("--type")) : OutputType.F16;
            convert(a.in(), a.out(), type, err);
            rc = 0;
        } catch (IllegalArgumentException e) {
            if (!e.getMessage().isEmpty()) {
                err.println("error: " + e.getMessage());
            }
            err.print(USAGE);
            rc = 2;
        } catch (NoSuchFileException e) {
            err.println("error: no such file: " + e.getMessage());
            rc = 1;
        } catch (IOException | RuntimeException e) {
            err.println("error: " + e.getMessage());
            rc = 1;
        }
        System.exit(rc);
    }

    /**
     * Converts {@code hfDir} to {@code out}, reporting progress and tokenizer caveats to {@code log}.
     *
     * @throws IOException for unreadable or unsupported checkpoints
     */
    public static void convert(Path hfDir, Path out, OutputType type, PrintStream log) throws IOException {
        if (!Files.isDirectory(hfDir)) {
            throw new IOException(hfDir + " is not a directory");
        }
        HfLlamaConfig config = HfLlamaConfig.read(hfDir.resolve("config.json"));
        try (SafetensorsReader st = SafetensorsReader.open(hfDir)) {
            SafetensorsTensor embd = embedding(st, config);
            long[] es = embd.shape();
            if (es.length != 2 || es[1] != config.hiddenSize()) {
                throw new IOException("model.embed_tokens.weight has shape " + Arrays.toString(es)
                        + ", expected [vocab, " + config.hiddenSize() + "]");
            }
            int nVocab = Math.toIntExact(es[0]);
            SpmVocab vocab = SpmVocab.read(hfDir, nVocab, config);
            vocab.warnings().forEach(w -> log.println("tokenizer: " + w));

            GgufWriter w = new GgufWriter();
            writeModelMetadata(w, config, nVocab, type, hfDir.toAbsolutePath().normalize().getFileName().toString());
            vocab.writeTo(w);
            addTensors(w, st, config, type, log);

            log.printf("writing %s (%d tensors, %s)%n", out, w.tensorInfos().size(), type.name().toLowerCase(Locale.ROOT));
            w.write(out);
            log.printf("done: %.1f MiB%n", Files.size(out) / (1024.0 * 1024.0));
        }
    }

    /**
     * The token embedding. With tied weights a checkpoint may hold only {@code lm_head.weight}
     * (tinystories656k does, naming the embedding as its alias in {@code __metadata__}).
     */
    private static SafetensorsTensor embedding(SafetensorsReader st, HfLlamaConfig config) throws IOException {
        Optional<SafetensorsTensor> e = st.find(EMBED);
        if (e.isEmpty() && config.tieWordEmbeddings()) {
            e = st.find(LM_HEAD);
        }
        return e.orElseThrow(() -> new IOException("the checkpoint has no " + EMBED));
    }

    /** The keys upstream's LlamaModel writes (see conversion/llama.py and base.py). */
    private static void writeModelMetadata(GgufWriter w, HfLlamaConfig c, int nVocab, OutputType type, String name) {
        String a = "llama";
        w.putString("general.architecture", a);
        w.putString("general.name", name);
        w.putUInt32("general.file_type", type.fileType());
        w.putUInt32("general.quantization_version", 2);
        w.putUInt32(a + ".vocab_size", nVocab);
        w.putUInt32(a + ".context_length", c.contextLength());
        w.putUInt32(a + ".embedding_length", c.hiddenSize());
        w.putUInt32(a + ".block_count", c.numLayers());
        w.putUInt32(a + ".feed_forward_length", c.intermediateSize());
        w.putUInt32(a + ".attention.head_count", c.numHeads());
        w.putUInt32(a + ".attention.head_count_kv", c.numKvHeads());
        w.putFloat32(a + ".rope.freq_base", (float) c.ropeTheta());
        w.putFloat32(a + ".attention.layer_norm_rms_epsilon", (float) c.rmsNormEps());
        w.putUInt32(a + ".rope.dimension_count", c.headDim());
        if (c.headDimExplicit()) {
            w.putUInt32(a + ".attention.key_length", c.headDim());
            w.putUInt32(a + ".attention.value_length", c.headDim());
        }
        c.ropeScaling().ifPresent(f -> {
            w.putString(a + ".rope.scaling.type", "linear");
            w.putFloat32(a + ".rope.scaling.factor", f.floatValue());
        });
    }

    private record Planned(SafetensorsTensor source, LlamaTensorNames.Target target) {
    }

    private static void addTensors(GgufWriter w, SafetensorsReader st, HfLlamaConfig config, OutputType type,
                                   PrintStream log) throws IOException {
        List<Planned> plan = new ArrayList<>();
        for (Map.Entry<String, SafetensorsTensor> e : st.tensors().entrySet()) {
            Optional<LlamaTensorNames.Target> target;
            try {
                target = LlamaTensorNames.map(e.getKey());
            } catch (IllegalArgumentException ex) {
                throw new IOException(ex.getMessage() + " in the checkpoint");
            }
            if (target.isEmpty()) {
                continue;
            }
            if (e.getKey().equals(LM_HEAD) && config.tieWordEmbeddings()) {
                if (st.find(EMBED).isPresent()) {
                    // llama.cpp uses token_embd for the output when output.weight is absent
                    continue;
                }
                target = LlamaTensorNames.map(EMBED);
            }
            if (target.get().block() >= config.numLayers() && target.get().block() != Integer.MAX_VALUE) {
                throw new IOException(e.getKey() + " is beyond num_hidden_layers = " + config.numLayers());
            }
            plan.add(new Planned(e.getValue(), target.get()));
        }
        plan.sort(Comparator.comparingInt((Planned p) -> p.target().block()).thenComparingInt(p -> p.target().order()));
        checkComplete(plan, config);

        for (Planned p : plan) {
            SafetensorsTensor t = p.source();
            if (!t.dtype().isReadableAsFloat()) {
                throw new IOException(t.name() + " is " + t.dtype() + "; only F32, F16, BF16 and F64 checkpoints are supported");
            }
            long[] shape = t.ggmlShape();
            GgmlType ggml = type.typeFor(shape);
            if (shape.length >= 2 && ggml != type.matrixType()) {
                log.printf("%s: rows of %d are not whole %s blocks, stored as %s%n", p.target().gguf(), shape[0], type.matrixType(), ggml);
            }
            TensorData data = switch (p.target().permute()) {
                case QUERY_HEADS -> RopePermutation.permuted(t, config.numHeads());
                case KV_HEADS -> RopePermutation.permuted(t, config.numKvHeads());
                case NONE -> t.asTensorData();
            };
            w.addTensor(p.target().gguf(), ggml, shape, data);
        }
    }

    /** llama.cpp refuses a model with a missing weight; saying which one here is friendlier. */
    private static void checkComplete(List<Planned> plan, HfLlamaConfig config) throws IOException {
        Set<String> have = new HashSet<>();
        plan.forEach(p -> have.add(p.target().gguf()));
        List<String> need = new ArrayList<>(List.of("token_embd.weight", "output_norm.weight"));
        for (int b = 0; b < config.numLayers(); b++) {
            need.addAll(LlamaTensorNames.requiredLayerWeights(b));
        }
        List<String> missing = need.stream().filter(n -> !have.contains(n)).toList();
        if (!missing.isEmpty()) {
            throw new IOException("the checkpoint lacks " + missing);
        }
    }
}
