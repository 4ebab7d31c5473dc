package org.flexidepth.llama;

/**
 * A finished chat reply: parsed by the template's parser, and the generation that produced it.
 *
 * @param reply      the content, reasoning and tool calls
 * @param generation the generated tokens, text (special tokens the parser reads included), stop reason and timings
 */
public record ChatResult(ChatReply reply, GenerationResult generation) {
}
