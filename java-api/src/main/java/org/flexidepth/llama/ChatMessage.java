package org.flexidepth.llama;

/**
 * One message of a conversation.
 *
 * @param role    "system", "user" or "assistant" (templates may know others)
 * @param content the text
 */
public record ChatMessage(String role, String content) {
    /**
     * Checks the message.
     *
     * @throws InvalidArgumentException if the role is null or blank, the content is null, or either
     *         holds an unpaired UTF-16 surrogate
     */
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
}
