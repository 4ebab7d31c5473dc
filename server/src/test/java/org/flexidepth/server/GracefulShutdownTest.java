package org.flexidepth.server;

import com.fasterxml.jackson.databind.JsonNode;
import org.flexidepth.tools.DefaultModel;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Closing the server (as its shutdown hook does on SIGTERM) over HTTP: a long request in flight
 * runs to its end, new requests and {@code /health} get 503 while it does, then the port closes.
 */
class GracefulShutdownTest {
    static final HttpClient HTTP = HttpClient.newHttpClient();
    static final int TOKENS = 1800;

    static HttpRequest completion(int port, int maxTokens) {
        return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"Once upon a time\",\"max_tokens\":" + maxTokens
                        + ",\"temperature\":0,\"ignore_eos\":true}")).build();
    }

    static HttpResponse<String> get(int port, String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void requestsInFlightFinishAndNewOnesAreRefused() throws Exception {
        OpenAiServer server = new OpenAiServer(ServerOptions.parse(new String[] {"--model", DefaultModel.stories260K().toString(),
                "--port", "0", "--slots", "1", "--ctx", "2048", "--threads", "1"})).start();
        int port = server.port();
        CompletableFuture<HttpResponse<String>> running = HTTP.sendAsync(completion(port, TOKENS), HttpResponse.BodyHandlers.ofString());
        while (!get(port, "/metrics").body().contains("flexillama_requests_active 1")) {
            Thread.sleep(5);
        }
        CompletableFuture<Void> closing = CompletableFuture.runAsync(server::close);
        HttpResponse<String> health;
        do {
            Thread.sleep(5);
            health = get(port, "/health");
        } while (health.statusCode() == 200 && !closing.isDone());
        if (!closing.isDone()) {
            assertEquals(503, health.statusCode(), health.body());
            HttpResponse<String> refused = HTTP.send(completion(port, 4), HttpResponse.BodyHandlers.ofString());
            assertEquals(503, refused.statusCode(), refused.body());
            assertTrue(refused.body().contains("shutting down"), refused.body());
        }

        HttpResponse<String> done = running.get();
        assertEquals(200, done.statusCode(), done.body());
        JsonNode body = OpenAiRequests.JSON.readTree(done.body());
        assertEquals(TOKENS, body.path("usage").path("completion_tokens").asInt(), "the request in flight ran to its end");
        closing.get();
        assertThrows(IOException.class, () -> get(port, "/health"), "the port is closed once the requests are done");
    }
}
