package org.flexidepth.server;

import com.fasterxml.jackson.databind.JsonNode;
import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.request.ToolChoice;
import dev.langchain4j.model.chat.request.json.JsonObjectSchema;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiEmbeddingModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
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

import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The server as real clients use it: LangChain4j's OpenAI client (chat, streaming, tools,
 * embeddings) gets what the library gives in process, and plain HTTP checks the rest of the
 * contract (auth, errors, 429, metrics, a disconnect that cancels).
 */
class OpenAiServerTest {
    static final String KEY = "test-key";
    static final int N = 24;
    static Path modelFile;
    static OpenAiServer server;
    static String base;
    static final HttpClient HTTP = HttpClient.newHttpClient();

    @BeforeAll
    static void start() throws Exception {
        modelFile = DefaultModel.stories260K();
        // Command R+'s template: its required-call grammar opens with the call, so a model that
        // knows nothing of tools (stories260K) still calls one
        Path commandR = ProjectPaths.nativeBuild().resolve("_deps/llama.cpp-pristine/models/templates/CohereForAI-c4ai-command-r-plus-tool_use.jinja");
        server = new OpenAiServer(ServerOptions.parse(new String[] {"--model", modelFile.toString(), "--port", "0", "--slots", "2",
                "--ctx", "4096", "--queue", "0", "--api-key", KEY, "--chat-template-file", commandR.toString()})).start();
        base = "http://127.0.0.1:" + server.port() + "/v1";
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
    }

    /** The reply the library gives in process, greedy, with the same template. */
    static String inProcess(String user) throws Exception {
        Path commandR = ProjectPaths.nativeBuild().resolve("_deps/llama.cpp-pristine/models/templates/CohereForAI-c4ai-command-r-plus-tool_use.jinja");
        try (LlamaModel m = LlamaModel.load(modelFile); ChatTemplate t = m.chatTemplate(Files.readString(commandR));
             Session s = m.newSession(SessionOptions.builder().contextSize(4096).build())) {
            return s.chat(t.render(ChatRequest.of(List.of(ChatMessage.user(user)))), GenerationOptions.builder().maxTokens(N).build())
                    .reply().content();
        }
    }

    OpenAiChatModel chatModel() {
        return OpenAiChatModel.builder().baseUrl(base).apiKey(KEY).modelName("stories260K").temperature(0.0).maxTokens(N).build();
    }

    @Test
    void langChain4jChatGetsTheInProcessGreedyReply() throws Exception {
        String expected = inProcess("Tell me a story about a cat.");
        assertFalse(expected.isBlank());
        assertEquals(expected, chatModel().chat("Tell me a story about a cat."));
    }

    @Test
    void langChain4jStreamingGetsTheSameText() throws Exception {
        String expected = inProcess("Tell me about a dog.");
        OpenAiStreamingChatModel streaming = OpenAiStreamingChatModel.builder().baseUrl(base).apiKey(KEY).modelName("stories260K")
                .temperature(0.0).maxTokens(N).build();
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        StringBuilder parts = new StringBuilder();
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
        ChatResponse r = done.get();
        assertEquals(expected, parts.toString());
        assertEquals(expected, r.aiMessage().text());
    }

    @Test
    void langChain4jToolCallsParseIntoRequests() throws Exception {
        ToolSpecification add = ToolSpecification.builder().name("add").description("Adds two integers")
                .parameters(JsonObjectSchema.builder().addIntegerProperty("a").addIntegerProperty("b").required("a", "b").build()).build();
        ChatResponse r = chatModel().chat(dev.langchain4j.model.chat.request.ChatRequest.builder()
                .messages(UserMessage.from("What is 2 + 3?")).toolSpecifications(add).toolChoice(ToolChoice.REQUIRED)
                .maxOutputTokens(120).build());
        List<ToolExecutionRequest> calls = r.aiMessage().toolExecutionRequests();
        assertFalse(calls.isEmpty(), "a required call: " + r);
        for (ToolExecutionRequest c : calls) {
            assertEquals("add", c.name());
            JsonNode args = OpenAiRequests.JSON.readTree(c.arguments());
            assertTrue(args.get("a").isIntegralNumber() && args.get("b").isIntegralNumber(), c.arguments());
        }
    }

    @Test
    void langChain4jEmbeddingsAreTheLibrarysVectors() {
        OpenAiEmbeddingModel embeddings = OpenAiEmbeddingModel.builder().baseUrl(base).apiKey(KEY).modelName("stories260K").build();
        float[] got = embeddings.embed("The little dog was happy.").content().vector();
        try (LlamaModel m = LlamaModel.load(modelFile);
             Session s = m.newSession(SessionOptions.builder().embeddings(Pooling.MEAN, 1).build())) {
            assertArrayEquals(s.embed(List.of("The little dog was happy.")).get(0), got, 1e-6f);
        }
    }

    static HttpResponse<String> post(String path, String body, Optional<String> key) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).POST(HttpRequest.BodyPublishers.ofString(body))
                .header("Content-Type", "application/json");
        key.ifPresent(k -> b.header("Authorization", "Bearer " + k));
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static String get(String url) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(url)).header("Authorization", "Bearer " + KEY).build(),
                HttpResponse.BodyHandlers.ofString()).body();
    }

    @Test
    void theContractBeyondTheClients() throws Exception {
        assertEquals(401, post("/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", Optional.empty()).statusCode());
        assertEquals(401, post("/chat/completions", "{}", Optional.of("wrong")).statusCode());
        HttpResponse<String> bad = post("/chat/completions", "{not json", Optional.of(KEY));
        assertEquals(400, bad.statusCode());
        assertTrue(bad.body().contains("\"error\""), bad.body());
        assertEquals(400, post("/chat/completions", "{\"messages\":[]}", Optional.of(KEY)).statusCode());
        assertEquals(400, post("/completions", "{\"prompt\":\"" + "w ".repeat(5000) + "\"}", Optional.of(KEY)).statusCode(),
                "a prompt longer than a slot");
        assertTrue(get("http://127.0.0.1:" + server.port() + "/health").contains("ok"));
        assertTrue(get(base + "/models").contains("\"stories260K\""));

        HttpResponse<String> completion = post("/completions", "{\"prompt\":\"Once upon a time\",\"max_tokens\":8,\"temperature\":0,\"logprobs\":2}",
                Optional.of(KEY));
        assertEquals(200, completion.statusCode(), completion.body());
        JsonNode c = OpenAiRequests.JSON.readTree(completion.body());
        assertEquals(8, c.path("usage").path("completion_tokens").asInt());
        assertEquals(8, c.path("choices").get(0).path("logprobs").path("token_logprobs").size());
        String metrics = get("http://127.0.0.1:" + server.port() + "/metrics");
        assertTrue(metrics.contains("flexillama_tokens_generated_total") && metrics.contains("flexillama_requests_queued 0"), metrics);
    }

    @Test
    void aFullServerAnswers429AndADisconnectCancels() throws Exception {
        // two slots and no queue: two long streams fill the server
        String longStream = "{\"prompt\":\"Once upon a time\",\"max_tokens\":3000,\"temperature\":0,\"stream\":true}";
        List<InputStream> streams = new java.util.ArrayList<>();
        for (int i = 0; i < 2; i++) {
            HttpResponse<InputStream> r = HTTP.send(HttpRequest.newBuilder(URI.create(base + "/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(longStream)).header("Authorization", "Bearer " + KEY).build(),
                    HttpResponse.BodyHandlers.ofInputStream());
            assertEquals(200, r.statusCode());
            assertTrue(r.body().read() >= 0, "the stream has begun");
            streams.add(r.body());
        }
        HttpResponse<String> refused = post("/completions", "{\"prompt\":\"Hi\",\"max_tokens\":4}", Optional.of(KEY));
        assertEquals(429, refused.statusCode(), refused.body());
        for (InputStream s : streams) {
            s.close(); // the clients go away
        }
        String metrics;
        do {
            Thread.sleep(20);
            metrics = get("http://127.0.0.1:" + server.port() + "/metrics");
        } while (!metrics.contains("flexillama_requests_active 0"));
        long generated = metrics.lines().filter(l -> l.startsWith("flexillama_tokens_generated_total "))
                .mapToLong(l -> Long.parseLong(l.split(" ")[1])).findFirst().orElseThrow();
        assertTrue(generated < 2 * 3000, "the streams were cancelled, not run to their end: " + generated + " tokens");
        assertEquals(200, post("/completions", "{\"prompt\":\"Hi\",\"max_tokens\":4}", Optional.of(KEY)).statusCode(), "free again");
    }

    static long generatedTotal() throws Exception {
        return get("http://127.0.0.1:" + server.port() + "/metrics").lines().filter(l -> l.startsWith("flexillama_tokens_generated_total "))
                .mapToLong(l -> Long.parseLong(l.split(" ")[1])).findFirst().orElseThrow();
    }

    @Test
    void aClientThatLeavesARequestNotStreamedCancelsIt() throws Exception {
        long before = generatedTotal();
        String body = "{\"prompt\":\"Once upon a time\",\"max_tokens\":4000,\"temperature\":0,\"ignore_eos\":true}";
        try (java.net.Socket socket = new java.net.Socket("127.0.0.1", server.port())) {
            socket.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY
                    + "\r\nContent-Type: application/json\r\nContent-Length: " + body.length() + "\r\n\r\n" + body)
                    .getBytes(java.nio.charset.StandardCharsets.UTF_8));
            socket.getOutputStream().flush();
            while (!get("http://127.0.0.1:" + server.port() + "/metrics").contains("flexillama_requests_active 1")) {
                Thread.sleep(5);
            }
        } // the client goes away without reading its answer
        while (!get("http://127.0.0.1:" + server.port() + "/metrics").contains("flexillama_requests_active 0")) {
            Thread.sleep(20);
        }
        long generated = generatedTotal() - before;
        assertTrue(generated < 4000, "the generation was cancelled, not run to its end: " + generated + " tokens");
    }
}
