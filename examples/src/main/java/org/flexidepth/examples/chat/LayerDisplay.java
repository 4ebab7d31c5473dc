package org.flexidepth.examples.chat;

import org.flexidepth.llama.LayerUsage;
import org.flexidepth.llama.Token;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Shows how many layers each generated token used: in a terminal, each token's background goes
 * from light blue (fewest layers) to dark blue (all layers); otherwise the text stays plain and a
 * line of numbers follows the reply. With DMTD, tokens that the decoding layers produced alone are
 * underlined (or marked {@code d}, and full-depth ones {@code F}, in a line after the reply).
 */
final class LayerDisplay {
    private final PrintStream out;
    private final boolean colour;
    private final List<Integer> layers = new ArrayList<>();
    private final StringBuilder steps = new StringBuilder();

    LayerDisplay(PrintStream out, boolean colour) {
        this.out = out;
        this.colour = colour;
    }

    /** Swatches that fit an 80-column terminal beside the label: a wrapped legend reads as two. */
    static final int LEGEND_WIDTH = 80;
    private static final String LEGEND_LABEL = "layers per token: ";

    void legend(int minLayers, int maxLayers) {
        if (!colour) {
            return;
        }
        StringBuilder line = new StringBuilder(LEGEND_LABEL);
        for (int l : legendLevels(minLayers, maxLayers)) {
            line.append(paint(" " + l + " ", l, minLayers, maxLayers));
        }
        out.println(line);
    }

    /** Every level from min to max, or evenly spaced ones from min to max where all would not fit. */
    static List<Integer> legendLevels(int min, int max) {
        int swatch = 2 + String.valueOf(max).length();
        int fit = Math.max(2, (LEGEND_WIDTH - LEGEND_LABEL.length()) / swatch);
        List<Integer> levels = new ArrayList<>();
        if (max - min + 1 <= fit) {
            for (int l = min; l <= max; l++) {
                levels.add(l);
            }
            return levels;
        }
        for (int i = 0; i < fit; i++) {
            int l = min + (int) Math.round(i * (max - min) / (double) (fit - 1));
            if (levels.isEmpty() || levels.getLast() != l) {
                levels.add(l);
            }
        }
        return levels;
    }

    void token(Token t) {
        t.step().ifPresent(s -> steps.append(steps.isEmpty() ? "" : " ").append(s == Token.Step.FULL_DEPTH ? "F" : "d"));
        if (colour && t.step().orElse(Token.Step.FULL_DEPTH) == Token.Step.DECODING_LAYERS) {
            out.print("\033[4m" + t.text() + "\033[24m");
            return;
        }
        if (t.layers().isEmpty()) {
            out.print(t.text());
            return;
        }
        LayerUsage u = t.layers().get();
        layers.add(u.layersUsed());
        out.print(colour ? paint(t.text(), u.layersUsed(), u.totalLayers() - u.routedLayers().size(), u.totalLayers()) : t.text());
    }

    /** After a reply: the numbers, when colour could not show them. */
    void endOfReply() {
        if (!colour && !layers.isEmpty()) {
            out.println();
            out.print("layers per token: " + layers.stream().map(String::valueOf).collect(Collectors.joining(" ")));
        }
        if (!colour && !steps.isEmpty()) {
            out.println();
            out.print("DMTD steps (F full depth, d decoding layers only): " + steps);
        }
        layers.clear();
        steps.setLength(0);
    }

    static String paint(String text, int used, int min, int max) {
        double f = max == min ? 1 : (used - min) / (double) (max - min);
        int r = (int) Math.round(222 - f * (222 - 8)), g = (int) Math.round(235 - f * (235 - 48)), b = (int) Math.round(247 - f * (247 - 107));
        String fg = f > 0.5 ? "97" : "30";
        return "\033[48;2;" + r + ";" + g + ";" + b + "m\033[" + fg + "m" + text + "\033[0m";
    }
}
