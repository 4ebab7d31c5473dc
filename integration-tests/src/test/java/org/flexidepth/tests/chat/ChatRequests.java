package org.flexidepth.tests.chat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.flexidepth.llama.ChatMessage;
import org.flexidepth.llama.ChatRequest;
import org.flexidepth.llama.Tool;
import org.flexidepth.llama.ToolCall;

import java.io.UncheckedIOException;

/** A {@link ChatRequest} as the OpenAI chat request JSON that the reference programs read. */
final class ChatRequests {
    static final ObjectMapper JSON = new ObjectMapper();

    private ChatRequests() {
    }

    static String json(ChatRequest r, long now) {
        ObjectNode body = JSON.createObjectNode();
        ArrayNode messages = body.putArray("messages");
        for (ChatMessage m : r.messages()) {
            ObjectNode o = messages.addObject().put("role", m.role()).put("content", m.content());
            if (!m.toolCalls().isEmpty()) {
                ArrayNode calls = o.putArray("tool_calls");
                for (ToolCall c : m.toolCalls()) {
                    calls.addObject().put("id", c.id()).put("type", "function").putObject("function")
                            .put("name", c.name()).put("arguments", c.arguments());
                }
            }
            m.toolCallId().ifPresent(id -> o.put("tool_call_id", id));
        }
        if (!r.tools().isEmpty()) {
            ArrayNode tools = body.putArray("tools");
            for (Tool t : r.tools()) {
                try {
                    tools.addObject().put("type", "function").putObject("function").put("name", t.name())
                            .put("description", t.description()).set("parameters", JSON.readTree(t.parameters()));
                } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                    throw new UncheckedIOException(e);
                }
            }
        }
        body.put("tool_choice", r.toolChoice().name().toLowerCase(java.util.Locale.ROOT));
        body.put("add_generation_prompt", r.addGenerationPrompt());
        body.put("enable_thinking", r.enableThinking());
        body.put("now", now);
        return body.toString();
    }
}
