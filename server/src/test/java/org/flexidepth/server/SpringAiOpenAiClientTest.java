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
import org.springframework.ai.chat.client.ChatClient;
import org.springframework.ai.openai.OpenAiChatModel;
import org.springframework.ai.openai.OpenAiChatOptions;
import org.springframework.ai.openai.OpenAiEmbeddingModel;
import org.springframework.ai.openai.OpenAiEmbeddingOptions;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * Spring AI's OpenAI client (on OpenAI's own Java SDK) against the server: a {@code ChatClient}
 * call and stream give the library's in-process greedy reply, and embeddings its vectors.
 */
class SpringAiOpenAiClientTest {
    static final int N = 24;
    static Path modelFile;
    static OpenAiServer server;
    static String base;

    @BeforeAll
    static void start() throws Exception {
        modelFile = DefaultModel.stories260K();
        server = new OpenAiServer(ServerOptions.parse(new String[] {"--model", modelFile.toString(), "--port", "0", "--slots", "2",
                "--ctx", "1024", "--api-key", "k"})).start();
        base = "http://127.0.0.1:" + server.port() + "/v1";
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
    }

    static String inProcess(String system, String user) {
        try (LlamaModel m = LlamaModel.load(modelFile); ChatTemplate t = m.chatTemplate();
             Session s = m.newSession(SessionOptions.builder().contextSize(1024).build())) {
            return s.chat(t.render(ChatRequest.of(List.of(ChatMessage.system(system), ChatMessage.user(user)))),
                    GenerationOptions.builder().maxTokens(N).build()).reply().content();
        }
    }

    static ChatClient client() {
        return ChatClient.create(OpenAiChatModel.builder().options(OpenAiChatOptions.builder().baseUrl(base).apiKey("k")
                .model("stories260K").temperature(0.0).maxTokens(N).build()).build());
    }

    @Test
    void aChatClientCallAndStreamGetTheInProcessReply() {
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
