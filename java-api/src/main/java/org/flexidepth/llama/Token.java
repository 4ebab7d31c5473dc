package org.flexidepth.llama;

import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * One generated token.
 *
 * @param id             the token id in the model's vocabulary
 * @param text           the text this token adds to the output: may be empty while a multi-byte
 *                       character or a possible stop string is incomplete, and then include text
 *                       held back from earlier tokens
 * @param logProbability natural log of the token's probability under the model's raw distribution
 * @param latency        time from the previous token (or from the end of the prompt) to this one
 * @param layers         with a FlexiDepth plug-in attached, the layers this token went through
 *                       when the model read it (absent for the end token, which is never read)
 * @param alternatives   the most likely tokens at this step, most likely first, as many as
 *                       {@link GenerationOptions#topLogProbabilities()} asks (empty by default)
 * @param step           in a session with {@link Dmtd}, the kind of step whose logits this token was
 *                       sampled from; empty otherwise
 */
public record Token(int id, String text, float logProbability, Duration latency, Optional<LayerUsage> layers,
                    List<Alternative> alternatives, Optional<Step> step) {
    /** The kind of step a token of a DMTD session came from. */
    public enum Step {
        /** A prompt's last token or a cycle head: every layer. */
        FULL_DEPTH,
        /** The decoding layers only. */
        DECODING_LAYERS
    }

    /**
     * A token the model could have chosen at a step.
     *
     * @param id             the token id
     * @param text           its text (special tokens as their text)
     * @param logProbability natural log of its probability under the model's raw distribution
     */
    public record Alternative(int id, String text, float logProbability) {
    }

    /**
     * Copies the alternatives into an unmodifiable list.
     *
     * @throws NullPointerException if a component is null
     */
    public Token {
        alternatives = List.copyOf(alternatives);
        step = step == null ? Optional.empty() : step;
    }

    /**
     * A token of a session without DMTD.
     *
     * @param id             the token id
     * @param text           the text this token adds to the output
     * @param logProbability natural log of the token's probability
     * @param latency        time from the previous token
     * @param layers         the layers this token went through, with a FlexiDepth plug-in
     * @param alternatives   the most likely tokens at this step
     */
    public Token(int id, String text, float logProbability, Duration latency, Optional<LayerUsage> layers, List<Alternative> alternatives) {
        this(id, text, logProbability, latency, layers, alternatives, Optional.empty());
    }
}
