package org.flexidepth.llama;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * How a {@link Conversation} renders its messages and what it does when they outgrow the context.
 * Immutable; {@link #builder()}.
 *
 * @param template        the model's own template when empty; otherwise Jinja source, run by
 *                        upstream's template engine as llama-server runs it, or the name of one of
 *                        llama.cpp's built-in templates ("chatml", "llama3", ...)
 * @param history         the messages the conversation starts with (a system prompt, earlier turns)
 * @param dropOldestTurns when a reply of {@link GenerationOptions#maxTokens()} tokens would not fit
 *                        the context, leave out the oldest turns (a user message and the replies
 *                        to it; system messages stay) until it fits, instead of running out of room
 */
public record ConversationOptions(Optional<String> template, List<ChatMessage> history, boolean dropOldestTurns) {
    /** The model's own template, no history, nothing dropped. */
    public static final ConversationOptions DEFAULT = builder().build();

    /**
     * Checks the options.
     *
     * @throws InvalidArgumentException if an element is null or the template is blank
     */
    public ConversationOptions {
        if (template == null || template.isPresent() && template.get().isBlank()) {
            throw new InvalidArgumentException("the chat template must not be blank");
        }
        if (history == null || history.stream().anyMatch(java.util.Objects::isNull)) {
            throw new InvalidArgumentException("the history must not be or hold null");
        }
        history = List.copyOf(history);
    }

    /** {@return whether {@link #template()} is Jinja source rather than a built-in template's name} */
    boolean jinja() {
        return template.isEmpty() || template.get().contains("{{") || template.get().contains("{%");
    }

    /** {@return a builder with the defaults} */
    public static Builder builder() {
        return new Builder();
    }

    /** Builds {@link ConversationOptions}. */
    public static final class Builder {
        private Optional<String> template = Optional.empty();
        private final List<ChatMessage> history = new ArrayList<>();
        private boolean dropOldestTurns;

        private Builder() {
        }

        /**
         * Sets the chat template.
         *
         * @param template Jinja source or a built-in template's name; default the model's own
         * @return this builder
         */
        public Builder template(String template) {
            this.template = Optional.ofNullable(template);
            return this;
        }

        /**
         * Adds a message the conversation starts with.
         *
         * @param message a message the conversation starts with, after those added before
         * @return this builder
         */
        public Builder message(ChatMessage message) {
            history.add(message);
            return this;
        }

        /**
         * Adds messages the conversation starts with.
         *
         * @param messages messages the conversation starts with, after those added before
         * @return this builder
         */
        public Builder history(List<ChatMessage> messages) {
            history.addAll(messages);
            return this;
        }

        /**
         * Sets whether the oldest turns are left out when a reply would not fit.
         *
         * @param drop whether the oldest turns are left out when a reply would not fit; default false
         * @return this builder
         */
        public Builder dropOldestTurns(boolean drop) {
            this.dropOldestTurns = drop;
            return this;
        }

        /**
         * Builds the options.
         *
         * @return the options
         * @throws InvalidArgumentException as {@link ConversationOptions#ConversationOptions}
         */
        public ConversationOptions build() {
            return new ConversationOptions(template, history, dropOldestTurns);
        }
    }
}
