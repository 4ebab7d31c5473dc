package org.flexidepth.tests.chat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import org.flexidepth.llama.ChatMessage;
import org.flexidepth.llama.ChatPrompt;
import org.flexidepth.llama.ChatRequest;
import org.flexidepth.llama.ChatResult;
import org.flexidepth.llama.ChatTemplate;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.InvalidArgumentException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Sampling;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.Tool;
import org.flexidepth.llama.ToolCall;
import org.flexidepth.tests.api.RealModels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Tool calling through upstream's chat code, for four template families: a reply in the family's
 * call syntax parses into its calls, which go back into the conversation with their results; and
 * under the required-call grammar a model that knows nothing of tools (stories260K) writes only
 * valid calls (networknt's validator on the arguments). Mechanics only: whether a model uses
 * tools well needs a model trained for it.
 */
class ToolCallingTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final SchemaRegistry SCHEMAS = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12);
    static final Tool WEATHER = new Tool("get_weather", "The weather in a city today",
            "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":10},\"unit\":{\"enum\":[\"C\",\"F\"]}},"
                    + "\"required\":[\"city\",\"unit\"],\"additionalProperties\":false}");
    static final Tool ADD = new Tool("add", "Adds two integers",
            "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\",\"minimum\":-99,\"maximum\":99},"
                    + "\"b\":{\"type\":\"integer\",\"minimum\":-99,\"maximum\":99}},\"required\":[\"a\",\"b\"],\"additionalProperties\":false}");
    static final Map<String, Tool> TOOLS = Map.of(WEATHER.name(), WEATHER, ADD.name(), ADD);
    static LlamaModel model;
    static Session session;

    @BeforeAll
    static void load() {
        model = LlamaModel.load(RealModels.stories260K());
        // the templates' tool descriptions are long in a 512-token vocabulary
        session = model.newSession(org.flexidepth.llama.SessionOptions.builder().contextSize(2560).build());
    }

    @AfterAll
    static void close() {
        if (session != null) {
            session.close();
        }
        if (model != null) {
            model.close();
        }
    }

    static ChatTemplate template(String file) throws Exception {
        return model.chatTemplate(Files.readString(UpstreamChatTemplateTest.templates().resolve(file)));
    }

    /** A reply in each family's own call syntax, as a model trained on the template writes it. */
    static Stream<Arguments> replies() {
        return Stream.of(
                Arguments.of("Qwen-Qwen2.5-7B-Instruct.jinja", "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": 3}}\n</tool_call>"),
                Arguments.of("Qwen-Qwen3-0.6B.jinja", "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": 3}}\n</tool_call>"),
                Arguments.of("meta-llama-Llama-3.1-8B-Instruct.jinja", "{\"name\": \"add\", \"parameters\": {\"a\": 2, \"b\": 3}}"),
                Arguments.of("mistralai-Mistral-Nemo-Instruct-2407.jinja", "[TOOL_CALLS][{\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": 3}, \"id\": \"abcDEF123\"}]"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("replies")
    void aReplyInTheFamilysSyntaxParsesIntoItsCall(String file, String reply) throws Exception {
        try (ChatTemplate t = template(file)) {
            ChatPrompt prompt = t.render(request(ChatRequest.ToolChoice.AUTO), UpstreamChatTemplateTest.NOW);
            List<ToolCall> calls = t.parse(prompt, reply).toolCalls();
            assertEquals(1, calls.size(), file + ": " + calls);
            assertEquals("add", calls.get(0).name());
            assertEquals(JSON.readTree("{\"a\":2,\"b\":3}"), JSON.readTree(calls.get(0).arguments()));
            // and the call goes back into the conversation with its result
            ChatRequest next = request(ChatRequest.ToolChoice.AUTO).toBuilder().message(ChatMessage.assistant("", calls))
                    .message(ChatMessage.toolResult(calls.get(0), "{\"sum\":5}")).build();
            String rendered = t.render(next, UpstreamChatTemplateTest.NOW).text();
            assertTrue(rendered.contains("sum") && rendered.contains("5"), file + ": the result is in " + rendered);
        }
    }

    static ChatRequest request(ChatRequest.ToolChoice choice) {
        return ChatRequest.builder().message(ChatMessage.user("What is the weather in Oslo, and 2 + 3?"))
                .tool(WEATHER).tool(ADD).toolChoice(choice).build();
    }

    /**
     * Generation under each family's required-call grammar: every call that the reply holds
     * parses, names an offered tool and has arguments valid against its schema. (Upstream's
     * grammar admits free text before the first call, which a model that knows nothing of tools
     * rarely leaves, so the replies of this model may hold no call; a model trained on the
     * template calls at once.)
     */
    @ParameterizedTest
    @ValueSource(strings = {"Qwen-Qwen2.5-7B-Instruct.jinja", "meta-llama-Llama-3.1-8B-Instruct.jinja",
        "mistralai-Mistral-Nemo-Instruct-2407.jinja", "Qwen-Qwen3-0.6B.jinja"})
    void generatedRepliesHoldOnlyValidCalls(String file) throws Exception {
        try (ChatTemplate t = template(file)) {
            ChatPrompt prompt = t.render(request(ChatRequest.ToolChoice.REQUIRED), UpstreamChatTemplateTest.NOW);
            assertTrue(prompt.grammar().isPresent() && !prompt.grammarLazy(), file + ": required calls come with a grammar from the start");
            for (int seed = 1; seed <= 2; seed++) {
                session.clear();
                ChatResult r = session.chat(prompt, GenerationOptions.builder().maxTokens(200)
                        .sampling(Sampling.builder().seed(seed).temperature(1.0f).build()).build());
                for (ToolCall c : t.parse(prompt, r.generation().text(), true).toolCalls()) {
                    Tool tool = TOOLS.get(c.name());
                    assertTrue(tool != null, file + ": call of an unknown tool " + c.name());
                    JsonNode args = JSON.readTree(c.arguments());
                    Schema schema = SCHEMAS.getSchema(tool.parameters());
                    assertTrue(schema.validate(args).isEmpty(), file + ", seed " + seed + ": " + c + " " + schema.validate(args));
                }
            }
        }
    }

    @Test
    void aGrammarOnTopOfToolCallsIsRefused() throws Exception {
        try (ChatTemplate t = template("Qwen-Qwen2.5-7B-Instruct.jinja")) {
            ChatPrompt prompt = t.render(ChatRequest.builder().message(ChatMessage.user("x")).tool(ADD)
                    .toolChoice(ChatRequest.ToolChoice.REQUIRED).build());
            assertThrows(InvalidArgumentException.class, () -> session.chat(prompt, GenerationOptions.builder()
                    .sampling(Sampling.builder().grammar("root ::= \"a\"").build()).build()));
        }
    }

    @Test
    void requiredWithoutToolsIsRefused() {
        assertThrows(InvalidArgumentException.class, () -> ChatRequest.builder().message(ChatMessage.user("x"))
                .toolChoice(ChatRequest.ToolChoice.REQUIRED).build());
    }

    @Test
    void aTemplateOfAnotherModelIsRefused() throws Exception {
        try (LlamaModel other = LlamaModel.load(RealModels.stories260K()); ChatTemplate t = other.chatTemplate("chatml")) {
            ChatPrompt prompt = t.render(ChatRequest.of(List.of(ChatMessage.user("x"))));
            assertThrows(InvalidArgumentException.class, () -> session.chat(prompt, GenerationOptions.builder().build()));
        }
    }
}
