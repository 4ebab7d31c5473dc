package org.flexidepth.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flexidepth.llama.ChatMessage;
import org.flexidepth.llama.ChatRequest;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.InvalidArgumentException;
import org.flexidepth.llama.Sampling;
import org.flexidepth.llama.Tool;
import org.flexidepth.llama.ToolCall;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** The fields of OpenAI's request bodies, as this server reads them into the library's types. */
final class OpenAiRequests {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int DEFAULT_MAX_TOKENS = 256;

    private OpenAiRequests() {
    }

    /** A request the client got wrong: answered with 400 and OpenAI's error body. */
    static final class BadRequest extends RuntimeException {
        private static final long serialVersionUID = 1L;

        BadRequest(String message) {
            super(message);
        }
    }

    static JsonNode body(byte[] bytes) {
        try {
            JsonNode n = JSON.readTree(bytes);
            if (n == null || !n.isObject()) {
                throw new BadRequest("the request body must be a JSON object");
            }
            return n;
        } catch (java.io.IOException e) {
            throw new BadRequest("the request body is not JSON: " + e.getMessage());
        }
    }

    /** max_tokens, stop, sampling and logprobs, as both completion endpoints take them. */
    static GenerationOptions generation(JsonNode b, boolean chat) {
        GenerationOptions.Builder g = GenerationOptions.builder();
        JsonNode max = b.has("max_completion_tokens") ? b.get("max_completion_tokens") : b.get("max_tokens");
        g.maxTokens(max == null || max.isNull() ? DEFAULT_MAX_TOKENS : positive(max, "max_tokens"));
        JsonNode stop = b.get("stop");
        if (stop != null && stop.isTextual()) {
            g.stopString(stop.asText());
        } else if (stop != null && stop.isArray()) {
            stop.forEach(s -> g.stopString(s.asText()));
        }
        if (chat && b.path("logprobs").asBoolean(false)) {
            g.topLogProbabilities(b.path("top_logprobs").asInt(0));
        } else if (!chat && b.path("logprobs").isInt()) {
            g.topLogProbabilities(b.get("logprobs").asInt());
        }
        number(b, "flexidepth_tau").ifPresent(v -> g.flexiDepthThreshold(v.floatValue())); // as llama-server from the fork takes it
        Sampling.Builder s = Sampling.builder();
        number(b, "temperature").ifPresent(v -> s.temperature(v.floatValue()));
        number(b, "top_p").ifPresent(v -> s.topP(v.floatValue()));
        number(b, "top_k").ifPresent(v -> s.topK(v.intValue()));
        number(b, "min_p").ifPresent(v -> s.minP(v.floatValue()));
        number(b, "frequency_penalty").ifPresent(v -> s.frequencyPenalty(v.floatValue()));
        number(b, "presence_penalty").ifPresent(v -> s.presencePenalty(v.floatValue()));
        number(b, "seed").ifPresent(v -> s.seed(v.longValue()));
        if (b.path("ignore_eos").asBoolean(false)) { // llama-server's extension
            s.ignoreEndOfGeneration(true);
        }
        JsonNode bias = b.get("logit_bias");
        if (bias != null && bias.isObject()) {
            bias.properties().forEach(e -> s.logitBias(Integer.parseInt(e.getKey()), (float) e.getValue().asDouble()));
        }
        try {
            return g.sampling(s.build()).build();
        } catch (InvalidArgumentException | NumberFormatException e) {
            throw new BadRequest(e.getMessage());
        }
    }

    /** messages, tools, tool_choice and response_format of /v1/chat/completions. */
    static ChatRequest chat(JsonNode b) {
        JsonNode messages = b.get("messages");
        if (messages == null || !messages.isArray() || messages.isEmpty()) {
            throw new BadRequest("'messages' must be a non-empty array");
        }
        ChatRequest.Builder r = ChatRequest.builder();
        for (JsonNode m : messages) {
            r.message(message(m));
        }
        JsonNode tools = b.get("tools");
        if (tools != null && tools.isArray()) {
            for (JsonNode t : tools) {
                JsonNode f = t.path("function");
                if (!f.path("name").isTextual()) {
                    throw new BadRequest("a tool needs function.name");
                }
                r.tool(new Tool(f.get("name").asText(), f.path("description").asText(""),
                        f.has("parameters") ? f.get("parameters").toString() : "{\"type\":\"object\",\"properties\":{}}"));
            }
        }
        JsonNode choice = b.get("tool_choice");
        if (choice != null && choice.isTextual()) {
            r.toolChoice(switch (choice.asText()) {
                case "none" -> ChatRequest.ToolChoice.NONE;
                case "required" -> ChatRequest.ToolChoice.REQUIRED;
                case "auto" -> ChatRequest.ToolChoice.AUTO;
                default -> throw new BadRequest("tool_choice must be none, auto, required or a function");
            });
        } else if (choice != null && choice.isObject()) {
            r.toolChoice(ChatRequest.ToolChoice.REQUIRED);
        }
        r.parallelToolCalls(b.path("parallel_tool_calls").asBoolean(false));
        JsonNode format = b.get("response_format");
        if (format != null && format.isObject()) {
            switch (format.path("type").asText("text")) {
                case "json_object" -> r.jsonSchema("{\"type\":\"object\"}");
                case "json_schema" -> {
                    JsonNode schema = format.path("json_schema").path("schema");
                    if (!schema.isObject()) {
                        throw new BadRequest("response_format.json_schema.schema must be an object");
                    }
                    r.jsonSchema(schema.toString());
                }
                case "text" -> { }
                default -> throw new BadRequest("response_format.type must be text, json_object or json_schema");
            }
        }
        try {
            return r.build();
        } catch (InvalidArgumentException e) {
            throw new BadRequest(e.getMessage());
        }
    }

    private static ChatMessage message(JsonNode m) {
        String role = m.path("role").asText("");
        if (role.isEmpty()) {
            throw new BadRequest("a message needs a role");
        }
        String content = content(m.get("content"));
        List<ToolCall> calls = new ArrayList<>();
        for (JsonNode c : m.path("tool_calls")) {
            JsonNode f = c.path("function");
            JsonNode args = f.get("arguments");
            calls.add(new ToolCall(c.path("id").asText(""), f.path("name").asText(),
                    args == null ? "{}" : args.isTextual() ? args.asText() : args.toString()));
        }
        Optional<String> callId = m.hasNonNull("tool_call_id") ? Optional.of(m.get("tool_call_id").asText()) : Optional.empty();
        Optional<String> reasoning = m.hasNonNull("reasoning_content") ? Optional.of(m.get("reasoning_content").asText()) : Optional.empty();
        try {
            return new ChatMessage(role, content, calls, callId, reasoning);
        } catch (InvalidArgumentException e) {
            throw new BadRequest(e.getMessage());
        }
    }

    /** A message's content: a string, or the text of its parts (OpenAI's array form). */
    private static String content(JsonNode c) {
        if (c == null || c.isNull()) {
            return "";
        }
        if (c.isTextual()) {
            return c.asText();
        }
        if (c.isArray()) {
            StringBuilder s = new StringBuilder();
            for (JsonNode part : c) {
                if (!part.path("type").asText().equals("text")) {
                    throw new BadRequest("only text content parts are supported, not " + part.path("type").asText());
                }
                s.append(part.path("text").asText());
            }
            return s.toString();
        }
        throw new BadRequest("a message's content must be a string or an array of text parts");
    }

    /** The texts of /v1/embeddings' input: a string or an array of strings. */
    static List<String> texts(JsonNode input, String field) {
        if (input != null && input.isTextual()) {
            return List.of(input.asText());
        }
        if (input != null && input.isArray() && !input.isEmpty()) {
            List<String> out = new ArrayList<>();
            for (JsonNode t : input) {
                if (!t.isTextual()) {
                    throw new BadRequest("'" + field + "' must hold strings (token arrays are not supported)");
                }
                out.add(t.asText());
            }
            return out;
        }
        throw new BadRequest("'" + field + "' must be a string or a non-empty array of strings");
    }

    private static Optional<Number> number(JsonNode b, String field) {
        JsonNode v = b.get(field);
        if (v == null || v.isNull()) {
            return Optional.empty();
        }
        if (!v.isNumber()) {
            throw new BadRequest("'" + field + "' must be a number");
        }
        return Optional.of(v.numberValue());
    }

    private static int positive(JsonNode v, String field) {
        if (!v.canConvertToInt() || v.asInt() < 1) {
            throw new BadRequest("'" + field + "' must be a positive integer");
        }
        return v.asInt();
    }
}
