package org.flexidepth.llama;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A multi-turn chat on a session. Each turn renders the whole history with the chat template;
 * the session's cache already holds all but the newest message, so only that is evaluated.
 */
public final class Conversation {
    private final Session session;
    private final Optional<String> templateName;
    private final List<ChatMessage> messages;

    Conversation(Session session, Optional<String> templateName, List<ChatMessage> history) {
        session.checkUsable();
        this.session = session;
        this.templateName = templateName;
        this.messages = new ArrayList<>(history);
        // Fail now, not on the first message, if there is no usable template.
        session.model().applyChatTemplate(List.of(ChatMessage.user("")), true, templateName);
    }

    /** {@return the messages so far, replies included once their generation has finished} */
    public List<ChatMessage> messages() {
        return List.copyOf(messages);
    }

    /**
     * Sends a user message; the reply is streamed by the returned generation and added to the history when it ends.
     *
     * @param userMessage the user's text
     * @param options     limits, stop strings and sampling of the reply
     * @return the running generation of the reply; close it when done
     * @throws ContextFullException if the rendered history does not fit the session's context
     */
    public Generation send(String userMessage, GenerationOptions options) {
        List<ChatMessage> next = new ArrayList<>(messages);
        next.add(ChatMessage.user(userMessage));
        String prompt = session.model().applyChatTemplate(next, true, templateName);
        int[] tokens = session.model().tokenize(prompt, true, true);
        Generation g = session.generate(tokens, options, result -> {
            messages.add(ChatMessage.user(userMessage));
            messages.add(ChatMessage.assistant(result.text().strip()));
        });
        return g;
    }

    /**
     * Sends a user message and waits for the whole reply.
     *
     * @param userMessage the user's text
     * @param options     limits, stop strings and sampling of the reply
     * @return the finished reply, already added to {@link #messages()}
     * @throws ContextFullException if the rendered history does not fit the session's context
     */
    public GenerationResult ask(String userMessage, GenerationOptions options) {
        try (Generation g = send(userMessage, options)) {
            return g.result();
        }
    }
}
