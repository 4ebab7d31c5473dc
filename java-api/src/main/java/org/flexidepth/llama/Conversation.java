package org.flexidepth.llama;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A multi-turn chat on a session. Each turn renders the whole history with the chat template (the
 * model's Jinja template through upstream's template engine, as llama-server renders it, unless
 * {@link ConversationOptions#template()} names another); the session's cache already holds all but
 * the newest message, so only that is evaluated. What users write is tokenized as plain text, so
 * special-token text in a message never becomes a control token. Not thread-safe: one caller at a
 * time, as its session.
 */
public final class Conversation {
    private final Session session;
    private final ConversationOptions options;
    private final Optional<ChatTemplate> template;
    private List<ChatMessage> messages;

    Conversation(Session session, ConversationOptions options) {
        session.checkUsable();
        LlamaModel model = session.model();
        this.session = session;
        this.options = options;
        this.messages = new ArrayList<>(options.history());
        if (options.template().isEmpty() && model.info().chatTemplate().isEmpty()) {
            throw new InvalidArgumentException("model " + model.path().getFileName()
                    + " has no chat template; name one (e.g. \"chatml\") in the conversation's options");
        }
        this.template = options.jinja() ? Optional.of(model.sharedChatTemplate(options.template())) : Optional.empty();
        // Fail now, not on the first message, if the template cannot render.
        render(List.of(ChatMessage.user("")));
    }

    /** {@return the messages so far, replies included once their generation has finished} */
    public List<ChatMessage> messages() {
        return List.copyOf(messages);
    }

    /** {@return how the conversation renders its messages} */
    public ConversationOptions options() {
        return options;
    }

    /**
     * Sends a user message; the reply is streamed by the returned generation and added to the
     * history when it ends. With {@link ConversationOptions#dropOldestTurns()} the oldest turns are
     * left out of the history first if the reply would not fit; they leave {@link #messages()} when
     * the reply ends.
     *
     * @param userMessage the user's text
     * @param options     limits, stop strings and sampling of the reply
     * @return the running generation of the reply; close it when done
     * @throws ContextFullException if the rendered history does not fit the session's context
     */
    public Generation send(String userMessage, GenerationOptions options) {
        ChatMessage user = ChatMessage.user(userMessage);
        List<ChatMessage> kept = new ArrayList<>(messages);
        Rendering r = render(with(kept, user));
        while (this.options.dropOldestTurns() && r.tokens().length + options.maxTokens() > session.contextSize()
                && dropOldestTurn(kept)) {
            r = render(with(kept, user));
        }
        List<ChatMessage> sent = with(kept, user);
        if (r.prompt().isPresent()) {
            ChatPrompt p = r.prompt().get();
            return session.generate(p, options, result -> finish(sent, p.template().parse(p, result).toMessage()));
        }
        return session.generate(r.tokens(), options, result -> finish(sent, ChatMessage.assistant(result.text().strip())));
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

    private void finish(List<ChatMessage> sent, ChatMessage reply) {
        List<ChatMessage> next = new ArrayList<>(sent);
        next.add(reply);
        messages = next;
    }

    /** A rendered history: its tokens and, for a Jinja template, the rendering that parses the reply. */
    private record Rendering(int[] tokens, Optional<ChatPrompt> prompt) {
    }

    private Rendering render(List<ChatMessage> history) {
        if (template.isPresent()) {
            ChatPrompt p = template.get().render(ChatRequest.of(history));
            return new Rendering(p.tokens(), Optional.of(p));
        }
        LlamaModel model = session.model();
        Optional<String> name = options.template();
        String text = model.applyChatTemplate(history, true, name);
        return new Rendering(ChatTokenizer.tokenize(model, history, text, h -> model.applyChatTemplate(h, true, name)),
                Optional.empty());
    }

    /** Removes the first turn after the leading system messages; false if there is none. */
    private static boolean dropOldestTurn(List<ChatMessage> history) {
        int first = 0;
        while (first < history.size() && history.get(first).role().equals("system")) {
            first++;
        }
        if (first == history.size()) {
            return false;
        }
        int end = first + 1;
        while (end < history.size() && !history.get(end).role().equals("user")) {
            end++;
        }
        history.subList(first, end).clear();
        return true;
    }

    private static List<ChatMessage> with(List<ChatMessage> history, ChatMessage message) {
        List<ChatMessage> out = new ArrayList<>(history);
        out.add(message);
        return out;
    }
}
