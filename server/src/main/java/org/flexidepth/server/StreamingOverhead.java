package org.flexidepth.server;

import org.flexidepth.llama.BatchEngine;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.Sampling;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The server's cost per token: one client streaming a completion over HTTP (SSE, one event per
 * token, read as it comes) against the same completion submitted in process to the server's own
 * {@link BatchEngine} (the same weights and context, so that only the HTTP path differs),
 * interleaved in one run. Prints tokens/s of each and their ratio (medians).
 * <p>
 * usage: {@code java -cp server/target/flexillama-server.jar org.flexidepth.server.StreamingOverhead MODEL THREADS TOKENS ROUNDS}
 */
public final class StreamingOverhead {
    private StreamingOverhead() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: StreamingOverhead MODEL THREADS TOKENS ROUNDS");
            System.exit(2);
        }
        String model = args[0], threads = args[1];
        int tokens = Integer.parseInt(args[2]), rounds = Integer.parseInt(args[3]);
        String body = "{\"prompt\":\"Once upon a time\",\"max_tokens\":" + tokens + ",\"temperature\":0,\"stream\":true,\"ignore_eos\":true}";
        List<Double> http = new ArrayList<>(), direct = new ArrayList<>();
        try (OpenAiServer server = new OpenAiServer(ServerOptions.parse(new String[] {"--model", model, "--port", "0", "--slots", "1",
                "--threads", threads, "--ctx", String.valueOf(tokens + 64)})).start()) {
            BatchEngine engine = server.engine();
            HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            HttpRequest request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build();
            GenerationOptions options = GenerationOptions.builder().maxTokens(tokens)
                    .sampling(Sampling.builder().temperature(0).ignoreEndOfGeneration(true).build()).build();
            for (int r = 0; r <= rounds; r++) { // round 0 warms both up
                long start = System.nanoTime();
                int events = 0;
                HttpResponse<java.io.InputStream> res = client.send(request, HttpResponse.BodyHandlers.ofInputStream());
                try (BufferedReader in = new BufferedReader(new InputStreamReader(res.body(), StandardCharsets.UTF_8))) {
                    for (String line; (line = in.readLine()) != null; ) {
                        events += line.startsWith("data: {") ? 1 : 0;
                    }
                }
                double viaHttp = events / ((System.nanoTime() - start) / 1e9);
                start = System.nanoTime();
                int n = engine.submit("Once upon a time", options, t -> { }).join().tokens().size();
                double inProcess = n / ((System.nanoTime() - start) / 1e9);
                if (r > 0) {
                    http.add(viaHttp);
                    direct.add(inProcess);
                }
            }
        }
        double h = median(http), d = median(direct);
        System.out.printf("streaming over HTTP: %.2f tokens/s, in process: %.2f tokens/s, ratio %.3f%n", h, d, h / d);
    }

    private static double median(List<Double> v) {
        List<Double> s = new ArrayList<>(v);
        Collections.sort(s);
        return s.size() % 2 == 1 ? s.get(s.size() / 2) : (s.get(s.size() / 2 - 1) + s.get(s.size() / 2)) / 2;
    }
}
