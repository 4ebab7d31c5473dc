package org.flexidepth.langchain4j;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.internal.JsonSchemaElementJsonUtils;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import dev.langchain4j.model.chat.request.json.JsonSchemaElement;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.TokenUsage;
import org.flexidepth.llama.ChatMessage;
import org.flexidepth.llama.ChatReply;
import org.flexidepth.llama.ChatRequest;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.Sampling;
import org.flexidepth.llama.StopReason;
import org.flexidepth.llama.Tool;
import org.flexidepth.llama.ToolCall;

import java.util.ArrayList;
import java.util.List;

/** LangChain4j's requests and responses in the library's types and back. */
final class Messages {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Messages() {
    }

    static ChatRequest request(dev.langchain4j.model.chat.request.ChatRequest r) {
        ChatRequest.Builder b = ChatRequest.builder();
        for (dev.langchain4j.data.message.ChatMessage m : r.messages()) {
            b.message(message(m));
        }
        List<ToolSpecification> tools = r.toolSpecifications() == null ? List.of() : r.toolSpecifications();
        for (ToolSpecification t : tools) {
            b.tool(new Tool(t.name(), t.description() == null ? "" : t.description(),
                    t.parameters() == null ? "{\"type\":\"object\",\"properties\":{}}" : schema(t.parameters())));
        }
        if (!tools.isEmpty() && r.toolChoice() != null) {
            b.toolChoice(switch (r.toolChoice()) {
                case REQUIRED -> ChatRequest.ToolChoice.REQUIRED;
                case NONE -> ChatRequest.ToolChoice.NONE;
                default -> ChatRequest.ToolChoice.AUTO;
            });
        }
        if (r.responseFormat() != null && r.responseFormat().type() == ResponseFormatType.JSON) {
            b.jsonSchema(r.responseFormat().jsonSchema() != null && r.responseFormat().jsonSchema().rootElement() != null
                    ? schema(r.responseFormat().jsonSchema().rootElement()) : "{\"type\":\"object\"}");
        }
        return b.build();
    }

    private static ChatMessage message(dev.langchain4j.data.message.ChatMessage m) {
        return switch (m) {
            case SystemMessage s -> ChatMessage.system(s.text());
            case UserMessage u -> ChatMessage.user(u.singleText());
            case AiMessage a -> a.hasToolExecutionRequests()
                    ? ChatMessage.assistant(a.text() == null ? "" : a.text(), a.toolExecutionRequests().stream()
                            .map(t -> new ToolCall(t.id() == null ? "" : t.id(), t.name(), t.arguments())).toList())
                    : ChatMessage.assistant(a.text() == null ? "" : a.text());
            case ToolExecutionResultMessage t -> ChatMessage.toolResult(new ToolCall(t.id() == null ? "" : t.id(), t.toolName(), "{}"), t.text());
            default -> throw new IllegalArgumentException("unsupported message type " + m.type());
        };
    }

    private static String schema(JsonSchemaElement e) {
        try {
            return JSON.writeValueAsString(JsonSchemaElementJsonUtils.toMap(e));
        } catch (JsonProcessingException x) {
            throw new IllegalArgumentException("the schema cannot be written as JSON: " + x.getMessage(), x);
        }
    }

    /** The request's parameters over the model's defaults. */
    static GenerationOptions options(dev.langchain4j.model.chat.request.ChatRequest r, GenerationOptions defaults) {
        GenerationOptions.Builder g = defaults.toBuilder();
        if (r.maxOutputTokens() != null) {
            g.maxTokens(r.maxOutputTokens());
        }
        if (r.stopSequences() != null) {
            r.stopSequences().forEach(g::stopString);
        }
        Sampling base = defaults.sampling();
        if (r.temperature() != null || r.topP() != null || r.topK() != null || r.frequencyPenalty() != null || r.presencePenalty() != null) {
            Sampling.Builder s = base.toBuilder();
            if (r.temperature() != null) {
                s.temperature(r.temperature().floatValue());
            }
            if (r.topP() != null) {
                s.topP(r.topP().floatValue());
            }
            if (r.topK() != null) {
                s.topK(r.topK());
            }
            if (r.frequencyPenalty() != null) {
                s.frequencyPenalty(r.frequencyPenalty().floatValue());
            }
            if (r.presencePenalty() != null) {
                s.presencePenalty(r.presencePenalty().floatValue());
            }
            g.sampling(s.build());
        }
        return g.build();
    }

    static AiMessage aiMessage(ChatReply reply) {
        List<ToolExecutionRequest> calls = new ArrayList<>();
        for (int i = 0; i < reply.toolCalls().size(); i++) {
            ToolCall c = reply.toolCalls().get(i);
            calls.add(ToolExecutionRequest.builder().id(c.id().isEmpty() ? "call_" + i : c.id()).name(c.name()).arguments(c.arguments()).build());
        }
        AiMessage.Builder b = AiMessage.builder().text(reply.content().isEmpty() && !calls.isEmpty() ? null : reply.content());
        reply.reasoning().ifPresent(b::thinking);
        if (!calls.isEmpty()) {
            b.toolExecutionRequests(calls);
        }
        return b.build();
    }

    static FinishReason finishReason(GenerationResult r, ChatReply reply) {
        if (!reply.toolCalls().isEmpty()) {
            return FinishReason.TOOL_EXECUTION;
        }
        return r.stopReason() == StopReason.MAX_TOKENS || r.stopReason() == StopReason.CONTEXT_FULL ? FinishReason.LENGTH : FinishReason.STOP;
    }

    static TokenUsage usage(GenerationResult r) {
        return new TokenUsage(r.stats().promptTokens(), r.stats().generatedTokens());
    }
}
