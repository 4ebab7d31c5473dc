package org.flexidepth.springai;

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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.flexidepth.tools.ProjectPaths;
import org.springframework.ai.chat.client.ChatClient;
import org.springframework.ai.chat.client.ChatClientRequest;
import org.springframework.ai.chat.client.ChatClientResponse;
import org.springframework.ai.chat.client.advisor.api.CallAdvisor;
import org.springframework.ai.chat.client.advisor.api.CallAdvisorChain;
import org.springframework.ai.chat.messages.ToolResponseMessage;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.tool.annotation.Tool;
import org.springframework.ai.tool.annotation.ToolParam;
import org.springframework.core.Ordered;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CopyOnWriteArrayList;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * The adapters through Spring AI's own high-level API: a {@code ChatClient} call and stream, with
 * a system and a user message, give what the library gives directly; a tool given to the
 * {@code ChatClient} is a Java method it calls; the embedding model gives the library's vectors.
 */
class SpringAiAdapterTest {
    static final int N = 24;
    static LlamaModel model;
    static BatchEngine engine;
    static ChatTemplate template;
    static ChatClient client;

    @BeforeAll
    static void load() throws Exception {
        model = LlamaModel.load(DefaultModel.stories260K());
        engine = model.newBatchEngine(BatchEngineOptions.builder().slots(2).contextPerSlot(4096).build());
        template = model.chatTemplate();
        client = ChatClient.create(new FlexiLlamaSpringChatModel(engine, template, GenerationOptions.builder().maxTokens(N).build()));
    }

    @AfterAll
    static void close() {
        if (model != null) {
            template.close();
            model.close();
        }
    }

    static String direct(String system, String user) {
        try (Session s = model.newSession(SessionOptions.builder().contextSize(1024).build())) {
            return s.chat(template.render(ChatRequest.of(List.of(ChatMessage.system(system), ChatMessage.user(user)))),
                    GenerationOptions.builder().maxTokens(N).build()).reply().content();
        }
    }

    @Test
    void aChatClientCallGivesTheLibrarysReply() {
        String expected = direct("You tell stories.", "Tell me about a cat.");
        assertFalse(expected.isBlank());
        assertEquals(expected, client.prompt().system("You tell stories.").user("Tell me about a cat.").call().content());
    }

    @Test
    void aChatClientStreamGivesTheSameText() {
        String expected = direct("You tell stories.", "Tell me about a dog.");
        List<String> parts = client.prompt().system("You tell stories.").user("Tell me about a dog.").stream().content().collectList().block();
        assertEquals(expected, String.join("", parts));
    }

    static final class Calculator {
        final List<int[]> calls = new CopyOnWriteArrayList<>();

        @Tool(description = "Adds two integers")
        int add(@ToolParam(description = "the first") int a, @ToolParam(description = "the second") int b) {
            calls.add(new int[] {a, b});
            return a + b;
        }
    }

    /** Inside ChatClient's tool loop: a call after the user's message, the answer after the tool's result. */
    static final CallAdvisor CALL_THEN_ANSWER = new CallAdvisor() {
        @Override
        public ChatClientResponse adviseCall(ChatClientRequest request, CallAdvisorChain chain) {
            Prompt p = request.prompt();
            boolean answered = p.getInstructions().getLast() instanceof ToolResponseMessage;
            FlexiLlamaChatOptions o = ((FlexiLlamaChatOptions) p.getOptions()).mutate()
                    .toolChoice(answered ? ChatRequest.ToolChoice.NONE : ChatRequest.ToolChoice.REQUIRED).build();
            return chain.nextCall(request.mutate().prompt(p.mutate().chatOptions(o).build()).build());
        }

        @Override
        public String getName() {
            return "call-then-answer";
        }

        @Override
        public int getOrder() {
            return Ordered.HIGHEST_PRECEDENCE + 400; // after ToolCallingAdvisor's HIGHEST_PRECEDENCE + 300: inside its loop
        }
    };

    @Test
    void aChatClientToolCallRunsAJavaMethod() throws Exception {
        // stories260K with Command R+'s template (from the pinned tree): its required-call grammar
        // opens with the call, so a model that knows nothing of tools calls one (mechanics only)
        Path commandR = ProjectPaths.nativeBuild().resolve("_deps/llama.cpp-pristine/models/templates/CohereForAI-c4ai-command-r-plus-tool_use.jinja");
        try (ChatTemplate tools = model.chatTemplate(Files.readString(commandR))) {
            ChatClient withTools = ChatClient.builder(new FlexiLlamaSpringChatModel(engine, tools, GenerationOptions.builder().maxTokens(160).build()))
                    .defaultAdvisors(CALL_THEN_ANSWER).build();
            Calculator calculator = new Calculator();
            String answer = withTools.prompt().user("What is 2 + 3?").tools(calculator).call().content();
            assertFalse(calculator.calls.isEmpty(), "the model called the Java method");
            assertNotNull(answer, "and answered after its result");
        }
    }

    @Test
    void theEmbeddingModelGivesTheLibrarysVectors() {
        try (Session s = model.newSession(SessionOptions.builder().embeddings(Pooling.MEAN, 4).build())) {
            FlexiLlamaSpringEmbeddingModel embeddings = new FlexiLlamaSpringEmbeddingModel(s);
            List<float[]> got = embeddings.embed(List.of("The little dog was happy.", "Tom had a ball."));
            List<float[]> expected = s.embed(List.of("The little dog was happy.", "Tom had a ball."));
            assertArrayEquals(expected.get(0), got.get(0));
            assertArrayEquals(expected.get(1), got.get(1));
            assertEquals(model.info().embeddingSize(), embeddings.dimensions());
        }
    }
}
