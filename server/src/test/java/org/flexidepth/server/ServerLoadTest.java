package org.flexidepth.server;

import com.fasterxml.jackson.databind.JsonNode;
import org.flexidepth.llama.ChatMessage;
import org.flexidepth.llama.ChatRequest;
import org.flexidepth.llama.ChatTemplate;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.tools.DefaultModel;
import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * 32 clients on loopback for 60 s against a server of 4 slots and a queue of 8: greedy chats (each
 * reply must equal the library's own reply to it, computed alone in process), streams dropped
 * after a few events, requests given up on. No 5xx, 429 only as the full server's answer, every
 * completed reply right, the process's memory flat, and the server idle and usable at the end.
 */
class ServerLoadTest {
    static final List<String> QUESTIONS = List.of("Tell me about a cat.", "Who is Lily?", "What did Tom find?", "Sing a song.");
    static final List<Integer> LENGTHS = List.of(6, 16);
    static final int CLIENTS = 32;
    static final long SECONDS = Long.getLong("flexillama.load.seconds", 60);

    static long rssKiB() throws Exception {
        return Files.readAllLines(Path.of("/proc/self/status")).stream().filter(l -> l.startsWith("VmRSS:"))
                .mapToLong(l -> Long.parseLong(l.replaceAll("[^0-9]", ""))).findFirst().orElseThrow();
    }

    @Test
    void thirtyTwoClientsWithDisconnectsAndCancellations() throws Exception {
        Path model = DefaultModel.stories260K();
        Map<String, String> expected = new ConcurrentHashMap<>();
        try (LlamaModel m = LlamaModel.load(model); ChatTemplate t = m.chatTemplate();
             Session s = m.newSession(SessionOptions.builder().contextSize(512).build())) {
            for (String q : QUESTIONS) {
                for (int n : LENGTHS) {
                    s.clear();
                    expected.put(q + n, s.chat(t.render(ChatRequest.of(List.of(ChatMessage.user(q)))),
                            GenerationOptions.builder().maxTokens(n).build()).reply().content());
                }
            }
        }
        try (OpenAiServer server = new OpenAiServer(ServerOptions.parse(new String[] {"--model", model.toString(), "--port", "0",
                "--slots", "4", "--queue", "8", "--ctx", "512"})).start()) {
            String base = "http://127.0.0.1:" + server.port() + "/v1";
            HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            List<String> problems = new CopyOnWriteArrayList<>();
            AtomicInteger ok = new AtomicInteger(), full = new AtomicInteger(), dropped = new AtomicInteger(), abandoned = new AtomicInteger();
            long warm = 0;
            long end = System.nanoTime() + SECONDS * 1_000_000_000L;
            List<Thread> clients = new ArrayList<>();
            for (int c = 0; c < CLIENTS; c++) {
                SplittableRandom random = new SplittableRandom(c);
                clients.add(Thread.ofVirtual().start(() -> {
                    while (System.nanoTime() < end) {
                        String q = QUESTIONS.get(random.nextInt(QUESTIONS.size()));
                        int n = LENGTHS.get(random.nextInt(LENGTHS.size()));
                        int kind = random.nextInt(10);
                        String body = "{\"messages\":[{\"role\":\"user\",\"content\":\"" + q + "\"}],\"max_tokens\":" + (kind < 7 ? n : 200)
                                + ",\"temperature\":0" + (kind >= 7 ? ",\"stream\":true" : "") + "}";
                        HttpRequest request = HttpRequest.newBuilder(URI.create(base + "/chat/completions"))
                                .POST(HttpRequest.BodyPublishers.ofString(body)).header("Content-Type", "application/json").build();
                        try {
                            if (kind < 6) { // a chat whose reply is checked
                                HttpResponse<String> r = http.send(request, HttpResponse.BodyHandlers.ofString());
                                if (r.statusCode() == 200) {
                                    String content = OpenAiRequests.JSON.readTree(r.body()).path("choices").get(0).path("message").path("content").asText();
                                    if (!content.equals(expected.get(q + n))) {
                                        problems.add("wrong reply to " + q + "/" + n + ": " + content);
                                    }
                                    ok.incrementAndGet();
                                } else if (r.statusCode() == 429) {
                                    full.incrementAndGet();
                                    Thread.sleep(random.nextInt(5, 50)); // a client backs off
                                } else {
                                    problems.add(r.statusCode() + ": " + r.body());
                                }
                            } else if (kind == 6) { // given up on before the answer
                                var f = http.sendAsync(request, HttpResponse.BodyHandlers.ofString());
                                Thread.sleep(random.nextInt(1, 20));
                                f.cancel(true);
                                abandoned.incrementAndGet();
                            } else { // a stream dropped after a few events
                                HttpResponse<InputStream> r = http.send(request, HttpResponse.BodyHandlers.ofInputStream());
                                try (InputStream in = r.body()) {
                                    if (r.statusCode() == 200) {
                                        in.readNBytes(random.nextInt(50, 400));
                                        dropped.incrementAndGet();
                                    } else if (r.statusCode() == 429) {
                                        full.incrementAndGet();
                                        Thread.sleep(random.nextInt(5, 50));
                                    } else {
                                        problems.add("stream " + r.statusCode() + ": " + new String(in.readAllBytes()));
                                    }
                                }
                            }
                        } catch (java.io.IOException e) {
                            // a connection this client dropped itself
                        } catch (Exception e) {
                            problems.add(e.toString());
                        }
                    }
                }));
            }
            // memory after a third of the run (the heap and the caches have grown to their working size) and at the end
            Thread.sleep(SECONDS * 1000 / 3);
            System.gc();
            warm = rssKiB();
            for (Thread t : clients) {
                t.join();
            }
            System.gc();
            long after = rssKiB();
            assertTrue(problems.isEmpty(), problems.size() + " problems, first: " + problems.subList(0, Math.min(5, problems.size())));
            assertTrue(ok.get() > 100, "completed replies: " + ok.get());
            System.out.printf("load: %d replies checked, %d answered 429, %d streams dropped, %d requests abandoned; RSS %d -> %d KiB%n",
                    ok.get(), full.get(), dropped.get(), abandoned.get(), warm, after);
            assertTrue(after - warm < 64 * 1024, "memory grew from " + warm + " to " + after + " KiB");
            String metrics;
            long deadline = System.nanoTime() + 30_000_000_000L;
            do {
                Thread.sleep(50);
                metrics = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/metrics")).build(),
                        HttpResponse.BodyHandlers.ofString()).body();
            } while (!(metrics.contains("flexillama_requests_active 0") && metrics.contains("flexillama_requests_queued 0"))
                    && System.nanoTime() < deadline);
            assertTrue(metrics.contains("flexillama_requests_active 0"), "the abandoned requests end: " + metrics);
            HttpResponse<String> last = http.send(HttpRequest.newBuilder(URI.create(base + "/chat/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"messages\":[{\"role\":\"user\",\"content\":\"Who is Lily?\"}],\"max_tokens\":6,\"temperature\":0}"))
                    .build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, last.statusCode());
            JsonNode reply = OpenAiRequests.JSON.readTree(last.body());
            assertEquals(expected.get("Who is Lily?6"), reply.path("choices").get(0).path("message").path("content").asText());
        }
    }
}
