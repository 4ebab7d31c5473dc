package org.flexidepth.examples.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flexidepth.llama.ChatTemplate;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.tools.DefaultModel;
import org.flexidepth.tools.ProjectPaths;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The tool-use example on the default model with Command R+'s template from the pinned tree,
 * whose required-call grammar opens with the call: the model calls a tool, the Java function runs
 * on the call's arguments (checked here by computing each result again), and the model answers
 * after the results. Mechanics only: a model that knows nothing of tools calls them at random.
 */
class ToolUseTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final Pattern CALL = Pattern.compile("call: (\\w+)(\\{.*\\}) -> (.*)");

    @Test
    void theModelCallsJavaFunctionsAndAnswers() throws Exception {
        Path commandR = ProjectPaths.nativeBuild().resolve("_deps/llama.cpp-pristine/models/templates/CohereForAI-c4ai-command-r-plus-tool_use.jinja");
        try (LlamaModel m = LlamaModel.load(DefaultModel.stories260K()); ChatTemplate t = m.chatTemplate(Files.readString(commandR));
             Session s = m.newSession(SessionOptions.builder().contextSize(4096).build())) {
            String log = ToolUse.run(s, t, "What is 12 + 30?");
            List<String> calls = log.lines().filter(l -> l.startsWith("call: ")).toList();
            assertFalse(calls.isEmpty(), "a required call under the grammar: " + log);
            for (String line : calls) {
                Matcher c = CALL.matcher(line);
                assertTrue(c.matches(), line);
                JsonNode args = JSON.readTree(c.group(2));
                JsonNode result = JSON.readTree(c.group(3));
                switch (c.group(1)) {
                    case "add" -> assertEquals(args.get("a").asLong() + args.get("b").asLong(), result.get("sum").asLong(), line);
                    case "word_count" -> {
                        String text = args.get("text").asText().strip();
                        assertEquals(text.isEmpty() ? 0 : text.split("\\s+").length, result.get("words").asInt(), line);
                    }
                    default -> throw new AssertionError("a call of a tool not offered: " + line);
                }
            }
            assertTrue(log.lines().anyMatch(l -> l.startsWith("assistant: ")), log);
        }
    }
}
