package org.flexidepth.springai;

import org.flexidepth.llama.ChatMessage;
import org.flexidepth.llama.ChatReply;
import org.flexidepth.llama.ChatRequest;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.Sampling;
import org.flexidepth.llama.StopReason;
import org.flexidepth.llama.Tool;
import org.flexidepth.llama.ToolCall;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.messages.Message;
import org.springframework.ai.chat.messages.ToolResponseMessage;
import org.springframework.ai.chat.metadata.ChatGenerationMetadata;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.model.Generation;
import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.model.tool.ToolCallingChatOptions;
import org.springframework.ai.tool.ToolCallback;
import org.springframework.ai.tool.definition.ToolDefinition;

import java.util.List;

/** Spring AI's prompts and responses in the library's types and back. */
final class SpringMessages {
    private SpringMessages() {
    }

    static ChatRequest request(Prompt prompt) {
        ChatRequest.Builder b = ChatRequest.builder();
        for (Message m : prompt.getInstructions()) {
            String text = m.getText() == null ? "" : m.getText();
            switch (m.getMessageType()) {
                case SYSTEM -> b.message(ChatMessage.system(text));
                case USER -> b.message(ChatMessage.user(text));
                case ASSISTANT -> {
                    AssistantMessage a = (AssistantMessage) m;
                    b.message(a.hasToolCalls()
                            ? ChatMessage.assistant(text, a.getToolCalls().stream().map(c -> new ToolCall(c.id(), c.name(), c.arguments())).toList())
                            : ChatMessage.assistant(text));
                }
                case TOOL -> ((ToolResponseMessage) m).getResponses().forEach(r ->
                        b.message(ChatMessage.toolResult(new ToolCall(r.id(), r.name(), "{}"), r.responseData())));
            }
        }
        if (prompt.getOptions() instanceof ToolCallingChatOptions o && o.getToolCallbacks() != null) {
            for (ToolCallback c : o.getToolCallbacks()) {
                ToolDefinition d = c.getToolDefinition();
                b.tool(new Tool(d.name(), d.description() == null ? "" : d.description(), d.inputSchema()));
            }
        }
        if (prompt.getOptions() instanceof FlexiLlamaChatOptions o) {
            o.toolChoice().ifPresent(b::toolChoice);
        }
        return b.build();
    }

    /** The prompt's options over the model's defaults. */
    static GenerationOptions options(Prompt prompt, GenerationOptions defaults) {
        ChatOptions o = prompt.getOptions();
        if (o == null) {
            return defaults;
        }
        GenerationOptions.Builder g = defaults.toBuilder();
        if (o.getMaxTokens() != null) {
            g.maxTokens(o.getMaxTokens());
        }
        if (o.getStopSequences() != null) {
            o.getStopSequences().forEach(g::stopString);
        }
        Sampling.Builder s = defaults.sampling().toBuilder();
        if (o.getTemperature() != null) {
            s.temperature(o.getTemperature().floatValue());
        }
        if (o.getTopP() != null) {
            s.topP(o.getTopP().floatValue());
        }
        if (o.getTopK() != null) {
            s.topK(o.getTopK());
        }
        if (o.getFrequencyPenalty() != null) {
            s.frequencyPenalty(o.getFrequencyPenalty().floatValue());
        }
        if (o.getPresencePenalty() != null) {
            s.presencePenalty(o.getPresencePenalty().floatValue());
        }
        return g.sampling(s.build()).build();
    }

    static ChatResponse response(ChatReply reply, GenerationResult r) {
        AssistantMessage.Builder<?> m = AssistantMessage.builder().content(reply.content());
        if (!reply.toolCalls().isEmpty()) {
            m.toolCalls(reply.toolCalls().stream().map(c -> new AssistantMessage.ToolCall(c.id(), "function", c.name(), c.arguments())).toList());
        }
        return new ChatResponse(List.of(new Generation(m.build(), ChatGenerationMetadata.builder().finishReason(finishReason(r, reply)).build())));
    }

    static ChatResponse chunk(String text) {
        return new ChatResponse(List.of(new Generation(new AssistantMessage(text))));
    }

    /** The end of a stream whose text went out in chunks: no text, the finish reason. */
    static ChatResponse last(ChatReply reply, GenerationResult r) {
        return new ChatResponse(List.of(new Generation(new AssistantMessage(""),
                ChatGenerationMetadata.builder().finishReason(finishReason(r, reply)).build())));
    }

    static String finishReason(GenerationResult r, ChatReply reply) {
        if (!reply.toolCalls().isEmpty()) {
            return "TOOL_CALLS";
        }
        return r.stopReason() == StopReason.MAX_TOKENS || r.stopReason() == StopReason.CONTEXT_FULL ? "LENGTH" : "STOP";
    }
}
