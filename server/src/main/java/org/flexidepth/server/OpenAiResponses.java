package org.flexidepth.server;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.StopReason;
import org.flexidepth.llama.Token;
import org.flexidepth.llama.ToolCall;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.flexidepth.server.OpenAiRequests.JSON;

/** The bodies this server answers with, in OpenAI's shapes. */
final class OpenAiResponses {
    private OpenAiResponses() {
    }

    static ObjectNode error(String message, String type) {
        ObjectNode e = JSON.createObjectNode();
        e.putObject("error").put("message", message).put("type", type);
        return e;
    }

    static String finishReason(StopReason r, boolean toolCalls) {
        if (toolCalls) {
            return "tool_calls";
        }
        return r == StopReason.MAX_TOKENS || r == StopReason.CONTEXT_FULL ? "length" : "stop";
    }

    static ObjectNode envelope(String id, String object, long created, String model) {
        return JSON.createObjectNode().put("id", id).put("object", object).put("created", created).put("model", model);
    }

    static ObjectNode usage(GenerationResult r) {
        int prompt = r.stats().promptTokens(), completion = r.stats().generatedTokens();
        return JSON.createObjectNode().put("prompt_tokens", prompt).put("completion_tokens", completion)
                .put("total_tokens", prompt + completion);
    }

    /** The extension field: how many layers the reply's tokens used under a FlexiDepth plug-in. */
    static void flexiDepth(ObjectNode body, GenerationResult r, int layers) {
        r.stats().layers().ifPresent(l -> body.putObject("flexidepth").put("mean_layers", l.meanLayers())
                .put("min_layers", l.minLayers()).put("max_layers", l.maxLayers()).put("model_layers", layers));
    }

    static ArrayNode toolCalls(List<ToolCall> calls, boolean indexed) {
        ArrayNode a = JSON.createArrayNode();
        for (int i = 0; i < calls.size(); i++) {
            ToolCall c = calls.get(i);
            ObjectNode o = a.addObject();
            if (indexed) {
                o.put("index", i);
            }
            o.put("id", c.id().isEmpty() ? "call_" + i : c.id()).put("type", "function");
            o.putObject("function").put("name", c.name()).put("arguments", c.arguments());
        }
        return a;
    }

    /** Chat completions' logprobs of some tokens: each with its top alternatives. */
    static ObjectNode chatLogprobs(List<Token> tokens) {
        ObjectNode lp = JSON.createObjectNode();
        ArrayNode content = lp.putArray("content");
        for (Token t : tokens) {
            ObjectNode o = logprob(content.addObject(), t.text(), t.logProbability());
            ArrayNode top = o.putArray("top_logprobs");
            t.alternatives().forEach(a -> logprob(top.addObject(), a.text(), a.logProbability()));
        }
        return lp;
    }

    private static ObjectNode logprob(ObjectNode o, String text, float logprob) {
        o.put("token", text).put("logprob", logprob);
        ArrayNode bytes = o.putArray("bytes");
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            bytes.add(b & 0xff);
        }
        return o;
    }

    /** Legacy completions' logprobs (tokens, token_logprobs, top_logprobs). */
    static ObjectNode completionLogprobs(List<Token> tokens) {
        ObjectNode lp = JSON.createObjectNode();
        ArrayNode text = lp.putArray("tokens"), logprobs = lp.putArray("token_logprobs"), top = lp.putArray("top_logprobs");
        for (Token t : tokens) {
            text.add(t.text());
            logprobs.add(t.logProbability());
            ObjectNode alts = top.addObject();
            t.alternatives().forEach(a -> alts.put(a.text(), a.logProbability()));
        }
        return lp;
    }
}
