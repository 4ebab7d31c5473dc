package org.flexidepth.llama;

import java.util.List;
import java.util.Optional;

/**
 * A model's reply parsed by upstream's chat parser for its template: the text, the reasoning of
 * a thinking model, and the tools it calls.
 *
 * @param content   the reply's text, tool-call markup removed
 * @param reasoning the reasoning text, when the request asked to split it out and there was some
 * @param toolCalls the calls, in order; empty when the reply calls nothing
 */
public record ChatReply(String content, Optional<String> reasoning, List<ToolCall> toolCalls) {
    /**
     * Checks the reply.
     *
     * @throws InvalidArgumentException if a component is null
     */
    public ChatReply {
        if (content == null || reasoning == null || toolCalls == null || toolCalls.stream().anyMatch(java.util.Objects::isNull)) {
            throw new InvalidArgumentException("a chat reply's components must not be null");
        }
        toolCalls = List.copyOf(toolCalls);
    }

    /** {@return the reply as an assistant message, to append to the conversation} */
    public ChatMessage toMessage() {
        return new ChatMessage("assistant", content, toolCalls, Optional.empty(), reasoning);
    }
}
