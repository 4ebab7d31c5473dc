package org.flexidepth.llama;

import java.util.List;

/**
 * Layer usage over the generated tokens of a generation.
 *
 * @param meanLayers   mean layers used per token
 * @param minLayers    fewest layers a token used
 * @param maxLayers    most layers a token used
 * @param routedLayers the routed layers, ascending
 * @param runRates     for each routed layer, the fraction of tokens that ran it
 */
public record LayerStats(double meanLayers, int minLayers, int maxLayers, List<Integer> routedLayers, List<Double> runRates) {
    /** Creates the statistics, copying the lists into unmodifiable ones. */
    public LayerStats {
        routedLayers = List.copyOf(routedLayers);
        runRates = List.copyOf(runRates);
    }

    /** Aggregates per-token usages; empty input gives zeros. */
    static LayerStats of(List<LayerUsage> usages, List<Integer> routedLayers) {
        int n = usages.size();
        double sum = 0;
        int min = Integer.MAX_VALUE, max = 0;
        double[] ran = new double[routedLayers.size()];
        for (LayerUsage u : usages) {
            sum += u.layersUsed();
            min = Math.min(min, u.layersUsed());
            max = Math.max(max, u.layersUsed());
            for (int i = 0; i < ran.length; i++) {
                ran[i] += u.ran(i) ? 1 : 0;
            }
        }
        List<Double> rates = java.util.Arrays.stream(ran).mapToObj(r -> n == 0 ? 0.0 : r / n).toList();
        return new LayerStats(n == 0 ? 0 : sum / n, n == 0 ? 0 : min, max, routedLayers, rates);
    }
}
