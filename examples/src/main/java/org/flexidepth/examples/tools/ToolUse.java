package org.flexidepth.examples.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flexidepth.llama.ChatMessage;
import org.flexidepth.llama.ChatPrompt;
import org.flexidepth.llama.ChatRequest;
import org.flexidepth.llama.ChatResult;
import org.flexidepth.llama.ChatTemplate;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.InvalidArgumentException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.llama.Tool;
import org.flexidepth.llama.ToolCall;
import org.flexidepth.tools.DefaultModel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * A model calls Java functions: the tools are offered with the request, the reply's calls are
 * parsed by the template's own parser, each runs as a Java method, and the results go back to the
 * model for its answer.
 *
 * <pre>
 * java -cp examples/target/flexillama-examples.jar org.flexidepth.examples.tools.ToolUse \
 *     [--model FILE.gguf] [--template FILE.jinja] [--question TEXT]
 * </pre>
 *
 * A model trained for tool use (Qwen 2.5 and 3, Llama 3.1, Mistral Nemo, Command R) picks its
 * calls itself, in its template's syntax. The default model (stories260K) knows nothing of tools
 * and has no template that describes them; with {@code --template} of one whose tool-call grammar
 * opens with the call (Command R+'s, in llama.cpp's {@code models/templates}) it calls a tool
 * because the grammar leaves it nothing else to write: every call well-formed and its arguments
 * valid, not sensible.
 */
public final class ToolUse {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A tool and the Java function that runs it, from the call's JSON arguments to the result's JSON. */
    record JavaTool(Tool tool, Function<JsonNode, Object> function) {
    }

    static final List<JavaTool> TOOLS = List.of(
            new JavaTool(new Tool("add", "Adds two integers",
                    "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\",\"minimum\":-999,\"maximum\":999},"
                            + "\"b\":{\"type\":\"integer\",\"minimum\":-999,\"maximum\":999}},\"required\":[\"a\",\"b\"],"
                            + "\"additionalProperties\":false}"),
                    args -> Map.of("sum", Math.addExact(args.get("a").asLong(), args.get("b").asLong()))),
            new JavaTool(new Tool("word_count", "Counts the words of a text",
                    "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\",\"maxLength\":40}},"
                            + "\"required\":[\"text\"],\"additionalProperties\":false}"),
                    args -> Map.of("words", args.get("text").asText().isBlank() ? 0 : args.get("text").asText().strip().split("\\s+").length)));

    private ToolUse() {
    }

    public static void main(String[] args) throws Exception {
        Path modelPath = null, templateFile = null;
        String question = "What is 12 + 30, and how many words are in 'the cat sat'?";
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--model" -> modelPath = Path.of(args[i + 1]);
                case "--template" -> templateFile = Path.of(args[i + 1]);
                case "--question" -> question = args[i + 1];
                default -> {
                    System.err.println("usage: ToolUse [--model FILE.gguf] [--template FILE.jinja] [--question TEXT]");
                    System.exit(2);
                }
            }
        }
        if (args.length % 2 != 0) {
            System.err.println("usage: ToolUse [--model FILE.gguf] [--template FILE.jinja] [--question TEXT]");
            System.exit(2);
        }
        try (LlamaModel model = LlamaModel.load(modelPath != null ? modelPath : DefaultModel.stories260K());
             ChatTemplate template = templateFile != null ? model.chatTemplate(Files.readString(templateFile)) : model.chatTemplate();
             Session session = model.newSession(SessionOptions.builder().contextSize(4096).build())) {
            System.out.println(run(session, template, question));
        }
    }

    /** One round of calls and the answer after them; returns what happened, one line each. */
    public static String run(Session session, ChatTemplate template, String question) {
        GenerationOptions options = GenerationOptions.builder().maxTokens(160).build();
        List<ChatMessage> messages = new ArrayList<>(List.of(ChatMessage.user(question)));
        ChatRequest.Builder request = ChatRequest.builder().tools(TOOLS.stream().map(JavaTool::tool).toList());
        StringBuilder log = new StringBuilder("user: " + question + "\n");

        // the first reply must call a tool: upstream's grammar holds the model to the tools' schemas
        ChatPrompt first = template.render(request.messages(messages).toolChoice(ChatRequest.ToolChoice.REQUIRED).build());
        ChatResult calls;
        try {
            calls = session.chat(first, options);
        } catch (InvalidArgumentException e) {
            return log.append("the reply is not in the template's format: ").append(e.getMessage()).toString();
        }
        messages.add(calls.reply().toMessage());
        for (ToolCall call : calls.reply().toolCalls()) {
            String result = call(call);
            log.append("call: ").append(call.name()).append(call.arguments()).append(" -> ").append(result).append('\n');
            messages.add(ChatMessage.toolResult(call, result));
        }
        if (calls.reply().toolCalls().isEmpty()) {
            log.append("no call (a ").append(first.formatName()).append(" template) within ").append(options.maxTokens())
                    .append(" tokens: ").append(calls.generation().text().strip()).append('\n');
        }

        ChatPrompt second = template.render(ChatRequest.builder().messages(messages).tools(request.build().tools())
                .toolChoice(ChatRequest.ToolChoice.NONE).build());
        session.clear();
        ChatResult answer = session.chat(second, options);
        return log.append("assistant: ").append(answer.reply().content().strip()).toString();
    }

    /** Runs the Java function a call names; an unknown tool or bad arguments are reported to the model as errors. */
    static String call(ToolCall call) {
        try {
            JavaTool tool = TOOLS.stream().filter(t -> t.tool().name().equals(call.name())).findFirst()
                    .orElseThrow(() -> new IllegalArgumentException("no tool named " + call.name()));
            return JSON.writeValueAsString(tool.function().apply(JSON.readTree(call.arguments())));
        } catch (Exception e) {
            return "{\"error\":" + JSON.valueToTree(String.valueOf(e.getMessage())) + "}";
        }
    }
}
