package org.flexidepth.examples.eval;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * The results of {@link FlexiDepthEvaluation}: perplexity against layers used for the base model,
 * the trained plug-ins and the static baselines; the comparison at equal layers; layers used per
 * task. Written as JSON (for programs) and as one self-contained HTML page with SVG charts.
 */
public final class EvaluationReport {
    /** A perplexity measurement on one evaluation text. */
    public record Point(String method, String label, String dataset, double layers, double perplexity) {
    }

    /**
     * One plug-in on one task: mean layers per generated token (greedy), mean layers per token of
     * the reference answer read after the prompt (teacher forcing), and exact matches where checkable.
     */
    public record TaskResult(String label, String task, String description, int prompts, long tokens, double meanLayers,
                             double referenceLayers, Optional<Double> exactMatch) {
    }

    /** A FlexiDepth point next to the baselines' perplexity interpolated at its layers. */
    public record Comparison(String label, String dataset, double layers, double flexidepth, double shortGpt, double earlyExit) {
        public boolean flexidepthLowest() {
            return flexidepth < shortGpt && flexidepth < earlyExit;
        }
    }

    /**
     * A plug-in of a routed-skip family on one text: layers used per token (routed layers run, plus
     * the unrouted), layer equivalents per token (SkipCost: what the skipped layers still read) and
     * perplexity. Family {@code base} is the base model, {@code kv_dropped} a FlexiDepth plug-in
     * run with its skipped tokens' K/V unseen, not retrained (the paper's ablation).
     */
    public record FamilyPoint(String family, String label, String dataset, double layers, double layerEquivalents, double perplexity) {
    }

    /** A family point next to FlexiDepth's perplexity interpolated at the same layer equivalents. */
    public record FamilyComparison(String family, String label, String dataset, double layerEquivalents, double perplexity,
                                   double flexidepth) {
    }

    private final Map<String, Object> setup = new LinkedHashMap<>();
    private final List<Point> points = new ArrayList<>();
    private final List<FamilyPoint> familyPoints = new ArrayList<>();
    private final List<TaskResult> tasks = new ArrayList<>();
    private final Map<String, double[]> blockInfluence = new LinkedHashMap<>();

    public void setup(String key, Object value) {
        setup.put(key, value);
    }

    public void add(Point p) {
        points.add(p);
    }

    public void add(TaskResult t) {
        tasks.add(t);
    }

    public void add(FamilyPoint p) {
        familyPoints.add(p);
    }

    public List<FamilyPoint> familyPoints() {
        return List.copyOf(familyPoints);
    }

    /** Every family point but FlexiDepth's and the base model's, against FlexiDepth's curve in layer equivalents. */
    public List<FamilyComparison> familyComparisons() {
        List<FamilyComparison> out = new ArrayList<>();
        for (FamilyPoint p : familyPoints) {
            if (p.family().equals("layer") || p.family().equals("base")) {
                continue;
            }
            List<Point> flexidepth = familyPoints.stream()
                    .filter(q -> q.dataset().equals(p.dataset()) && (q.family().equals("layer") || q.family().equals("base")))
                    .map(q -> new Point(q.family(), q.label(), q.dataset(), q.layerEquivalents(), q.perplexity())).toList();
            if (!flexidepth.isEmpty()) {
                out.add(new FamilyComparison(p.family(), p.label(), p.dataset(), p.layerEquivalents(), p.perplexity(),
                        interpolate(flexidepth, p.layerEquivalents())));
            }
        }
        return out;
    }

    public void blockInfluence(String calibration, double[] bi) {
        blockInfluence.put(calibration, bi.clone());
    }

    public List<Point> points() {
        return List.copyOf(points);
    }

    public List<TaskResult> tasks() {
        return List.copyOf(tasks);
    }

    /** Perplexity of a static method at fractional layers, log-linear between its integer points. */
    static double interpolate(List<Point> curve, double layers) {
        List<Point> c = curve.stream().sorted(Comparator.comparingDouble(Point::layers)).toList();
        if (layers <= c.get(0).layers()) {
            return c.get(0).perplexity();
        }
        for (int i = 1; i < c.size(); i++) {
            Point a = c.get(i - 1), b = c.get(i);
            if (layers <= b.layers()) {
                double t = (layers - a.layers()) / (b.layers() - a.layers());
                return Math.exp(Math.log(a.perplexity()) * (1 - t) + Math.log(b.perplexity()) * t);
            }
        }
        return c.get(c.size() - 1).perplexity();
    }

    /** A static method's curve on a dataset, ending at the base model (all layers). */
    List<Point> curve(String method, String dataset) {
        return points.stream().filter(p -> p.dataset().equals(dataset)
                && (p.method().equals(method) || p.method().equals("base"))).toList();
    }

    public List<Comparison> comparisons() {
        List<Comparison> out = new ArrayList<>();
        for (Point p : points) {
            if (p.method().equals("flexidepth")) {
                out.add(new Comparison(p.label(), p.dataset(), p.layers(), p.perplexity(),
                        interpolate(curve("shortgpt", p.dataset()), p.layers()),
                        interpolate(curve("early_exit", p.dataset()), p.layers())));
            }
        }
        return out;
    }

    // ---- JSON ----

    public String toJson() {
        StringBuilder b = new StringBuilder("{\n  \"setup\": {");
        int i = 0;
        for (var e : setup.entrySet()) {
            b.append(i++ == 0 ? "\n" : ",\n").append("    ").append(str(e.getKey())).append(": ").append(value(e.getValue()));
        }
        b.append("\n  },\n  \"block_influence\": {");
        i = 0;
        for (var e : blockInfluence.entrySet()) {
            b.append(i++ == 0 ? "\n" : ",\n").append("    ").append(str(e.getKey())).append(": ").append(value(e.getValue()));
        }
        b.append("\n  },\n  \"perplexity\": [");
        i = 0;
        for (Point p : points) {
            b.append(i++ == 0 ? "\n" : ",\n").append(String.format(Locale.ROOT,
                    "    {\"method\": %s, \"label\": %s, \"dataset\": %s, \"layers_per_token\": %s, \"perplexity\": %s}",
                    str(p.method()), str(p.label()), str(p.dataset()), num(p.layers()), num(p.perplexity())));
        }
        b.append("\n  ],\n  \"equal_layers_comparison\": [");
        i = 0;
        for (Comparison c : comparisons()) {
            b.append(i++ == 0 ? "\n" : ",\n").append(String.format(Locale.ROOT,
                    "    {\"plugin\": %s, \"dataset\": %s, \"layers_per_token\": %s, \"flexidepth_perplexity\": %s, "
                            + "\"shortgpt_perplexity\": %s, \"early_exit_perplexity\": %s, \"flexidepth_lowest\": %s}",
                    str(c.label()), str(c.dataset()), num(c.layers()), num(c.flexidepth()), num(c.shortGpt()),
                    num(c.earlyExit()), c.flexidepthLowest()));
        }
        b.append("\n  ],\n  \"skip_families\": [");
        i = 0;
        for (FamilyPoint p : familyPoints) {
            b.append(i++ == 0 ? "\n" : ",\n").append(String.format(Locale.ROOT,
                    "    {\"family\": %s, \"label\": %s, \"dataset\": %s, \"layers_per_token\": %s, \"layer_equivalents_per_token\": %s, "
                            + "\"perplexity\": %s}",
                    str(p.family()), str(p.label()), str(p.dataset()), num(p.layers()), num(p.layerEquivalents()), num(p.perplexity())));
        }
        b.append("\n  ],\n  \"skip_family_comparison\": [");
        i = 0;
        for (FamilyComparison c : familyComparisons()) {
            b.append(i++ == 0 ? "\n" : ",\n").append(String.format(Locale.ROOT,
                    "    {\"family\": %s, \"label\": %s, \"dataset\": %s, \"layer_equivalents_per_token\": %s, \"perplexity\": %s, "
                            + "\"flexidepth_perplexity\": %s}",
                    str(c.family()), str(c.label()), str(c.dataset()), num(c.layerEquivalents()), num(c.perplexity()), num(c.flexidepth())));
        }
        b.append("\n  ],\n  \"tasks\": [");
        i = 0;
        for (TaskResult t : tasks) {
            b.append(i++ == 0 ? "\n" : ",\n").append(String.format(Locale.ROOT,
                    "    {\"plugin\": %s, \"task\": %s, \"description\": %s, \"prompts\": %d, \"generated_tokens\": %d, "
                            + "\"layers_per_generated_token\": %s, \"layers_per_reference_token\": %s, \"exact_match\": %s}",
                    str(t.label()), str(t.task()), str(t.description()), t.prompts(), t.tokens(), num(t.meanLayers()),
                    num(t.referenceLayers()), t.exactMatch().map(EvaluationReport::num).orElse("null")));
        }
        return b.append("\n  ]\n}\n").toString();
    }

    private static String value(Object v) {
        if (v instanceof Number n) {
            return num(n.doubleValue());
        }
        if (v instanceof double[] a) {
            StringBuilder b = new StringBuilder("[");
            for (int i = 0; i < a.length; i++) {
                b.append(i == 0 ? "" : ", ").append(num(a[i]));
            }
            return b.append("]").toString();
        }
        if (v instanceof List<?> l) {
            StringBuilder b = new StringBuilder("[");
            for (int i = 0; i < l.size(); i++) {
                b.append(i == 0 ? "" : ", ").append(value(l.get(i)));
            }
            return b.append("]").toString();
        }
        if (v instanceof Boolean bool) {
            return bool.toString();
        }
        return str(String.valueOf(v));
    }

    static String num(double d) {
        return Double.isFinite(d) ? String.format(Locale.ROOT, "%.6g", d) : "null";
    }

    static String str(String s) {
        return org.flexidepth.tools.JsonFiles.quote(s);
    }

    // ---- HTML ----

    private static final Map<String, String> COLOURS = Map.of("flexidepth", "#d62728", "shortgpt", "#1f77b4",
            "early_exit", "#2ca02c", "base", "#000000");

    public String toHtml() {
        StringBuilder h = new StringBuilder("""
                <!DOCTYPE html>
                <html lang="en"><head><meta charset="utf-8"><title>FlexiDepth on flexi-demo-12L</title>
                <style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
                .charts{display:flex;flex-wrap:wrap;gap:1.5em} figure{margin:0} figcaption{font-weight:600;margin-bottom:.3em}
                table{border-collapse:collapse;margin:1em 0} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
                th{background:#f4f4f4} td:first-child,th:first-child{text-align:left} .win{color:#d62728;font-weight:600}
                .legend span{display:inline-block;margin-right:1.2em} .sw{display:inline-block;width:1em;height:.6em;margin-right:.3em}</style>
                </head><body>
                <h1>Adaptive depth against static skipping</h1>
                """);
        h.append("<p>Perplexity (log scale) against mean layers used per token. FlexiDepth plug-ins were trained at several")
                .append(" values of alpha; the static baselines remove whole layers for every token. Lower and further left is better.</p>\n");
        h.append("<p class=legend>");
        for (String m : List.of("flexidepth", "shortgpt", "early_exit", "base")) {
            h.append("<span><i class=sw style=\"background:").append(COLOURS.get(m)).append("\"></i>").append(label(m)).append("</span>");
        }
        h.append("</p>\n<div class=charts>\n");
        for (String dataset : points.stream().map(Point::dataset).distinct().toList()) {
            h.append("<figure><figcaption>").append(escape(dataset)).append("</figcaption>").append(perplexityChart(dataset)).append("</figure>\n");
        }
        h.append("</div>\n<h2>At equal layers per token</h2>\n<table><tr><th>plug-in</th><th>text</th><th>layers/token</th>")
                .append("<th>FlexiDepth</th><th>ShortGPT</th><th>early exit</th></tr>\n");
        for (Comparison c : comparisons()) {
            h.append(String.format(Locale.ROOT, "<tr><td>%s</td><td>%s</td><td>%.2f</td><td class=\"%s\">%.1f</td><td>%.1f</td><td>%.1f</td></tr>%n",
                    escape(c.label()), escape(c.dataset()), c.layers(), c.flexidepthLowest() ? "win" : "", c.flexidepth(), c.shortGpt(), c.earlyExit()));
        }
        h.append("</table>\n<p>Baseline perplexities are interpolated (log-linearly) between their whole-layer points at the plug-in's mean layers.</p>\n");
        if (!familyPoints.isEmpty()) {
            h.append("<h2>Routed-skip families</h2>\n<p>The same routers and objective, skipping different parts of a layer:")
                    .append(" <i>layer</i> is FlexiDepth, <i>layer_no_kv</i> hides skipped tokens' K/V from later tokens, <i>attention</i>")
                    .append(" skips attention only (MindSkip; the FFN always runs), <i>ffn</i> the FFN only; <i>kv_dropped</i> is a FlexiDepth")
                    .append(" plug-in run with skipped K/V hidden, without retraining. Layer equivalents count what a skipped layer still reads")
                    .append(" (K and V, the adapter, the part of the layer the family does not skip) as a share of a layer's weights.</p>\n");
            h.append("<table><tr><th>family</th><th>plug-in</th><th>text</th><th>layers/token</th><th>layer equivalents/token</th>")
                    .append("<th>perplexity</th><th>FlexiDepth at equal equivalents</th></tr>\n");
            List<FamilyComparison> cs = familyComparisons();
            for (FamilyPoint p : familyPoints) {
                String flexidepth = cs.stream().filter(c -> c.label().equals(p.label()) && c.dataset().equals(p.dataset()) && c.family().equals(p.family()))
                        .findFirst().map(c -> String.format(Locale.ROOT, "%.1f", c.flexidepth())).orElse("");
                h.append(String.format(Locale.ROOT, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%.2f</td><td>%.2f</td><td>%.1f</td><td>%s</td></tr>%n",
                        escape(p.family()), escape(p.label()), escape(p.dataset()), p.layers(), p.layerEquivalents(), p.perplexity(), flexidepth));
            }
            h.append("</table>\n");
        }
        if (!tasks.isEmpty()) {
            h.append("<h2>Layers used per generated token, by task</h2>\n").append(taskChart())
                    .append("<p>Generated greedily after the prompt. \"Reference\" reads the reference answer after the prompt instead")
                    .append(" (teacher forcing), which measures the routers on the right answer even where the model cannot produce it.</p>\n");
            h.append("<table><tr><th>plug-in</th><th>task</th><th>prompts</th><th>generated tokens</th><th>layers/generated token</th><th>layers/reference token</th><th>exact match</th></tr>\n");
            for (TaskResult t : tasks) {
                h.append(String.format(Locale.ROOT, "<tr><td>%s</td><td>%s</td><td>%d</td><td>%d</td><td>%.2f</td><td>%.2f</td><td>%s</td></tr>%n",
                        escape(t.label()), escape(t.task()), t.prompts(), t.tokens(), t.meanLayers(), t.referenceLayers(),
                        t.exactMatch().map(x -> String.format(Locale.ROOT, "%.0f %%", 100 * x)).orElse("")));
            }
            h.append("</table>\n");
        }
        h.append("<h2>Setup</h2>\n<pre>").append(escape(toJsonSetupOnly())).append("</pre>\n</body></html>\n");
        return h.toString();
    }

    private String toJsonSetupOnly() {
        StringBuilder b = new StringBuilder();
        setup.forEach((k, v) -> b.append(k).append(": ").append(value(v)).append('\n'));
        return b.toString();
    }

    private static String label(String method) {
        return switch (method) {
            case "flexidepth" -> "FlexiDepth (trained plug-ins)";
            case "shortgpt" -> "ShortGPT layer removal";
            case "early_exit" -> "early exit";
            default -> "base model";
        };
    }

    private String perplexityChart(String dataset) {
        List<Point> ps = points.stream().filter(p -> p.dataset().equals(dataset)).toList();
        double minL = Math.floor(ps.stream().mapToDouble(Point::layers).min().orElse(0)) - 0.25;
        double maxL = Math.ceil(ps.stream().mapToDouble(Point::layers).max().orElse(1)) + 0.25;
        double minP = Math.log(ps.stream().mapToDouble(Point::perplexity).min().orElse(1)) - 0.1;
        double maxP = Math.log(ps.stream().mapToDouble(Point::perplexity).max().orElse(2)) + 0.1;
        int w = 520, hgt = 360, left = 60, bottom = 40, top = 10, right = 15;
        java.util.function.DoubleUnaryOperator x = l -> left + (l - minL) / (maxL - minL) * (w - left - right);
        java.util.function.DoubleUnaryOperator y = p -> top + (maxP - Math.log(p)) / (maxP - minP) * (hgt - top - bottom);
        StringBuilder s = new StringBuilder(String.format(Locale.ROOT,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-size=\"11\">", w, hgt));
        s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>",
                left, top, w - left - right, hgt - top - bottom));
        for (int l = (int) Math.ceil(minL); l <= maxL; l++) {
            s.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>", x.applyAsDouble(l), hgt - bottom + 14, l));
        }
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">mean layers per token</text>", (w + left) / 2, hgt - 6));
        for (double p : ticks(Math.exp(minP), Math.exp(maxP))) {
            s.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                    + "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>", left, w - right, y.applyAsDouble(p), y.applyAsDouble(p),
                    left - 4, y.applyAsDouble(p) + 4, p >= 10 ? String.format(Locale.ROOT, "%.0f", p) : String.format(Locale.ROOT, "%.1f", p)));
        }
        s.append(String.format(Locale.ROOT, "<text transform=\"translate(14,%d) rotate(-90)\" text-anchor=\"middle\">perplexity</text>", (hgt - bottom) / 2));
        for (String method : List.of("shortgpt", "early_exit", "flexidepth")) {
            List<Point> line = new ArrayList<>(method.equals("flexidepth")
                    ? ps.stream().filter(p -> p.method().equals(method)).toList() : curve(method, dataset));
            line.sort(Comparator.comparingDouble(Point::layers));
            if (line.isEmpty()) {
                continue;
            }
            StringBuilder path = new StringBuilder();
            for (Point p : line) {
                path.append(path.isEmpty() ? "M" : "L").append(String.format(Locale.ROOT, "%.1f,%.1f ", x.applyAsDouble(p.layers()), y.applyAsDouble(p.perplexity())));
            }
            s.append("<path d=\"").append(path).append("\" fill=\"none\" stroke=\"").append(COLOURS.get(method))
                    .append(method.equals("flexidepth") ? "\" stroke-width=\"2.5\"/>" : "\" stroke-width=\"1.5\" stroke-dasharray=\"5,3\"/>");
            for (Point p : line) {
                if (p.method().equals("base") && !method.equals("flexidepth")) {
                    continue;
                }
                s.append(String.format(Locale.ROOT, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"><title>%s: %.2f layers, perplexity %.1f</title></circle>",
                        x.applyAsDouble(p.layers()), y.applyAsDouble(p.perplexity()), COLOURS.get(method), escape(p.label()), p.layers(), p.perplexity()));
                if (method.equals("flexidepth")) {
                    s.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\">%s</text>",
                            x.applyAsDouble(p.layers()) + 6, y.applyAsDouble(p.perplexity()) - 6, COLOURS.get(method), escape(p.label())));
                }
            }
        }
        for (Point p : ps) {
            if (p.method().equals("base")) {
                s.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"%.1f\" width=\"8\" height=\"8\" fill=\"#000\"><title>base model: perplexity %.1f</title></rect>",
                        x.applyAsDouble(p.layers()) - 4, y.applyAsDouble(p.perplexity()) - 4, p.perplexity()));
            }
        }
        return s.append("</svg>").toString();
    }

    private static List<Double> ticks(double lo, double hi) {
        List<Double> out = new ArrayList<>();
        for (double decade = Math.pow(10, Math.floor(Math.log10(lo))); decade <= hi; decade *= 10) {
            for (double m : new double[] {1, 1.5, 2, 3, 5, 7}) {
                double v = m * decade;
                if (v >= lo && v <= hi) {
                    out.add(v);
                }
            }
        }
        return out;
    }

    private String taskChart() {
        List<String> labels = tasks.stream().map(TaskResult::label).distinct().toList();
        List<String> names = tasks.stream().map(TaskResult::task).distinct().toList();
        double max = tasks.stream().mapToDouble(TaskResult::meanLayers).max().orElse(1);
        double min = Math.max(0, Math.floor(tasks.stream().mapToDouble(TaskResult::meanLayers).min().orElse(0)) - 1);
        int barW = 22, group = Math.max(labels.size() * barW + 24, 110), left = 50, hgt = 260, bottom = 50;
        int w = left + names.size() * group + 20;
        String[] shades = {"#f4a6a6", "#e45756", "#a11d1d", "#6b0f0f"};
        StringBuilder s = new StringBuilder(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-size=\"11\">", w, hgt));
        java.util.function.DoubleUnaryOperator y = v -> 10 + (max - v) / (max - min) * (hgt - bottom - 10);
        for (int l = (int) min; l <= max; l++) {
            s.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/><text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d</text>",
                    left, w - 10, y.applyAsDouble(l), y.applyAsDouble(l), left - 4, y.applyAsDouble(l) + 4, l));
        }
        for (int n = 0; n < names.size(); n++) {
            int gx = left + n * group + 12;
            for (int k = 0; k < labels.size(); k++) {
                String lab = labels.get(k), name = names.get(n);
                Optional<TaskResult> t = tasks.stream().filter(r -> r.label().equals(lab) && r.task().equals(name)).findFirst();
                if (t.isEmpty()) {
                    continue;
                }
                double top = y.applyAsDouble(t.get().meanLayers());
                s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\"><title>%s, %s: %.2f layers</title></rect>",
                        gx + k * barW, top, barW - 2, y.applyAsDouble(min) - top, shades[k % shades.length], escape(lab), escape(name), t.get().meanLayers()));
            }
            // task names on two lines ("copy" over "xsum") so that neighbours do not overlap
            String[] words = names.get(n).split("_", 2);
            int cx = gx + labels.size() * barW / 2;
            s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>", cx, hgt - bottom + 16, escape(words[0])));
            if (words.length > 1) {
                s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>", cx, hgt - bottom + 30,
                        escape(words[1].replace('_', ' '))));
            }
        }
        StringBuilder legend = new StringBuilder("<p class=legend>");
        for (int k = 0; k < labels.size(); k++) {
            legend.append("<span><i class=sw style=\"background:").append(shades[k % shades.length]).append("\"></i>").append(escape(labels.get(k))).append("</span>");
        }
        return s.append("</svg>").append(legend).append("</p>\n").toString();
    }

    private static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }

    public void write(Path dir) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("results.json"), toJson());
        Files.writeString(dir.resolve("report.html"), toHtml());
    }
}
