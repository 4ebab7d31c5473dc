package org.flexidepth.tests.flexidepth;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.llama.TokenScores;
import org.flexidepth.tests.Prerequisites;
import org.flexidepth.tests.api.RealModels;
import org.flexidepth.tools.ProjectPaths;
import org.flexidepth.tools.RandomFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.LayerUsage;
import org.flexidepth.llama.Token;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IntSummaryStatistics;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Upstream's tools built from the fork take a plug-in through upstream's own argument parser and
 * {@code common_init_from_params} ({@code --flexidepth}, {@code --flexidepth-tau}; patch 0013):
 * {@code llama-perplexity} on WikiText-2 with a plug-in gives the perplexity that
 * {@code Session.score} gives with it, computed as llama-perplexity computes it (chunks of n_ctx
 * tokens starting with BOS, the second half of each scored). {@code llama-server} takes a
 * threshold per request and answers with the layers its tokens ran (patch 0014), as the Java API
 * computes them; {@code llama-bench} takes a plug-in of its own (patch 0015).
 */
class UpstreamToolsTest {
    static final RandomFixtures.Shape STORIES = new RandomFixtures.Shape(5, 64, 8, 4, 172, 512, 512);
    static final int CTX = 128, CHUNKS = 4;
    static final float TAU = 0.5f;
    @TempDir
    Path dir;

    /** An upstream program built from the fork. */
    static Path tool(String name) {
        Path exe = ProjectPaths.nativeBuild().resolve("bin/" + name);
        Prerequisites.require(Files.isExecutable(exe), exe + " (the native build makes it)");
        return exe;
    }

    /** A random plug-in for stories260K routing layers 1 to 3. */
    Path storiesPlugin() throws IOException {
        Path plugin = dir.resolve("plugin.gguf");
        RandomFixtures.writePlugin(plugin, STORIES, 17, List.of(1, 2, 3), 8, 16, TAU, null, GgmlType.F32);
        return plugin;
    }

    static double perplexityOf(Path exe, Path model, Path text, List<String> extra) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(exe.toString(), "-m", model.toString(), "-f", text.toString(), "-c", String.valueOf(CTX),
                "-b", String.valueOf(CTX), "--chunks", String.valueOf(CHUNKS), "-t", "2"));
        cmd.addAll(extra);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), "llama-perplexity failed: " + out);
        Matcher m = Pattern.compile("Final estimate: PPL = ([0-9.]+)").matcher(out);
        assertTrue(m.find(), "no final estimate in: " + out);
        return Double.parseDouble(m.group(1));
    }

    @Test
    void llamaPerplexityWithAPluginGivesWhatSessionScoreGives() throws Exception {
        Path exe = tool("llama-perplexity");
        Path wiki = ProjectPaths.shared().map(s -> s.resolve("data/wiki.test.raw")).filter(Files::isRegularFile).orElse(null);
        Prerequisites.require(wiki != null, "../shared/data/wiki.test.raw");
        Path text = Files.writeString(dir.resolve("wiki.txt"), Files.readString(wiki).substring(0, 8000));
        Path model = RealModels.stories260K();
        Path plugin = storiesPlugin();

        double base = perplexityOf(exe, model, text, List.of());
        double routed = perplexityOf(exe, model, text, List.of("--flexidepth", plugin.toString(), "--flexidepth-tau", String.valueOf(TAU)));

        try (LlamaModel m = LlamaModel.load(model); FlexiDepthPlugin p = m.loadFlexiDepth(plugin);
             Session s = m.newSession(SessionOptions.builder().contextSize(CTX).build())) {
            int[] tokens = m.tokenize(Files.readString(text), true, false);
            assertTrue(tokens.length >= CHUNKS * CTX, "the text holds " + CHUNKS + " chunks");
            s.attach(p, TAU);
            double nll = 0, layers = 0;
            int count = 0;
            for (int c = 0; c < CHUNKS; c++) {
                int[] chunk = Arrays.copyOfRange(tokens, c * CTX, (c + 1) * CTX);
                chunk[0] = m.bosToken().orElseThrow();
                TokenScores scores = s.score(chunk);
                float[] lp = scores.logProbabilities(); // lp[k]: token k + 1
                for (int k = CTX / 2; k < CTX - 1; k++) {
                    nll -= lp[k];
                    count++;
                }
                layers += scores.meanLayers();
            }
            double expected = Math.exp(nll / count);
            System.out.printf("llama-perplexity: %.4f without the plug-in, %.4f with it; Session.score %.4f at %.2f layers per token%n",
                    base, routed, expected, layers / CHUNKS);
            assertEquals(expected, routed, 1e-3 * expected, "llama-perplexity with --flexidepth computes what the session computes");
            assertTrue(layers / CHUNKS < STORIES.layers(), "the plug-in skips layers");
            assertTrue(Math.abs(routed - base) > 1e-3 * base, "and that changes the perplexity: " + base + " vs " + routed);
        }
    }

    static final String PROMPT = "Once upon a time, there was a little dog";
    static final int N = 20;
    static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void llamaServerTakesAThresholdPerRequestAndAnswersWithLayerUsage() throws Exception {
        Path exe = tool("llama-server");
        Path model = RealModels.stories260K();
        Path plugin = storiesPlugin();
        int port;
        try (ServerSocket socket = new ServerSocket(0)) {
            port = socket.getLocalPort();
        }
        Path log = dir.resolve("server.log");
        Process server = new ProcessBuilder(exe.toString(), "-m", model.toString(), "--flexidepth", plugin.toString(),
                "--flexidepth-tau", String.valueOf(TAU), "-np", "2", "-c", "512", "-t", "2", "--host", "127.0.0.1",
                "--port", String.valueOf(port)).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try (HttpClient http = HttpClient.newHttpClient()) {
            URI base = URI.create("http://127.0.0.1:" + port);
            awaitHealthy(http, base, server, log);
            // two requests at once, each with its own threshold, in the server's shared batch
            float[] taus = {0.3f, 0.7f};
            List<CompletableFuture<HttpResponse<String>>> answers = new ArrayList<>();
            for (float tau : taus) {
                answers.add(http.sendAsync(completion(base, "{\"prompt\": \"" + PROMPT + "\", \"n_predict\": " + N
                        + ", \"temperature\": 0, \"return_tokens\": true, \"cache_prompt\": false, \"flexidepth_tau\": " + tau + "}"),
                        HttpResponse.BodyHandlers.ofString()));
            }
            try (LlamaModel m = LlamaModel.load(model); FlexiDepthPlugin p = m.loadFlexiDepth(plugin);
                 Session s = m.newSession()) {
                double[] means = new double[taus.length];
                for (int i = 0; i < taus.length; i++) {
                    HttpResponse<String> answer = answers.get(i).join();
                    assertEquals(200, answer.statusCode(), answer.body());
                    JsonNode body = JSON.readTree(answer.body());
                    s.clear();
                    s.attach(p, taus[i]);
                    GenerationResult local = s.complete(PROMPT, GenerationOptions.builder().maxTokens(N).build());
                    int[] ids = local.tokens().stream().mapToInt(Token::id).toArray();
                    assertArrayEquals(ids, JSON.treeToValue(body.get("tokens"), int[].class), "greedy tokens at tau " + taus[i]);
                    // the server counts the tokens it fed back: all but the last
                    IntSummaryStatistics layers = local.tokens().subList(0, ids.length - 1).stream()
                            .mapToInt(t -> t.layers().map(LayerUsage::layersUsed).orElseThrow()).summaryStatistics();
                    JsonNode fd = body.path("timings").path("flexidepth");
                    assertTrue(fd.isObject(), "layer usage in the answer: " + answer.body());
                    assertEquals(layers.getAverage(), fd.get("mean_layers").asDouble(), 1e-9, "mean layers at tau " + taus[i]);
                    assertEquals(layers.getMin(), fd.get("min_layers").asInt());
                    assertEquals(layers.getMax(), fd.get("max_layers").asInt());
                    assertEquals(STORIES.layers(), fd.get("model_layers").asInt());
                    means[i] = layers.getAverage();
                }
                System.out.printf("llama-server: %.3f layers per token at tau %.1f, %.3f at tau %.1f%n", means[0], taus[0], means[1], taus[1]);
                assertNotEquals(means[0], means[1], "the two thresholds route differently");
            }
            HttpResponse<String> bad = http.send(completion(base, "{\"prompt\": \"x\", \"n_predict\": 2, \"flexidepth_tau\": 1.5}"),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(400, bad.statusCode(), bad.body());
            assertTrue(bad.body().contains("flexidepth_tau"), bad.body());
        } finally {
            server.destroy();
            server.waitFor();
        }
    }

    static HttpRequest completion(URI base, String json) {
        return HttpRequest.newBuilder(base.resolve("/completion")).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json)).build();
    }

    static void awaitHealthy(HttpClient http, URI base, Process server, Path log) throws Exception {
        for (int attempt = 0; attempt < 600; attempt++) {
            if (!server.isAlive()) {
                throw new AssertionError("llama-server exited: " + Files.readString(log));
            }
            try {
                if (http.send(HttpRequest.newBuilder(base.resolve("/health")).build(), HttpResponse.BodyHandlers.discarding()).statusCode() == 200) {
                    return;
                }
            } catch (IOException notYet) {
                // not listening yet
            }
            Thread.sleep(100);
        }
        throw new AssertionError("llama-server did not become healthy: " + Files.readString(log));
    }

    @Test
    void llamaBenchTakesAPlugin() throws Exception {
        Path exe = tool("llama-bench");
        Path model = RealModels.stories260K();
        Path plugin = storiesPlugin();
        Process ok = new ProcessBuilder(exe.toString(), "-m", model.toString(), "--flexidepth", plugin.toString(),
                "-p", "16", "-n", "4", "-r", "1", "-t", "2", "-o", "json").redirectErrorStream(false).start();
        String out = new String(ok.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(ok.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, ok.waitFor(), err);
        assertEquals(2, JSON.readTree(out).size(), "a prompt and a generation test: " + out);
        // without --flexidepth-tau and --flexidepth-mode: the plug-in's own threshold, AUTO
        assertTrue(err.contains(String.format(Locale.ROOT, "threshold %.3f, mode auto", TAU)), err);
        Process set = new ProcessBuilder(exe.toString(), "-m", model.toString(), "--flexidepth", plugin.toString(), "--flexidepth-tau", "0.25",
                "--flexidepth-mode", "masked", "-p", "4", "-n", "0", "-r", "1", "-t", "2").redirectErrorStream(true).start();
        String setOut = new String(set.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, set.waitFor(), setOut);
        assertTrue(setOut.contains("threshold 0.250, mode masked"), setOut);
        // a plug-in built for another model is refused with the loader's reason
        Path other = dir.resolve("other.gguf");
        RandomFixtures.writePlugin(other, new RandomFixtures.Shape(5, 96, 8, 4, 172, 512, 512), 17, List.of(1, 2), 8, 16, TAU, null, GgmlType.F32);
        Process bad = new ProcessBuilder(exe.toString(), "-m", model.toString(), "--flexidepth", other.toString(), "-p", "4", "-n", "0", "-r", "1")
                .redirectErrorStream(true).start();
        String badOut = new String(bad.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(1, bad.waitFor(), badOut);
        assertTrue(badOut.contains("failed to load FlexiDepth plug-in"), badOut);
    }
}
