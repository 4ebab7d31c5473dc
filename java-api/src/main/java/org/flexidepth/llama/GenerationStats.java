package org.flexidepth.llama;

import java.time.Duration;
import java.util.Optional;

/**
 * Counts and timings of one generation.
 *
 * @param promptTokens     tokens in the prompt
 * @param reusedTokens     prompt tokens found already in the session's cache and not evaluated again
 * @param generatedTokens  tokens generated
 * @param promptTime       time spent evaluating the prompt tokens that were not reused
 * @param generationTime   time spent generating
 * @param layers           with a FlexiDepth plug-in attached: layers per generated token and run rates
 */
public record GenerationStats(int promptTokens, int reusedTokens, int generatedTokens, Duration promptTime,
                              Duration generationTime, Optional<LayerStats> layers) {

    /** {@return prompt tokens evaluated per second (reused tokens excluded)} */
    public double promptTokensPerSecond() {
        return rate(promptTokens - reusedTokens, promptTime);
    }

    /** {@return generated tokens per second} */
    public double generationTokensPerSecond() {
        return rate(generatedTokens, generationTime);
    }

    private static double rate(int tokens, Duration d) {
        return d.isZero() ? 0 : tokens * 1e9 / d.toNanos();
    }

    @Override
    public String toString() {
        return String.format("prompt %d tokens (%d reused) at %.1f tok/s, generated %d tokens at %.1f tok/s",
                promptTokens, reusedTokens, promptTokensPerSecond(), generatedTokens, generationTokensPerSecond())
                + layers.map(l -> String.format(", %.1f layers/token (%d-%d)", l.meanLayers(), l.minLayers(), l.maxLayers())).orElse("");
    }
}
