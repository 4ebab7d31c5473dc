package org.flexidepth.examples.layermap;

import java.util.List;
import java.util.Locale;

/**
 * Renders a layer map as one self-contained HTML page (no external files or scripts): every token
 * shaded from light blue (fewest layers) to dark blue (all layers), a legend, and a bar chart of
 * each routed layer's run rate over the generated tokens.
 */
final class LayerMapPage {
    private LayerMapPage() {
    }

    /** optionalLayers: the routed layers (FlexiDepth) or the thinking layers (DMTD), as {@code kind} names them. */
    static String render(String title, List<String> prompts, List<TokenRecord> tokens, String kind, List<Integer> routedLayers,
                         int totalLayers) {
        int minLayers = totalLayers - routedLayers.size();
        StringBuilder h = new StringBuilder();
        h.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").append(esc(title)).append("</title>\n")
                .append("<style>\n")
                .append("body{font-family:system-ui,sans-serif;margin:2em;max-width:60em;color:#111}\n")
                .append(".text{font-family:ui-monospace,monospace;line-height:1.9;white-space:pre-wrap}\n")
                .append(".tok{padding:0.1em 0;border-radius:2px}\n.prompt{text-decoration:underline dotted #888}\n")
                .append(".legend span{display:inline-block;padding:0.2em 0.6em;font-family:ui-monospace,monospace}\n")
                .append("section{margin-bottom:1.5em}\nh2{font-size:1em;color:#444}\n")
                .append("</style></head><body>\n<h1>").append(esc(title)).append("</h1>\n");
        h.append("<p>Each token is shaded by the number of layers it went through (prompt tokens are underlined). ")
                .append(kind).append(": ").append(routedLayers).append(" of ").append(totalLayers).append(".</p>\n");
        h.append("<div class=\"legend\" id=\"legend\">layers used: ");
        for (int l = minLayers; l <= totalLayers; l++) {
            h.append("<span style=\"").append(style(l, minLayers, totalLayers)).append("\">").append(l).append("</span>");
        }
        h.append("</div>\n");
        for (int p = 0; p < prompts.size(); p++) {
            h.append("<section><h2>Prompt ").append(p).append("</h2><div class=\"text\">");
            for (TokenRecord t : tokens) {
                if (t.promptId() != p) {
                    continue;
                }
                h.append("<span class=\"tok").append(t.generated() ? "" : " prompt").append("\" style=\"")
                        .append(style(t.layersUsed(), minLayers, totalLayers)).append("\" title=\"")
                        .append(t.layersUsed()).append(" layers; skipped ").append(t.skippedLayers())
                        .append("\" data-layers=\"").append(t.layersUsed()).append("\">")
                        .append(esc(t.text())).append("</span>");
            }
            h.append("</div></section>\n");
        }
        h.append("<h2>Run rate of each of the ").append(esc(kind.toLowerCase(Locale.ROOT))).append(" (generated tokens)</h2>\n").append(chart(tokens, routedLayers));
        // A self-check a browser fills in when it lays the page out: what is visibly rendered, in
        // data attributes of the body that tests read from the DOM and readers never see.
        h.append("<script>\n")
                .append("window.addEventListener('load',()=>{const vis=e=>{const r=e.getBoundingClientRect();return r.width>0&&r.height>0;};\n")
                .append("const toks=[...document.querySelectorAll('.tok')].filter(vis).length;\n")
                .append("const bars=[...document.querySelectorAll('#chart rect.bar')].filter(e=>e.getBBox().height>0).length;\n")
                .append("document.body.dataset.renderedTokens=toks;document.body.dataset.renderedBars=bars;});\n")
                .append("</script>\n</body></html>\n");
        return h.toString();
    }

    private static String chart(List<TokenRecord> tokens, List<Integer> routedLayers) {
        int w = 60, gap = 20, height = 200, top = 20, bottom = 40;
        int width = routedLayers.size() * (w + gap) + gap;
        StringBuilder s = new StringBuilder();
        s.append("<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"").append(width).append("\" height=\"")
                .append(height + top + bottom).append("\" role=\"img\" aria-label=\"run rate per routed layer\">\n");
        s.append("<line x1=\"0\" y1=\"").append(top + height).append("\" x2=\"").append(width).append("\" y2=\"").append(top + height)
                .append("\" stroke=\"#444\"/>\n");
        List<TokenRecord> generated = tokens.stream().filter(TokenRecord::generated).toList();
        for (int i = 0; i < routedLayers.size(); i++) {
            final int k = i;
            double rate = generated.isEmpty() ? 0 : generated.stream().filter(t -> t.ran(k)).count() / (double) generated.size();
            int barH = (int) Math.round(rate * height);
            int x = gap + i * (w + gap);
            s.append("<rect class=\"bar\" x=\"").append(x).append("\" y=\"").append(top + height - barH).append("\" width=\"").append(w)
                    .append("\" height=\"").append(barH).append("\" fill=\"#2171b5\"><title>layer ").append(routedLayers.get(i))
                    .append(": ").append(String.format(Locale.ROOT, "%.0f%%", rate * 100)).append("</title></rect>\n");
            s.append("<text x=\"").append(x + w / 2).append("\" y=\"").append(top + height - barH - 4).append("\" text-anchor=\"middle\" font-size=\"12\">")
                    .append(String.format(Locale.ROOT, "%.0f%%", rate * 100)).append("</text>\n");
            s.append("<text x=\"").append(x + w / 2).append("\" y=\"").append(top + height + 16).append("\" text-anchor=\"middle\" font-size=\"12\">L")
                    .append(routedLayers.get(i)).append("</text>\n");
        }
        return s.append("</svg>\n").toString();
    }

    /** Light blue for the fewest layers to dark blue for all, with readable text on both. */
    static String style(int used, int min, int max) {
        double f = max == min ? 1 : (used - min) / (double) (max - min);
        int r = (int) Math.round(222 - f * (222 - 8)), g = (int) Math.round(235 - f * (235 - 48)), b = (int) Math.round(247 - f * (247 - 107));
        return "background:rgb(" + r + "," + g + "," + b + ");color:" + (f > 0.5 ? "#fff" : "#000");
    }

    static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
