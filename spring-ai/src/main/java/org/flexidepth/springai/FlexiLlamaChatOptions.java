package org.flexidepth.springai;

import org.flexidepth.llama.ChatRequest;
import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.model.tool.DefaultToolCallingChatOptions;
import org.springframework.ai.tool.ToolCallback;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Spring AI's tool-calling chat options with the library's tool choice, which Spring AI's portable
 * options lack: {@link ChatRequest.ToolChoice#REQUIRED} constrains the reply to a call of one of
 * the tools, {@code NONE} to text. Tools themselves come through {@code ChatClient.tools(...)} as
 * for any provider; unset values fall back to the chat model's default generation options.
 */
public final class FlexiLlamaChatOptions extends DefaultToolCallingChatOptions {
    private final ChatRequest.ToolChoice toolChoice;

    private FlexiLlamaChatOptions(List<ToolCallback> toolCallbacks, Map<String, Object> toolContext, String model, Double frequencyPenalty,
                                  Integer maxTokens, Double presencePenalty, List<String> stopSequences, Double temperature, Integer topK,
                                  Double topP, ChatRequest.ToolChoice toolChoice) {
        super(toolCallbacks, toolContext, model, frequencyPenalty, maxTokens, presencePenalty, stopSequences, temperature, topK, topP);
        this.toolChoice = toolChoice;
    }

    /** {@return the tool choice; empty: the model decides (auto)} */
    public Optional<ChatRequest.ToolChoice> toolChoice() {
        return Optional.ofNullable(toolChoice);
    }

    /** {@return a builder with nothing set} */
    public static Builder builder() {
        return new Builder();
    }

    @Override
    public Builder mutate() {
        Builder b = new Builder();
        b.model(getModel()).frequencyPenalty(getFrequencyPenalty()).maxTokens(getMaxTokens()).presencePenalty(getPresencePenalty())
                .stopSequences(getStopSequences()).temperature(getTemperature()).topK(getTopK()).topP(getTopP())
                .toolCallbacks(getToolCallbacks()).toolContext(getToolContext());
        b.toolChoice = toolChoice;
        return b;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof FlexiLlamaChatOptions other && super.equals(o) && toolChoice == other.toolChoice;
    }

    @Override
    public int hashCode() {
        return Objects.hash(super.hashCode(), toolChoice);
    }

    /** Builds {@link FlexiLlamaChatOptions}; combining keeps the tool choice of the options combined in. */
    public static final class Builder extends DefaultToolCallingChatOptions.Builder<Builder> {
        private ChatRequest.ToolChoice toolChoice;

        private Builder() {
        }

        /**
         * @param choice whether the reply must call a tool, may, or must not; null for auto
         * @return this builder
         */
        public Builder toolChoice(ChatRequest.ToolChoice choice) {
            this.toolChoice = choice;
            return this;
        }

        @Override
        public Builder combineWith(ChatOptions.Builder<?> other) {
            super.combineWith(other);
            if (other instanceof Builder b && b.toolChoice != null) {
                toolChoice = b.toolChoice;
            }
            return this;
        }

        @Override
        public FlexiLlamaChatOptions build() {
            return new FlexiLlamaChatOptions(toolCallbacks, toolContext, model, frequencyPenalty, maxTokens, presencePenalty, stopSequences,
                    temperature, topK, topP, toolChoice);
        }
    }
}
