package org.flexidepth.llama;

import java.util.Arrays;
import java.util.List;

/**
 * How well a model predicts a token sequence, as returned by {@link Session#score(int[])}.
 * Immutable.
 */
public final class TokenScores {
    private final int[] tokens;
    private final float[] logProbabilities;
    private final List<LayerUsage> layers;

    TokenScores(int[] tokens, float[] logProbabilities, List<LayerUsage> layers) {
        this.tokens = tokens.clone();
        this.logProbabilities = logProbabilities;
        this.layers = List.copyOf(layers);
    }

    /** {@return the scored tokens} */
    public int[] tokens() {
        return tokens.clone();
    }

    /** {@return natural log-probability of token {@code i + 1} given tokens {@code 0..i}; one fewer than the tokens} */
    public float[] logProbabilities() {
        return logProbabilities.clone();
    }

    /** {@return exp of the mean negative log-probability per predicted token} */
    public double perplexity() {
        double sum = 0;
        for (float lp : logProbabilities) {
            sum -= lp;
        }
        return Math.exp(sum / logProbabilities.length);
    }

    /** {@return with a FlexiDepth plug-in attached, each token's layer usage (empty otherwise)} */
    public List<LayerUsage> layers() {
        return layers;
    }

    /** {@return mean layers used per token, when a plug-in is attached} */
    public double meanLayers() {
        return layers.stream().mapToInt(LayerUsage::layersUsed).average().orElse(Double.NaN);
    }

    @Override
    public String toString() {
        return "TokenScores[" + tokens.length + " tokens, perplexity " + perplexity()
                + (layers.isEmpty() ? "" : ", " + meanLayers() + " layers/token") + "]";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TokenScores t && Arrays.equals(tokens, t.tokens) && Arrays.equals(logProbabilities, t.logProbabilities);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(tokens) + Arrays.hashCode(logProbabilities);
    }
}
