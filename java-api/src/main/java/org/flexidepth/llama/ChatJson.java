package org.flexidepth.llama;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The OpenAI-style JSON that chat requests and replies take across the common shim
 * (llama_fork_common_chat_apply and _parse), with Jackson.
 */
final class ChatJson {
    private static final ObjectMapper JSON = new ObjectMapper();

    private ChatJson() {
    }

    static boolean isObject(String text) {
        try {
            return JSON.readTree(text) instanceof ObjectNode;
        } catch (JsonProcessingException e) {
            return false;
        }
    }

    /** The request in the fields llama_fork_common_chat_apply reads; {@code now}: seconds, for dated templates. */
    static String request(ChatRequest r, long now) {
        ObjectNode body = JSON.createObjectNode();
        ArrayNode messages = body.putArray("messages");
        for (ChatMessage m : r.messages()) {
            ObjectNode o = messages.addObject();
            o.put("role", m.role());
            o.put("content", m.content());
            if (!m.toolCalls().isEmpty()) {
                ArrayNode calls = o.putArray("tool_calls");
                for (ToolCall c : m.toolCalls()) {
                    ObjectNode call = calls.addObject();
                    call.put("id", c.id());
                    call.put("type", "function");
                    ObjectNode f = call.putObject("function");
                    f.put("name", c.name());
                    f.put("arguments", c.arguments());
                }
            }
            m.toolCallId().ifPresent(id -> o.put("tool_call_id", id));
            m.reasoning().ifPresent(t -> o.put("reasoning_content", t));
        }
        if (!r.tools().isEmpty()) {
            ArrayNode tools = body.putArray("tools");
            for (Tool t : r.tools()) {
                ObjectNode tool = tools.addObject();
                tool.put("type", "function");
                ObjectNode f = tool.putObject("function");
                f.put("name", t.name());
                f.put("description", t.description());
                f.set("parameters", tree(t.parameters()));
            }
        }
        body.put("tool_choice", r.toolChoice().name().toLowerCase(java.util.Locale.ROOT));
        body.put("parallel_tool_calls", r.parallelToolCalls());
        body.put("add_generation_prompt", r.addGenerationPrompt());
        body.put("enable_thinking", r.enableThinking());
        body.put("reasoning_format", r.parseReasoning() ? "auto" : "none");
        r.jsonSchema().ifPresent(s -> body.set("json_schema", tree(s)));
        body.put("now", now);
        return body.toString();
    }

    /** The rendering llama_fork_common_chat_apply returned. */
    static ChatPrompt prompt(ChatTemplate template, ChatRequest request, String applied) {
        JsonNode p = tree(applied);
        List<ChatPrompt.Trigger> triggers = new ArrayList<>();
        for (JsonNode t : p.path("grammar_triggers")) {
            triggers.add(new ChatPrompt.Trigger(t.path("type").asInt(), t.path("value").asText(), t.path("token").asInt(-1)));
        }
        String grammar = p.path("grammar").asText("");
        return new ChatPrompt(template, request, p.path("prompt").asText(), grammar.isEmpty() ? Optional.empty() : Optional.of(grammar),
                p.path("grammar_lazy").asBoolean(), triggers, strings(p.path("preserved_tokens")),
                strings(p.path("additional_stops")), p.path("format_name").asText(), p.path("generation_prompt").asText(""),
                applied);
    }

    /** The assistant message llama_fork_common_chat_parse returned. */
    static ChatReply reply(String parsed) {
        JsonNode m = tree(parsed);
        List<ToolCall> calls = new ArrayList<>();
        for (JsonNode c : m.path("tool_calls")) {
            JsonNode f = c.path("function");
            calls.add(new ToolCall(c.path("id").asText(""), f.path("name").asText(), f.path("arguments").asText("")));
        }
        String reasoning = m.path("reasoning_content").asText("");
        return new ChatReply(m.path("content").isTextual() ? m.path("content").asText() : "",
                reasoning.isEmpty() ? Optional.empty() : Optional.of(reasoning), calls);
    }

    private static List<String> strings(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }

    private static JsonNode tree(String text) {
        try {
            return JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new InvalidArgumentException("not valid JSON: " + e.getOriginalMessage());
        }
    }
}
