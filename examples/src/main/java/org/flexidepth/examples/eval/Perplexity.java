package org.flexidepth.examples.eval;

import org.flexidepth.tools.DefaultModel;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.LlamaException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.llama.TokenScores;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Perplexity of a text file, in non-overlapping windows of {@code --ctx} tokens (each window read
 * from its start, every token but the first predicted), with the mean layers per token when a
 * FlexiDepth plug-in is attached.
 *
 * <pre>Perplexity --text FILE [--model M.gguf (default: flexi-demo-12L)] [--flexidepth P --tau T] [--ctx 256] [--max-windows N]</pre>
 */
public final class Perplexity {
    private Perplexity() {
    }

    /** Mean negative log-likelihood per predicted token, perplexity, and layers per token (NaN without plug-in). */
    public record Result(int windows, long predicted, double meanNll, double meanLayers) {
        public double perplexity() {
            return Math.exp(meanNll);
        }
    }

    public static Result measure(Session session, int[] tokens, int window, int maxWindows) {
        double nll = 0, layers = 0;
        long predicted = 0, layerTokens = 0;
        int windows = 0;
        for (int at = 0; at + 2 <= tokens.length && windows < maxWindows; at += window, windows++) {
            TokenScores s = session.score(Arrays.copyOfRange(tokens, at, Math.min(tokens.length, at + window)));
            for (float lp : s.logProbabilities()) {
                nll -= lp;
            }
            predicted += s.logProbabilities().length;
            if (!s.layers().isEmpty()) {
                layers += s.meanLayers() * s.layers().size();
                layerTokens += s.layers().size();
            }
        }
        return new Result(windows, predicted, nll / predicted, layerTokens == 0 ? Double.NaN : layers / layerTokens);
    }

    public static void main(String[] args) {
        Map<String, String> o = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            o.put(args[i], args[i + 1]);
        }
        if (args.length % 2 != 0 || !o.containsKey("--text")) {
            System.err.println("usage: Perplexity --text FILE [--model M.gguf] [--flexidepth P.gguf --tau T] [--ctx 256] [--max-windows N]");
            System.exit(2);
        }
        try {
            Path modelPath = o.containsKey("--model") ? Path.of(o.get("--model")) : DefaultModel.flexiDemo12L();
            int window = Integer.parseInt(o.getOrDefault("--ctx", "256"));
            int maxWindows = Integer.parseInt(o.getOrDefault("--max-windows", String.valueOf(Integer.MAX_VALUE)));
            String text = Files.readString(Path.of(o.get("--text")));
            try (LlamaModel model = LlamaModel.load(modelPath);
                 FlexiDepthPlugin plugin = o.containsKey("--flexidepth") ? model.loadFlexiDepth(Path.of(o.get("--flexidepth"))) : null;
                 Session session = model.newSession(SessionOptions.builder().contextSize(window).batchSize(window).build())) {
                if (plugin != null) {
                    session.attach(plugin, o.containsKey("--tau") ? Float.parseFloat(o.get("--tau")) : plugin.defaultThreshold());
                }
                Result r = measure(session, model.tokenize(text, false, false), window, maxWindows);
                System.out.printf("%s: %d windows of %d tokens, %d predicted tokens, perplexity %.3f%s%n", modelPath.getFileName(),
                        r.windows(), window, r.predicted(), r.perplexity(),
                        Double.isNaN(r.meanLayers()) ? "" : String.format(", %.2f layers/token", r.meanLayers()));
            }
        } catch (IOException | LlamaException | NumberFormatException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(1);
        }
    }
}
