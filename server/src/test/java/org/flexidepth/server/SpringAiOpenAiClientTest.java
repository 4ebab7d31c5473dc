package org.flexidepth.server;

import org.flexidepth.llama.ChatMessage;
import org.flexidepth.llama.ChatRequest;
import org.flexidepth.llama.ChatTemplate;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Pooling;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.tools.DefaultModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.flexidepth.tools.ProjectPaths;
import org.springframework.ai.chat.client.ChatClient;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.messages.UserMessage;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.model.tool.ToolCallingManager;
import org.springframework.ai.model.tool.ToolExecutionResult;
import org.springframework.ai.support.ToolCallbacks;
import org.springframework.ai.tool.annotation.Tool;
import org.springframework.ai.tool.annotation.ToolParam;
import org.springframework.ai.openai.OpenAiChatModel;
import org.springframework.ai.openai.OpenAiChatOptions;
import org.springframework.ai.openai.OpenAiEmbeddingModel;
import org.springframework.ai.openai.OpenAiEmbeddingOptions;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Spring AI's OpenAI client (on OpenAI's own Java SDK) against the server: a {@code ChatClient}
 * call and stream give the library's in-process greedy reply, a required tool call runs a Java
 * method through Spring AI's {@code ToolCallingManager}, and embeddings are the library's vectors.
 */
class SpringAiOpenAiClientTest {
    static final int N = 24;
    static final Path COMMAND_R = ProjectPaths.nativeBuild().resolve("_deps/llama.cpp-pristine/models/templates/CohereForAI-c4ai-command-r-plus-tool_use.jinja");
    static Path modelFile;
    static OpenAiServer server;
    static String base;

    @BeforeAll
    static void start() throws Exception {
        modelFile = DefaultModel.stories260K();
        // Command R+'s template: its required-call grammar opens with the call, so a model that
        // knows nothing of tools (stories260K) still calls one
        server = new OpenAiServer(ServerOptions.parse(new String[] {"--model", modelFile.toString(), "--port", "0", "--slots", "2",
                "--ctx", "4096", "--api-key", "k", "--chat-template-file", COMMAND_R.toString()})).start();
        base = "http://127.0.0.1:" + server.port() + "/v1";
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
    }

    static String inProcess(String system, String user) throws Exception {
        try (LlamaModel m = LlamaModel.load(modelFile); ChatTemplate t = m.chatTemplate(Files.readString(COMMAND_R));
             Session s = m.newSession(SessionOptions.builder().contextSize(4096).build())) {
            return s.chat(t.render(ChatRequest.of(List.of(ChatMessage.system(system), ChatMessage.user(user)))),
                    GenerationOptions.builder().maxTokens(N).build()).reply().content();
        }
    }

    static OpenAiChatModel chatModel() {
        return OpenAiChatModel.builder().options(OpenAiChatOptions.builder().baseUrl(base).apiKey("k")
                .model("stories260K").temperature(0.0).maxTokens(N).build()).build();
    }

    static ChatClient client() {
        return ChatClient.create(chatModel());
    }

    static final class Calculator {
        final List<int[]> calls = new CopyOnWriteArrayList<>();

        @Tool(description = "Adds two integers")
        int add(@ToolParam(description = "the first") int a, @ToolParam(description = "the second") int b) {
            calls.add(new int[] {a, b});
            return a + b;
        }
    }

    /** Spring AI's own tool loop by hand (its ToolCallingManager): a required call, the Java method, the answer. */
    @Test
    void toolCallsRunThroughSpringAisToolCallingManager() {
        Calculator calculator = new Calculator();
        Prompt ask = new Prompt(List.of(new UserMessage("What is 2 + 3?")), OpenAiChatOptions.builder()
                .toolCallbacks(ToolCallbacks.from(calculator)).toolChoice("required").maxTokens(120).build());
        ChatResponse call = chatModel().call(ask);
        List<AssistantMessage.ToolCall> calls = call.getResult().getOutput().getToolCalls();
        assertFalse(calls.isEmpty(), "a required call: " + call);
        assertEquals("add", calls.get(0).name());
        assertTrue(call.hasToolCalls());

        ToolExecutionResult ran = ToolCallingManager.builder().build().executeToolCalls(ask, call);
        assertEquals(calls.size(), calculator.calls.size(), "the manager ran the Java method for each call");
        Prompt answer = new Prompt(ran.conversationHistory(), OpenAiChatOptions.builder()
                .toolCallbacks(ToolCallbacks.from(calculator)).toolChoice("none").maxTokens(N).build());
        ChatResponse last = chatModel().call(answer);
        assertFalse(last.hasToolCalls());
        assertNotNull(last.getResult().getOutput().getText());
    }

    @Test
    void aChatClientCallAndStreamGetTheInProcessReply() throws Exception {
        String expected = inProcess("You tell stories.", "Tell me about a cat.");
        assertFalse(expected.isBlank());
        assertEquals(expected, client().prompt().system("You tell stories.").user("Tell me about a cat.").call().content());
        List<String> parts = client().prompt().system("You tell stories.").user("Tell me about a cat.").stream().content().collectList().block();
        assertEquals(expected, String.join("", parts));
    }

    @Test
    void embeddingsAreTheLibrarysVectors() {
        OpenAiEmbeddingModel embeddings = OpenAiEmbeddingModel.builder()
                .options(OpenAiEmbeddingOptions.builder().baseUrl(base).apiKey("k").model("stories260K").build()).build();
        float[] got = embeddings.embed("The little dog was happy.");
        try (LlamaModel m = LlamaModel.load(modelFile);
             Session s = m.newSession(SessionOptions.builder().embeddings(Pooling.MEAN, 1).build())) {
            assertArrayEquals(s.embed(List.of("The little dog was happy.")).get(0), got, 1e-6f);
        }
    }
}
