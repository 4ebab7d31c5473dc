package org.flexidepth.llama;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A chat request as a chat template renders it: the messages, the tools the model may call and
 * how, and the reply's format. Immutable; {@link #of(List)} or {@link #builder()}.
 *
 * @param messages            the conversation so far, at least one message
 * @param tools               the tools the model may call; empty for none
 * @param toolChoice          whether the reply may, must or must not call a tool
 * @param parallelToolCalls   whether one reply may call several tools
 * @param addGenerationPrompt whether the prompt ends with the start of an assistant reply
 * @param enableThinking      for templates of thinking models: whether the model may reason first
 * @param parseReasoning      whether reasoning text (such as {@code <think>...</think>}) is split
 *                            from the reply's content into {@link ChatReply#reasoning()}
 * @param jsonSchema          a JSON schema the reply's content must be valid against, if any
 */
public record ChatRequest(List<ChatMessage> messages, List<Tool> tools, ToolChoice toolChoice, boolean parallelToolCalls,
                          boolean addGenerationPrompt, boolean enableThinking, boolean parseReasoning,
                          Optional<String> jsonSchema) {
    /** Whether the model may, must or must not call a tool. */
    public enum ToolChoice {
        /** The model decides; a call, when it starts one, follows the tool-call grammar. */
        AUTO,
        /** The reply is one or more tool calls, grammar-constrained from the first token. */
        REQUIRED,
        /** No tool calls: the tools are only described to the model. */
        NONE
    }

    /**
     * Checks the request.
     *
     * @throws InvalidArgumentException if there are no messages, an element is null, tools are
     *         required but none given, or the schema is not JSON
     */
    public ChatRequest {
        if (messages == null || messages.isEmpty() || messages.stream().anyMatch(java.util.Objects::isNull)) {
            throw new InvalidArgumentException("a chat request needs at least one message (and no null ones)");
        }
        if (tools == null || tools.stream().anyMatch(java.util.Objects::isNull) || toolChoice == null) {
            throw new InvalidArgumentException("tools and the tool choice must not be null");
        }
        if (toolChoice == ToolChoice.REQUIRED && tools.isEmpty()) {
            throw new InvalidArgumentException("tool choice REQUIRED needs at least one tool");
        }
        messages = List.copyOf(messages);
        tools = List.copyOf(tools);
        jsonSchema = jsonSchema == null ? Optional.empty() : jsonSchema;
        if (jsonSchema.isPresent() && !ChatJson.isObject(jsonSchema.get())) {
            throw new InvalidArgumentException("the JSON schema must be a JSON object, was " + jsonSchema.get());
        }
    }

    /**
     * A request of these messages with no tools, ending with the start of the assistant's reply.
     *
     * @param messages the conversation so far
     * @return the request
     */
    public static ChatRequest of(List<ChatMessage> messages) {
        return builder().messages(messages).build();
    }

    /** {@return a builder: no messages, no tools, tool choice AUTO, a generation prompt, thinking on, reasoning kept in the content} */
    public static Builder builder() {
        return new Builder();
    }

    /** {@return a builder starting from this request} */
    public Builder toBuilder() {
        Builder b = new Builder().messages(messages).tools(tools).toolChoice(toolChoice).parallelToolCalls(parallelToolCalls)
                .addGenerationPrompt(addGenerationPrompt).enableThinking(enableThinking).parseReasoning(parseReasoning);
        jsonSchema.ifPresent(b::jsonSchema);
        return b;
    }

    /** Builds {@link ChatRequest}. Not thread-safe. */
    public static final class Builder {
        private final List<ChatMessage> messages = new ArrayList<>();
        private final List<Tool> tools = new ArrayList<>();
        private ToolChoice toolChoice = ToolChoice.AUTO;
        private boolean parallelToolCalls;
        private boolean addGenerationPrompt = true;
        private boolean enableThinking = true;
        private boolean parseReasoning;
        private String jsonSchema;

        private Builder() {
        }

        /**
         * Appends a message.
         *
         * @param m the message
         * @return this builder
         */
        public Builder message(ChatMessage m) { messages.add(m); return this; }

        /**
         * Appends messages.
         *
         * @param ms the messages, in order
         * @return this builder
         */
        public Builder messages(List<ChatMessage> ms) { messages.addAll(ms); return this; }

        /**
         * Adds a tool the model may call.
         *
         * @param t the tool
         * @return this builder
         */
        public Builder tool(Tool t) { tools.add(t); return this; }

        /**
         * Adds tools the model may call.
         *
         * @param ts the tools
         * @return this builder
         */
        public Builder tools(List<Tool> ts) { tools.addAll(ts); return this; }

        /**
         * Sets whether the model may, must or must not call a tool.
         *
         * @param c the choice; default AUTO
         * @return this builder
         */
        public Builder toolChoice(ToolChoice c) { toolChoice = c; return this; }

        /**
         * Sets whether one reply may call several tools.
         *
         * @param v default false
         * @return this builder
         */
        public Builder parallelToolCalls(boolean v) { parallelToolCalls = v; return this; }

        /**
         * Sets whether the prompt ends with the start of an assistant reply.
         *
         * @param v default true
         * @return this builder
         */
        public Builder addGenerationPrompt(boolean v) { addGenerationPrompt = v; return this; }

        /**
         * Sets, for templates of thinking models, whether the model may reason before replying.
         *
         * @param v default true
         * @return this builder
         */
        public Builder enableThinking(boolean v) { enableThinking = v; return this; }

        /**
         * Sets whether reasoning text is split from the content into {@link ChatReply#reasoning()}.
         *
         * @param v default false (reasoning stays in the content, as the model wrote it)
         * @return this builder
         */
        public Builder parseReasoning(boolean v) { parseReasoning = v; return this; }

        /**
         * Sets a JSON schema the reply's content must be valid against.
         *
         * @param schema the schema as JSON text; {@code null} for none
         * @return this builder
         */
        public Builder jsonSchema(String schema) { jsonSchema = schema; return this; }

        /**
         * Creates the request.
         *
         * @return the request
         * @throws InvalidArgumentException if it is incomplete or inconsistent
         */
        public ChatRequest build() {
            return new ChatRequest(messages, tools, toolChoice, parallelToolCalls, addGenerationPrompt, enableThinking,
                    parseReasoning, Optional.ofNullable(jsonSchema));
        }
    }
}
