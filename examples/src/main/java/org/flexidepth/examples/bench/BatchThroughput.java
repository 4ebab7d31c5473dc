package org.flexidepth.examples.bench;

import org.flexidepth.llama.BatchEngine;
import org.flexidepth.llama.BatchEngineOptions;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Sampling;

import org.flexidepth.gguf.GgufFile;
import org.flexidepth.gguf.GgufReader;
import org.flexidepth.gguf.GgufTensorInfo;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Aggregate decode throughput of the {@link BatchEngine} with several concurrent streams, measured
 * as upstream's {@code llama-batched-bench} measures S_TG (its tokens/s of the generation phase),
 * so that {@code examples/bench-batched.sh} can put the two side by side: PL requests of PP prompt
 * tokens each are submitted at once; the generation phase runs from the moment every request has
 * its first token (sampled from its prompt's logits, as batched-bench's prompt phase ends) to the
 * last, and holds PL x (TG - 1) decoded tokens. Each token is sampled, its log-probability and text
 * computed, as a user's request pays.
 * <p>
 * usage: {@code BatchThroughput MODEL THREADS PP TG PL[,PL...] REPETITIONS}; prints
 * {@code PL<TAB>tokens/s} per repetition. With {@code PLUGIN.gguf [TAU]} after them it measures the
 * engine without and with that FlexiDepth plug-in (its routers deciding) side by side, alternating,
 * and prints {@code PL<TAB>tokens/s without<TAB>with<TAB>ratio<TAB>layers per token<TAB>weights read}
 * per repetition: the last is the share of the base model's weight bytes the plug-in's decode steps
 * read, from the file's tensor sizes and the share of routed layers some token of a step ran (a
 * step reads a layer's Wq, Wo and FFN when any of its tokens runs it).
 */
public final class BatchThroughput {
    private BatchThroughput() {
    }

    public static void main(String[] args) {
        if (args.length < 6 || args.length > 8) {
            System.err.println("usage: BatchThroughput MODEL THREADS PP TG PL[,PL...] REPETITIONS [PLUGIN.gguf [TAU]]");
            System.exit(2);
        }
        int threads = Integer.parseInt(args[1]), pp = Integer.parseInt(args[2]), tg = Integer.parseInt(args[3]);
        int[] streams = Arrays.stream(args[4].split(",")).mapToInt(Integer::parseInt).toArray();
        int reps = Integer.parseInt(args[5]);
        try (LlamaModel model = LlamaModel.load(Path.of(args[0]));
             FlexiDepthPlugin plugin = args.length > 6 ? model.loadFlexiDepth(Path.of(args[6])) : null) {
            GenerationOptions options = GenerationOptions.builder().maxTokens(tg)
                    .sampling(Sampling.builder().temperature(0).ignoreEndOfGeneration(true).build()).build();
            for (int pl : streams) {
                BatchEngineOptions.Builder b = BatchEngineOptions.builder().slots(pl).contextPerSlot(pp + tg + 8)
                        .batchSize(Math.max(512, pl * pp)).queueCapacity(0).threads(threads);
                try (BatchEngine base = model.newBatchEngine(b.build())) {
                    run(base, model, pl, pp, options, tg); // warm-up
                    if (plugin == null) {
                        for (int r = 0; r < reps; r++) {
                            System.out.printf("%d\t%.3f%n", pl, run(base, model, pl, pp, options, tg));
                        }
                        continue;
                    }
                    float tau = args.length > 7 ? Float.parseFloat(args[7]) : plugin.defaultThreshold();
                    double maskable = maskableShare(Path.of(args[0]), plugin.routedLayers());
                    try (BatchEngine routed = model.newBatchEngine(b.flexiDepth(plugin, tau).build())) {
                        run(routed, model, pl, pp, options, tg);
                        for (int r = 0; r < reps; r++) {
                            double without = run(base, model, pl, pp, options, tg);
                            double with = run(routed, model, pl, pp, options, tg);
                            BatchEngine.Stats st = routed.stats();
                            System.out.printf("%d\t%.3f\t%.3f\t%.3f\t%.2f\t%.3f%n", pl, without, with, with / without, st.meanLayers(),
                                    1 - maskable * (1 - st.routedLayersRead()));
                        }
                    }
                }
            }
        }
    }

    /** The share of the weight bytes a decode step reads that a routed layer's skip can leave unread. */
    private static double maskableShare(Path model, List<Integer> routedLayers) {
        GgufFile f;
        try {
            f = GgufReader.readHeader(model);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        boolean tied = f.tensor("output.weight").isEmpty(); // the embedding is then the output head, read whole
        long total = 0, maskable = 0;
        for (GgufTensorInfo t : f.tensors()) {
            if (t.name().equals("token_embd.weight") && !tied) {
                continue; // a step reads only its tokens' rows
            }
            total += t.byteSize();
        }
        for (int l : routedLayers) {
            for (String w : List.of("attn_q", "attn_output", "ffn_gate", "ffn_up", "ffn_down")) {
                maskable += f.tensor("blk." + l + "." + w + ".weight").map(GgufTensorInfo::byteSize).orElse(0L);
            }
        }
        return (double) maskable / total;
    }

    private static double run(BatchEngine engine, LlamaModel model, int pl, int pp, GenerationOptions options, int tg) {
        int vocab = model.info().vocabularySize();
        long[] lastFirst = {0};
        List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
        for (int j = 0; j < pl; j++) {
            int[] prompt = new int[pp];
            for (int i = 0; i < pp; i++) {
                prompt[i] = 100 + (int) ((j * 7919L + i * 104729L) % (vocab - 200)); // distinct prompts, no special tokens
            }
            boolean[] first = {true};
            futures.add(engine.submit(prompt, options, t -> {
                if (first[0]) {
                    first[0] = false;
                    lastFirst[0] = System.nanoTime(); // the engine's thread: no race
                }
            }));
        }
        futures.forEach(CompletableFuture::join);
        long end = System.nanoTime();
        for (CompletableFuture<GenerationResult> f : futures) {
            if (f.join().tokens().size() != tg) {
                throw new IllegalStateException("a request generated " + f.join().tokens().size() + " tokens, expected " + tg);
            }
        }
        return (double) pl * (tg - 1) / ((end - lastFirst[0]) / 1e9);
    }
}
