package org.flexidepth.examples.layermap;

import org.flexidepth.llama.Dmtd;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.Generation;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.LayerUsage;
import org.flexidepth.llama.LlamaException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.llama.Token;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * For a list of prompts (one per line of a file), generates with a FlexiDepth plug-in, or with
 * direct multi-token decoding, and writes where each token spent its layers: {@code layer-map.html},
 * a page to look at, and {@code layer-map.jsonl}, one row per token, in the spirit of the paper's
 * layer allocation data. Under DMTD a token either went through every layer (prompt, cycle head)
 * or through the decoding layers only.
 *
 * <pre>LayerMap --model M.gguf (--flexidepth P.gguf [--tau T] | --dmtd TAU [--thinking-layers N]) --prompts prompts.txt --out DIR [--max-tokens N]</pre>
 */
public final class LayerMap {
    static final String USAGE = "usage: LayerMap --model M.gguf (--flexidepth P.gguf [--tau T] | --dmtd TAU [--thinking-layers N])"
            + " --prompts prompts.txt --out DIR [--max-tokens N]";

    private LayerMap() {
    }

    public static void main(String[] args) {
        Map<String, String> o = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            o.put(args[i], args[i + 1]);
        }
        if (args.length % 2 != 0 || !o.keySet().containsAll(List.of("--model", "--prompts", "--out"))
                || o.containsKey("--flexidepth") == o.containsKey("--dmtd")) {
            System.err.println(USAGE);
            System.exit(2);
        }
        try {
            List<String> prompts = Files.readAllLines(Path.of(o.get("--prompts")), StandardCharsets.UTF_8).stream()
                    .filter(l -> !l.isBlank()).toList();
            Path out = Path.of(o.get("--out"));
            Path model = Path.of(o.get("--model"));
            int maxTokens = Integer.parseInt(o.getOrDefault("--max-tokens", "48"));
            if (o.containsKey("--dmtd")) {
                Dmtd dmtd = Dmtd.cycle(Integer.parseInt(o.get("--dmtd")));
                if (o.containsKey("--thinking-layers")) {
                    dmtd = dmtd.withThinkingLayers(Integer.parseInt(o.get("--thinking-layers")));
                }
                writeDmtd(model, dmtd, prompts, maxTokens, out);
            } else {
                write(model, Path.of(o.get("--flexidepth")), prompts,
                        o.containsKey("--tau") ? Float.parseFloat(o.get("--tau")) : Float.NaN, maxTokens, out);
            }
            System.out.println("wrote " + out.resolve("layer-map.html") + " and " + out.resolve("layer-map.jsonl"));
        } catch (IOException | LlamaException | NumberFormatException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(1);
        }
    }

    /** Generates greedily for every prompt and writes both files into {@code outDir}. NaN tau: the plug-in's. */
    public static void write(Path model, Path pluginFile, List<String> prompts, float tau, int maxTokens, Path outDir) throws IOException {
        List<TokenRecord> records = new ArrayList<>();
        List<Integer> routed;
        int layers;
        try (LlamaModel m = LlamaModel.load(model);
             FlexiDepthPlugin plugin = m.loadFlexiDepth(pluginFile);
             Session s = m.newSession()) {
            s.attach(plugin, Float.isNaN(tau) ? plugin.defaultThreshold() : tau);
            routed = plugin.routedLayers();
            layers = m.info().layers();
            GenerationOptions options = GenerationOptions.builder().maxTokens(maxTokens).build();
            for (int p = 0; p < prompts.size(); p++) {
                s.clear();
                int[] promptTokens = m.tokenize(prompts.get(p));
                try (Generation g = s.generate(promptTokens, options)) {
                    List<LayerUsage> promptUsage = g.promptLayerUsage();
                    List<String> pieces = m.tokenPieces(promptTokens);
                    for (int i = 0; i < promptTokens.length; i++) {
                        records.add(TokenRecord.routed(p, i, false, promptTokens[i], pieces.get(i), promptUsage.get(i)));
                    }
                    int pos = promptTokens.length;
                    while (g.hasNext()) {
                        Token t = g.next();
                        if (t.layers().isPresent()) {
                            records.add(TokenRecord.routed(p, pos++, true, t.id(), t.text(), t.layers().get()));
                        }
                    }
                }
            }
        }
        writeFiles(outDir, "FlexiDepth layer map: " + model.getFileName(), prompts, records, "Routed layers", routed, layers);
    }

    /** The same under direct multi-token decoding: prompts full depth, generated tokens as their step ran them. */
    public static void writeDmtd(Path model, Dmtd dmtd, List<String> prompts, int maxTokens, Path outDir) throws IOException {
        List<TokenRecord> records = new ArrayList<>();
        int layers, thinking;
        try (LlamaModel m = LlamaModel.load(model);
             Session s = m.newSession(SessionOptions.builder().dmtd(dmtd).build())) {
            layers = m.info().layers();
            // the session refused a model without a split unless the options gave one
            thinking = dmtd.thinkingLayers() > 0 ? dmtd.thinkingLayers() : Integer.parseInt(m.info().metadata().get("dmtd.thinking_layers"));
            GenerationOptions options = GenerationOptions.builder().maxTokens(maxTokens).build();
            for (int p = 0; p < prompts.size(); p++) {
                s.clear();
                int[] promptTokens = m.tokenize(prompts.get(p));
                try (Generation g = s.generate(promptTokens, options)) {
                    List<String> pieces = m.tokenPieces(promptTokens);
                    for (int i = 0; i < promptTokens.length; i++) {
                        records.add(TokenRecord.dmtd(p, i, false, promptTokens[i], pieces.get(i), layers, thinking, Token.Step.FULL_DEPTH));
                    }
                    int pos = promptTokens.length;
                    while (g.hasNext()) {
                        Token t = g.next();
                        if (t.step().isPresent()) {
                            records.add(TokenRecord.dmtd(p, pos++, true, t.id(), t.text(), layers, thinking, t.step().get()));
                        }
                    }
                }
            }
        }
        writeFiles(outDir, "DMTD layer map (cycles of " + dmtd.cycle() + "): " + model.getFileName(), prompts, records,
                "Thinking layers", java.util.stream.IntStream.range(0, thinking).boxed().toList(), layers);
    }

    private static void writeFiles(Path outDir, String title, List<String> prompts, List<TokenRecord> records, String kind,
                                   List<Integer> optional, int layers) throws IOException {
        Files.createDirectories(outDir);
        StringBuilder jsonl = new StringBuilder();
        records.forEach(r -> jsonl.append(r.toJson()).append('\n'));
        Files.writeString(outDir.resolve("layer-map.jsonl"), jsonl, StandardCharsets.UTF_8);
        Files.writeString(outDir.resolve("layer-map.html"), LayerMapPage.render(title, prompts, records, kind, optional, layers),
                StandardCharsets.UTF_8);
    }
}
