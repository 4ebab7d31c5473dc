package org.flexidepth.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flexidepth.gguf.GgmlType;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.tools.DefaultModel;
import org.flexidepth.tools.RandomFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A server with a FlexiDepth plug-in takes {@code flexidepth_tau} per request, as llama-server
 * built from the fork does: requests at different thresholds decode in one batch, and each gets
 * the text and layer usage a session attached at its threshold gets; one without it gets the
 * server's {@code --tau}.
 */
class FlexiDepthRequestsTest {
    static final String PROMPT = "Once upon a time, there was a little dog";
    static final int N = 16;
    static final float SERVER_TAU = 0.5f;
    @TempDir
    Path dir;

    @Test
    void eachRequestRoutesAtItsOwnThreshold() throws Exception {
        Path model = DefaultModel.stories260K();
        Path plugin = dir.resolve("plugin.gguf");
        RandomFixtures.writePlugin(plugin, new RandomFixtures.Shape(5, 64, 8, 4, 172, 512, 512), 17, List.of(1, 2, 3), 8, 16,
                SERVER_TAU, null, GgmlType.F32);
        ObjectMapper json = new ObjectMapper();
        Float[] taus = {0.3f, 0.7f, null};
        List<JsonNode> answers = new ArrayList<>();
        try (OpenAiServer server = new OpenAiServer(ServerOptions.parse(new String[] {"--model", model.toString(), "--port", "0",
                "--slots", "3", "--ctx", "512", "--flexidepth", plugin.toString(), "--tau", String.valueOf(SERVER_TAU)})).start();
             HttpClient http = HttpClient.newHttpClient()) {
            URI completions = URI.create("http://127.0.0.1:" + server.port() + "/v1/completions");
            List<CompletableFuture<HttpResponse<String>>> sent = new ArrayList<>();
            for (Float tau : taus) {
                String body = "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": " + N + ", \"temperature\": 0"
                        + (tau == null ? "" : ", \"flexidepth_tau\": " + tau) + "}";
                sent.add(http.sendAsync(post(completions, body), HttpResponse.BodyHandlers.ofString()));
            }
            for (CompletableFuture<HttpResponse<String>> f : sent) {
                HttpResponse<String> r = f.join();
                assertEquals(200, r.statusCode(), r.body());
                answers.add(json.readTree(r.body()));
            }
            HttpResponse<String> bad = http.send(post(completions, "{\"prompt\": \"x\", \"max_tokens\": 2, \"flexidepth_tau\": 1.5}"),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(400, bad.statusCode(), bad.body());
            assertTrue(bad.body().contains("threshold"), bad.body());
        }
        try (LlamaModel m = LlamaModel.load(model); FlexiDepthPlugin p = m.loadFlexiDepth(plugin); Session s = m.newSession()) {
            double[] means = new double[taus.length];
            for (int i = 0; i < taus.length; i++) {
                s.clear();
                s.attach(p, taus[i] == null ? SERVER_TAU : taus[i]);
                GenerationResult local = s.complete(PROMPT, GenerationOptions.builder().maxTokens(N).build());
                JsonNode a = answers.get(i);
                assertEquals(local.text(), a.get("choices").get(0).get("text").asText(), "text at tau " + taus[i]);
                means[i] = local.stats().layers().orElseThrow().meanLayers();
                assertEquals(means[i], a.get("flexidepth").get("mean_layers").asDouble(), 1e-9, "mean layers at tau " + taus[i]);
            }
            assertNotEquals(means[0], means[1], "the thresholds route differently");
        }
    }

    static HttpRequest post(URI uri, String json) {
        return HttpRequest.newBuilder(uri).header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(json)).build();
    }
}
