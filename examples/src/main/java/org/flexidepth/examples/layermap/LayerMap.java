package org.flexidepth.examples.layermap;

import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.Generation;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.LayerUsage;
import org.flexidepth.llama.LlamaException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
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
 * For a list of prompts (one per line of a file), generates with a FlexiDepth plug-in and writes
 * where each token spent its layers: {@code layer-map.html}, a page to look at, and
 * {@code layer-map.jsonl}, one row per token, in the spirit of the paper's layer allocation data.
 *
 * <pre>LayerMap --model M.gguf --flexidepth P.gguf --prompts prompts.txt --out DIR [--tau T] [--max-tokens N]</pre>
 */
public final class LayerMap {
    private LayerMap() {
    }

    public static void main(String[] args) {
        Map<String, String> o = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            o.put(args[i], args[i + 1]);
        }
        if (args.length % 2 != 0 || !o.keySet().containsAll(List.of("--model", "--flexidepth", "--prompts", "--out"))) {
            System.err.println("usage: LayerMap --model M.gguf --flexidepth P.gguf --prompts prompts.txt --out DIR [--tau T] [--max-tokens N]");
            System.exit(2);
        }
        try {
            List<String> prompts = Files.readAllLines(Path.of(o.get("--prompts")), StandardCharsets.UTF_8).stream()
                    .filter(l -> !l.isBlank()).toList();
            Path out = Path.of(o.get("--out"));
            write(Path.of(o.get("--model")), Path.of(o.get("--flexidepth")), prompts,
                    o.containsKey("--tau") ? Float.parseFloat(o.get("--tau")) : Float.NaN,
                    Integer.parseInt(o.getOrDefault("--max-tokens", "48")), out);
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
                        records.add(new TokenRecord(p, i, false, promptTokens[i], pieces.get(i), promptUsage.get(i)));
                    }
                    int pos = promptTokens.length;
                    while (g.hasNext()) {
                        Token t = g.next();
                        if (t.layers().isPresent()) {
                            records.add(new TokenRecord(p, pos++, true, t.id(), t.text(), t.layers().get()));
                        }
                    }
                }
            }
        }
        Files.createDirectories(outDir);
        StringBuilder jsonl = new StringBuilder();
        records.forEach(r -> jsonl.append(r.toJson()).append('\n'));
        Files.writeString(outDir.resolve("layer-map.jsonl"), jsonl, StandardCharsets.UTF_8);
        Files.writeString(outDir.resolve("layer-map.html"),
                LayerMapPage.render("FlexiDepth layer map: " + model.getFileName(), prompts, records, routed, layers), StandardCharsets.UTF_8);
    }
}
