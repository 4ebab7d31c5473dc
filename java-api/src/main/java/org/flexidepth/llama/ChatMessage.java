package org.flexidepth.llama;

import java.util.List;
import java.util.Optional;

/**
 * One message of a conversation, as OpenAI's chat API and llama-server's chat templates see it.
 *
 * @param role       "system", "user", "assistant" or "tool" (templates may know others)
 * @param content    the text; empty for an assistant message that only calls tools
 * @param toolCalls  the tools an assistant message calls, in order; empty for other messages
 * @param toolCallId for a {@code "tool"} message, the id of the call whose result it carries
 * @param reasoning  for an assistant message of a thinking model, its reasoning text
 */
public record ChatMessage(String role, String content, List<ToolCall> toolCalls, Optional<String> toolCallId,
                          Optional<String> reasoning) {
    /**
     * Checks the message.
     *
     * @throws InvalidArgumentException if the role is null or blank, the content is null, a tool
     *         call is null, or a text holds an unpaired UTF-16 surrogate
     */
    public ChatMessage {
        if (role == null || role.isBlank()) {
            throw new InvalidArgumentException("a chat message needs a role");
        }
        if (content == null) {
            throw new InvalidArgumentException("a chat message needs content");
        }
        if (toolCalls == null || toolCalls.stream().anyMatch(java.util.Objects::isNull)) {
            throw new InvalidArgumentException("tool calls must not be null");
        }
        toolCalls = List.copyOf(toolCalls);
        toolCallId = toolCallId == null ? Optional.empty() : toolCallId;
        reasoning = reasoning == null ? Optional.empty() : reasoning;
        TextChecks.requireWellFormed(role, "the chat message role");
        TextChecks.requireWellFormed(content, "the chat message content");
        reasoning.ifPresent(r -> TextChecks.requireWellFormed(r, "the chat message reasoning"));
    }

    /**
     * A message of text only.
     *
     * @param role    the role
     * @param content the text
     */
    public ChatMessage(String role, String content) {
        this(role, content, List.of(), Optional.empty(), Optional.empty());
    }

    /**
     * A {@code "system"} message: instructions that frame the conversation.
     *
     * @param content the text, may be empty
     * @return the message
     */
    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    /**
     * A {@code "user"} message.
     *
     * @param content the text, may be empty
     * @return the message
     */
    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    /**
     * An {@code "assistant"} message: a reply of the model.
     *
     * @param content the text, may be empty
     * @return the message
     */
    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }

    /**
     * An {@code "assistant"} message that calls tools, as a {@link ChatReply} carries them.
     *
     * @param content   the text beside the calls, may be empty
     * @param toolCalls the calls, at least one
     * @return the message
     */
    public static ChatMessage assistant(String content, List<ToolCall> toolCalls) {
        return new ChatMessage("assistant", content, toolCalls, Optional.empty(), Optional.empty());
    }

    /**
     * A {@code "tool"} message: the result of a tool call, sent back to the model.
     *
     * @param call   the call answered
     * @param result the result as text (often JSON)
     * @return the message
     */
    public static ChatMessage toolResult(ToolCall call, String result) {
        return new ChatMessage("tool", result, List.of(), Optional.of(call.id()), Optional.empty());
    }
}
