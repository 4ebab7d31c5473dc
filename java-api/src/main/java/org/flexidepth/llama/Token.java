package org.flexidepth.llama;

import java.time.Duration;

/**
 * One generated token.
 *
 * @param id             the token id in the model's vocabulary
 * @param text           the text this token adds to the output: may be empty while a multi-byte
 *                       character or a possible stop string is incomplete, and then include text
 *                       held back from earlier tokens
 * @param logProbability natural log of the token's probability under the model's raw distribution
 * @param latency        time from the previous token (or from the end of the prompt) to this one
 */
public record Token(int id, String text, float logProbability, Duration latency) {
}
