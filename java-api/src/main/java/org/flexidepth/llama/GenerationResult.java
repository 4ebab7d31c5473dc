package org.flexidepth.llama;

import java.util.List;

/**
 * A finished generation.
 *
 * @param text       the generated text (stop strings excluded)
 * @param tokens     the generated tokens, in order
 * @param stopReason why it ended
 * @param stats      counts and timings
 */
public record GenerationResult(String text, List<Token> tokens, StopReason stopReason, GenerationStats stats) {
    /** Creates a result, copying {@code tokens} into an unmodifiable list. */
    public GenerationResult {
        tokens = List.copyOf(tokens);
    }
}
