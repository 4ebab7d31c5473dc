package org.flexidepth.langchain4j;

import dev.langchain4j.agent.tool.P;
import dev.langchain4j.agent.tool.Tool;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.request.ToolChoice;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.service.AiServices;
import org.flexidepth.llama.BatchEngine;
import org.flexidepth.llama.BatchEngineOptions;
import org.flexidepth.llama.ChatMessage;
import org.flexidepth.llama.ChatRequest;
import org.flexidepth.llama.ChatTemplate;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Pooling;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.tools.DefaultModel;
import org.flexidepth.tools.ProjectPaths;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The adapters through LangChain4j's own API: an {@code AiServices} interface whose tool is a Java
 * method, and the chat, streaming and embedding models giving what the library gives directly.
 * stories260K with Command R+'s template (from the pinned tree): its required-call grammar opens
 * with the call, so a model that knows nothing of tools calls one (mechanics only).
 */
class LangChain4jAdapterTest {
    static final int N = 24;
    static LlamaModel model;
    static BatchEngine engine;
    static ChatTemplate template;
    static FlexiLlamaChatModel chat;

    @BeforeAll
    static void load() throws Exception {
        model = LlamaModel.load(DefaultModel.stories260K());
        engine = model.newBatchEngine(BatchEngineOptions.builder().slots(2).contextPerSlot(4096).build());
        Path commandR = ProjectPaths.nativeBuild().resolve("_deps/llama.cpp-pristine/models/templates/CohereForAI-c4ai-command-r-plus-tool_use.jinja");
        template = model.chatTemplate(Files.readString(commandR));
        chat = FlexiLlamaChatModel.builder().engine(engine).template(template)
                .defaults(GenerationOptions.builder().maxTokens(N).build()).build();
    }

    @AfterAll
    static void close() {
        if (model != null) {
            template.close();
            model.close(); // closes the engine
        }
    }

    interface Assistant {
        String chat(String message);
    }

    static final class Calculator {
        final List<int[]> calls = new CopyOnWriteArrayList<>();

        @Tool("Adds two integers")
        int add(@P("the first") int a, @P("the second") int b) {
            calls.add(new int[] {a, b});
            return a + b;
        }
    }

    @Test
    void anAiServiceCallsAJavaMethod() {
        Calculator calculator = new Calculator();
        Assistant assistant = AiServices.builder(Assistant.class).chatModel(chat).tools(calculator)
                // a call after the user's message, the answer after the tool's result
                .chatRequestTransformer(r -> r.toBuilder().maxOutputTokens(160).toolChoice(
                        r.messages().get(r.messages().size() - 1) instanceof UserMessage ? ToolChoice.REQUIRED : ToolChoice.NONE).build())
                .build();
        String answer = assistant.chat("What is 2 + 3?");
        assertFalse(calculator.calls.isEmpty(), "the model called the Java method");
        assertTrue(answer != null, "and answered after its result");
    }

    static String direct(String user) {
        try (Session s = model.newSession(SessionOptions.builder().contextSize(4096).build())) {
            return s.chat(template.render(ChatRequest.of(List.of(ChatMessage.user(user)))), GenerationOptions.builder().maxTokens(N).build())
                    .reply().content();
        }
    }

    @Test
    void theChatModelGivesTheLibrarysReply() {
        String expected = direct("Tell me a story about a cat.");
        assertFalse(expected.isBlank());
        assertEquals(expected, chat.chat("Tell me a story about a cat."));
    }

    @Test
    void theStreamingModelStreamsTheSameText() throws Exception {
        String expected = direct("Tell me about a dog.");
        FlexiLlamaStreamingChatModel streaming = new FlexiLlamaStreamingChatModel(engine, template, GenerationOptions.builder().maxTokens(N).build());
        StringBuilder parts = new StringBuilder();
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        streaming.chat("Tell me about a dog.", new StreamingChatResponseHandler() {
            @Override
            public void onPartialResponse(String partial) {
                parts.append(partial);
            }

            @Override
            public void onCompleteResponse(ChatResponse response) {
                done.complete(response);
            }

            @Override
            public void onError(Throwable error) {
                done.completeExceptionally(error);
            }
        });
        assertEquals(expected, done.get().aiMessage().text());
        assertEquals(expected, parts.toString());
    }

    @Test
    void theEmbeddingModelGivesTheLibrarysVectors() {
        try (Session s = model.newSession(SessionOptions.builder().embeddings(Pooling.MEAN, 4).build())) {
            FlexiLlamaEmbeddingModel embeddings = new FlexiLlamaEmbeddingModel(s);
            float[] got = embeddings.embed("The little dog was happy.").content().vector();
            assertArrayEquals(s.embed(List.of("The little dog was happy.")).get(0), got);
            assertEquals(model.info().embeddingSize(), embeddings.dimension());
        }
    }
}
