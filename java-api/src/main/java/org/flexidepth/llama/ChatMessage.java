package org.flexidepth.llama;

/**
 * One message of a conversation.
 *
 * @param role    "system", "user" or "assistant" (templates may know others)
 * @param content the text
 */
public record ChatMessage(String role, String content) {
    public ChatMessage {
        if (role == null || role.isBlank()) {
            throw new InvalidArgumentException("a chat message needs a role");
        }
        if (content == null) {
            throw new InvalidArgumentException("a chat message needs content");
        }
        TextChecks.requireWellFormed(role, "the chat message role");
        TextChecks.requireWellFormed(content, "the chat message content");
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }
}
