package org.flexidepth.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.javalin.Javalin;
import io.javalin.http.Context;
import org.flexidepth.llama.BatchEngine;
import org.flexidepth.llama.BatchEngineOptions;
import org.flexidepth.llama.ChatPrompt;
import org.flexidepth.llama.ChatReply;
import org.flexidepth.llama.ChatRequest;
import org.flexidepth.llama.ChatTemplate;
import org.flexidepth.llama.ContextFullException;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.InvalidArgumentException;
import org.flexidepth.llama.LlamaException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.ModelOptions;
import org.flexidepth.llama.Pooling;
import org.flexidepth.llama.QueueFullException;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.llama.Token;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Instant;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

import static org.flexidepth.server.OpenAiRequests.JSON;

/**
 * An OpenAI-compatible HTTP server on one model: {@code /v1/chat/completions} (streaming, tools,
 * JSON schemas, logprobs), {@code /v1/completions}, {@code /v1/embeddings}, {@code /v1/models},
 * {@code /health} and Prometheus {@code /metrics}. Requests share one {@link BatchEngine}
 * (continuous batching); Javalin serves HTTP, Jackson reads and writes JSON.
 */
public final class OpenAiServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(OpenAiServer.class);
    private final ServerOptions options;
    private final LlamaModel model;
    private final FlexiDepthPlugin plugin;
    private final BatchEngine engine;
    private final ChatTemplate template;
    private final Session embeddings; // one embedding request at a time, guarded by itself
    private final String modelName;
    private final Javalin http;
    // requests to /v1 being answered; close() waits for them
    private final java.util.concurrent.Phaser inFlight = new java.util.concurrent.Phaser(1);
    private volatile boolean draining;
    private final DisconnectWatch disconnects = new DisconnectWatch();

    OpenAiServer(ServerOptions options) throws java.io.IOException {
        this.options = options;
        java.nio.file.Path file = options.model().isPresent() ? options.model().get() : org.flexidepth.tools.DefaultModel.stories260K();
        this.model = LlamaModel.load(file, ModelOptions.builder().rpcServers(options.rpcServers()).build());
        try {
            this.plugin = options.flexiDepth().map(model::loadFlexiDepth).orElse(null);
            BatchEngineOptions.Builder e = BatchEngineOptions.builder().slots(options.slots()).contextPerSlot(options.contextPerSlot())
                    .queueCapacity(options.queue()).threads(options.threads());
            if (plugin != null) {
                e.flexiDepth(plugin, options.tau().orElse(plugin.defaultThreshold()));
            }
            this.engine = model.newBatchEngine(e.build());
            this.template = options.chatTemplate().isPresent()
                    ? model.chatTemplate(readTemplate(options.chatTemplate().get())) : model.chatTemplate();
            this.embeddings = model.newSession(SessionOptions.builder().contextSize(options.contextPerSlot())
                    .batchSize(options.contextPerSlot()).embeddings(Pooling.MEAN, 1).threads(options.threads()).build());
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
        String name = file.getFileName().toString();
        this.modelName = name.endsWith(".gguf") ? name.substring(0, name.length() - 5) : name;
        this.http = Javalin.create(cfg -> {
            cfg.startup.showJavalinBanner = false;
            cfg.concurrency.useVirtualThreads = true;
            cfg.http.maxRequestSize = options.maxBodyBytes();
            cfg.routes.before("/v1/*", this::authorize);
            cfg.routes.get("/health", this::health);
            cfg.routes.get("/metrics", this::metrics);
            cfg.routes.get("/v1/models", this::models);
            cfg.routes.post("/v1/chat/completions", counted(this::chat));
            cfg.routes.post("/v1/completions", counted(this::complete));
            cfg.routes.post("/v1/embeddings", counted(this::embed));
            cfg.routes.exception(Exception.class, OpenAiServer::answerError);
        });
    }

    private static String readTemplate(java.nio.file.Path file) {
        try {
            return java.nio.file.Files.readString(file);
        } catch (java.io.IOException e) {
            throw new InvalidArgumentException("cannot read the chat template " + file + ": " + e.getMessage());
        }
    }

    /** Starts listening; returns once the port is bound. */
    OpenAiServer start() {
        http.start(options.host(), options.port());
        LOG.info("serving {} on http://{}:{}/v1 ({} slots of {} tokens{})", modelName, options.host(), port(),
                options.slots(), options.contextPerSlot(), plugin == null ? "" : ", FlexiDepth " + plugin.path().getFileName());
        return this;
    }

    int port() {
        return http.port();
    }

    /** The engine every request goes through (for StreamingOverhead, which compares with it). */
    BatchEngine engine() {
        return engine;
    }

    public static void main(String[] args) {
        ServerOptions o;
        try {
            o = ServerOptions.parse(args);
        } catch (IllegalArgumentException e) {
            if (!e.getMessage().isEmpty()) {
                System.err.println("error: " + e.getMessage());
            }
            System.err.print(ServerOptions.USAGE);
            System.exit(2);
            return;
        }
        try {
            OpenAiServer server = new OpenAiServer(o).start();
            Runtime.getRuntime().addShutdownHook(new Thread(server::close, "flexillama-server-shutdown"));
        } catch (LlamaException | java.io.IOException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(1);
        }
    }

    /**
     * Shuts down gracefully: new requests get 503 (and {@code /health} says so, for a load balancer),
     * the requests in flight finish (each within the server's time limit), then the port closes and
     * the model is freed. Idempotent.
     */
    @Override
    public void close() {
        synchronized (inFlight) {
            if (draining) {
                return;
            }
            draining = true;
        }
        int phase = inFlight.arrive();
        try {
            inFlight.awaitAdvanceInterruptibly(phase, options.maxSeconds() + 5L, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (TimeoutException e) {
            LOG.warn("requests still running after {} s; closing anyway", options.maxSeconds() + 5);
        }
        http.stop();
        disconnects.close();
        engine.close();
        template.close();
        model.close();
    }

    /** OpenAI's error body for what a request threw, with the status that says what went wrong. */
    private static void answerError(Exception e, Context ctx) {
        switch (e) {
            case OpenAiRequests.BadRequest x -> fail(ctx, 400, x.getMessage(), "invalid_request_error");
            case InvalidArgumentException x -> fail(ctx, 400, x.getMessage(), "invalid_request_error");
            case ContextFullException x -> fail(ctx, 400, x.getMessage(), "context_length_exceeded");
            case ClientGone x -> ctx.status(499); // nginx's "client closed request"
            case QueueFullException x -> fail(ctx, 429, x.getMessage(), "rate_limit_exceeded");
            default -> {
                LOG.error("request failed", e);
                fail(ctx, 500, e.getMessage(), "server_error");
            }
        }
    }

    /**
     * A handler that close() waits for, refused with 503 once shutting down. Its answer (or error)
     * is written before it counts as done: Javalin would write it after the handler returns, when
     * close() may already be stopping the server.
     */
    private io.javalin.http.Handler counted(io.javalin.http.Handler handler) {
        return ctx -> {
            synchronized (inFlight) {
                if (draining) {
                    fail(ctx, 503, "the server is shutting down", "server_shutting_down");
                    return;
                }
                inFlight.register();
            }
            try {
                try {
                    handler.handle(ctx);
                } catch (Exception e) {
                    answerError(e, ctx);
                }
                java.io.InputStream body = ctx.resultInputStream();
                if (body != null && !ctx.res().isCommitted()) {
                    byte[] bytes = body.readAllBytes();
                    ctx.res().setContentLength(bytes.length);
                    ctx.res().getOutputStream().write(bytes);
                    ctx.res().flushBuffer();
                    ctx.result(new byte[0]);
                }
            } finally {
                inFlight.arriveAndDeregister();
            }
        };
    }

    private void health(Context ctx) {
        ctx.status(draining ? 503 : 200).contentType("application/json")
                .result(draining ? "{\"status\":\"shutting down\"}" : "{\"status\":\"ok\"}");
    }

    private void authorize(Context ctx) {
        if (options.apiKey().isPresent() && !("Bearer " + options.apiKey().get()).equals(ctx.header("Authorization"))) {
            fail(ctx, 401, "a valid API key is required (Authorization: Bearer KEY)", "invalid_api_key");
            ctx.skipRemainingHandlers();
        }
    }

    private static void fail(Context ctx, int status, String message, String type) {
        ctx.status(status).contentType("application/json").result(OpenAiResponses.error(message, type).toString());
    }

    private void models(Context ctx) {
        ObjectNode list = JSON.createObjectNode().put("object", "list");
        list.putArray("data").addObject().put("id", modelName).put("object", "model").put("created", 0).put("owned_by", "flexillama");
        ctx.contentType("application/json").result(list.toString());
    }

    private void metrics(Context ctx) {
        BatchEngine.Stats s = engine.stats();
        String text = """
                # HELP flexillama_requests_queued Requests waiting for a slot.
                # TYPE flexillama_requests_queued gauge
                flexillama_requests_queued %d
                # HELP flexillama_requests_active Requests in a slot.
                # TYPE flexillama_requests_active gauge
                flexillama_requests_active %d
                # HELP flexillama_tokens_generated_total Tokens generated.
                # TYPE flexillama_tokens_generated_total counter
                flexillama_tokens_generated_total %d
                # HELP flexillama_prompt_tokens_total Prompt tokens evaluated (reused ones excluded).
                # TYPE flexillama_prompt_tokens_total counter
                flexillama_prompt_tokens_total %d
                # HELP flexillama_decodes_total Native decodes.
                # TYPE flexillama_decodes_total counter
                flexillama_decodes_total %d
                # HELP flexillama_layers_per_token Mean layers per generated token (FlexiDepth skips some).
                # TYPE flexillama_layers_per_token gauge
                flexillama_layers_per_token %s
                """.formatted(s.queued(), s.active(), s.generatedTokens(), s.promptTokens(), s.decodes(), s.meanLayers());
        ctx.contentType("text/plain; version=0.0.4").result(text);
    }

    private long deadline() {
        return System.nanoTime() + TimeUnit.SECONDS.toNanos(options.maxSeconds());
    }

    /**
     * Waits for a generation that is not streamed; it is cancelled past the time limit or when the
     * client goes away.
     */
    private GenerationResult await(Context ctx, CompletableFuture<GenerationResult> f) throws Exception {
        DisconnectWatch.Connection connection = new DisconnectWatch.Connection(numeric(ctx.req().getLocalAddr()), ctx.req().getLocalPort(),
                numeric(ctx.req().getRemoteAddr()), ctx.req().getRemotePort());
        try (AutoCloseable watch = disconnects.watch(connection, () -> f.cancel(true))) {
            return f.get(options.maxSeconds(), TimeUnit.SECONDS);
        } catch (java.util.concurrent.CancellationException e) {
            throw new ClientGone();
        } catch (TimeoutException e) {
            f.cancel(true);
            throw new LlamaException("the request ran past the server's time limit of " + options.maxSeconds() + " s");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof Exception x ? x : e;
        } catch (InterruptedException e) {
            f.cancel(true);
            throw e;
        }
    }

    /** The client of a request went away, which cancelled its generation: there is no one to answer. */
    private static final class ClientGone extends RuntimeException {
        ClientGone() {
            super("the client went away", null, false, false);
        }
    }

    private static java.net.InetAddress numeric(String address) throws java.net.UnknownHostException {
        return java.net.InetAddress.getByName(address.startsWith("[") ? address.substring(1, address.length() - 1) : address);
    }

    private void chat(Context ctx) throws Exception {
        JsonNode body = OpenAiRequests.body(ctx.bodyAsBytes());
        ChatRequest request = OpenAiRequests.chat(body);
        GenerationOptions generation = OpenAiRequests.generation(body, true);
        ChatPrompt prompt = template.render(request);
        String id = "chatcmpl-" + UUID.randomUUID();
        long created = Instant.now().getEpochSecond();
        boolean parseCalls = !request.tools().isEmpty() && request.toolChoice() != ChatRequest.ToolChoice.NONE;
        if (!body.path("stream").asBoolean(false)) {
            GenerationResult r = await(ctx, engine.submit(prompt, generation, t -> { }));
            ChatReply reply = template.parse(prompt, r);
            ObjectNode out = OpenAiResponses.envelope(id, "chat.completion", created, modelName);
            ObjectNode choice = out.putArray("choices").addObject().put("index", 0);
            ObjectNode message = choice.putObject("message").put("role", "assistant").put("content", reply.content());
            message.putNull("refusal"); // OpenAI's SDKs expect the field, null when nothing was refused
            reply.reasoning().ifPresent(x -> message.put("reasoning_content", x));
            if (!reply.toolCalls().isEmpty()) {
                message.set("tool_calls", OpenAiResponses.toolCalls(reply.toolCalls(), false));
            }
            choice.put("finish_reason", OpenAiResponses.finishReason(r.stopReason(), !reply.toolCalls().isEmpty()));
            if (generation.topLogProbabilities() > 0 || body.path("logprobs").asBoolean(false)) {
                choice.set("logprobs", OpenAiResponses.chatLogprobs(r.tokens()));
            } else {
                choice.putNull("logprobs");
            }
            out.set("usage", OpenAiResponses.usage(r));
            OpenAiResponses.flexiDepth(out, r, model.info().layers());
            ctx.contentType("application/json").result(out.toString());
            return;
        }
        EventStream events = new EventStream(ctx);
        boolean logprobs = body.path("logprobs").asBoolean(false);
        events.send(chatChunk(id, created, JSON.createObjectNode().put("role", "assistant").put("content", ""), null, null).toString());
        StringBuilder text = new StringBuilder();
        StringBuilder sent = new StringBuilder();
        // text and sent belong to the request's thread, which makes every event in order
        Consumer<Token> onToken = t -> events.send(() -> {
            text.append(t.text());
            // with tools, content is what the template's parser leaves of the text (calls are not content)
            String content = parseCalls ? partialContent(prompt, text.toString()) : text.toString();
            if (content.length() > sent.length() && content.startsWith(sent.toString())) {
                String delta = content.substring(sent.length());
                sent.append(delta);
                return chatChunk(id, created, JSON.createObjectNode().put("content", delta), null,
                        logprobs ? OpenAiResponses.chatLogprobs(List.of(t)) : null).toString();
            }
            return null;
        });
        CompletableFuture<GenerationResult> f = engine.submit(prompt, generation, onToken);
        f.whenComplete((r, e) -> {
            if (e != null) {
                if (!f.isCancelled()) {
                    events.send(OpenAiResponses.error(String.valueOf(e.getMessage()), "server_error").toString());
                }
            } else {
                events.send(() -> lastChatChunk(id, created, prompt, r, sent.toString()));
            }
            events.end();
        });
        events.pump(f, deadline());
    }

    /** The stream's last event: what the parsed reply adds to the content sent, its calls, usage. */
    private String lastChatChunk(String id, long created, ChatPrompt prompt, GenerationResult r, String sent) {
        ChatReply reply = template.parse(prompt, r);
        ObjectNode delta = JSON.createObjectNode();
        if (reply.content().length() > sent.length() && reply.content().startsWith(sent)) {
            delta.put("content", reply.content().substring(sent.length()));
        }
        if (!reply.toolCalls().isEmpty()) {
            delta.set("tool_calls", OpenAiResponses.toolCalls(reply.toolCalls(), true));
        }
        ObjectNode last = chatChunk(id, created, delta, OpenAiResponses.finishReason(r.stopReason(), !reply.toolCalls().isEmpty()), null);
        last.set("usage", OpenAiResponses.usage(r));
        OpenAiResponses.flexiDepth(last, r, model.info().layers());
        return last.toString();
    }

    private String partialContent(ChatPrompt prompt, String text) {
        try {
            return template.parse(prompt, text, true).content();
        } catch (InvalidArgumentException e) {
            return "";
        }
    }

    private ObjectNode chatChunk(String id, long created, ObjectNode delta, String finishReason, ObjectNode logprobs) {
        ObjectNode chunk = OpenAiResponses.envelope(id, "chat.completion.chunk", created, modelName);
        ObjectNode choice = chunk.putArray("choices").addObject().put("index", 0);
        choice.set("delta", delta);
        if (logprobs != null) {
            choice.set("logprobs", logprobs);
        }
        if (finishReason == null) {
            choice.putNull("finish_reason");
        } else {
            choice.put("finish_reason", finishReason);
        }
        return chunk;
    }

    private void complete(Context ctx) throws Exception {
        JsonNode body = OpenAiRequests.body(ctx.bodyAsBytes());
        List<String> prompts = OpenAiRequests.texts(body.get("prompt"), "prompt");
        if (prompts.size() != 1) {
            throw new OpenAiRequests.BadRequest("one prompt per request");
        }
        GenerationOptions generation = OpenAiRequests.generation(body, false);
        String id = "cmpl-" + UUID.randomUUID();
        long created = Instant.now().getEpochSecond();
        boolean logprobs = generation.topLogProbabilities() > 0 || body.path("logprobs").isInt();
        if (!body.path("stream").asBoolean(false)) {
            GenerationResult r = await(ctx, engine.submit(prompts.get(0), generation, t -> { }));
            ObjectNode out = OpenAiResponses.envelope(id, "text_completion", created, modelName);
            ObjectNode choice = out.putArray("choices").addObject().put("index", 0).put("text", r.text());
            if (logprobs) {
                choice.set("logprobs", OpenAiResponses.completionLogprobs(r.tokens()));
            } else {
                choice.putNull("logprobs");
            }
            choice.put("finish_reason", OpenAiResponses.finishReason(r.stopReason(), false));
            out.set("usage", OpenAiResponses.usage(r));
            OpenAiResponses.flexiDepth(out, r, model.info().layers());
            ctx.contentType("application/json").result(out.toString());
            return;
        }
        EventStream events = new EventStream(ctx);
        CompletableFuture<GenerationResult> f = engine.submit(prompts.get(0), generation, t -> events.send(() -> {
            ObjectNode chunk = OpenAiResponses.envelope(id, "text_completion", created, modelName);
            ObjectNode choice = chunk.putArray("choices").addObject().put("index", 0).put("text", t.text());
            choice.set("logprobs", logprobs ? OpenAiResponses.completionLogprobs(List.of(t)) : JSON.nullNode());
            choice.putNull("finish_reason");
            return chunk.toString();
        }));
        f.whenComplete((r, e) -> {
            if (e == null) {
                ObjectNode last = OpenAiResponses.envelope(id, "text_completion", created, modelName);
                last.putArray("choices").addObject().put("index", 0).put("text", "").putNull("logprobs")
                        .put("finish_reason", OpenAiResponses.finishReason(r.stopReason(), false));
                last.set("usage", OpenAiResponses.usage(r));
                events.send(last.toString());
            } else if (!f.isCancelled()) {
                events.send(OpenAiResponses.error(String.valueOf(e.getMessage()), "server_error").toString());
            }
            events.end();
        });
        events.pump(f, deadline());
    }

    private void embed(Context ctx) {
        JsonNode body = OpenAiRequests.body(ctx.bodyAsBytes());
        List<String> texts = OpenAiRequests.texts(body.get("input"), "input");
        // tokenized once, as Session.embed would, so that usage counts what was evaluated
        List<int[]> inputs = texts.stream().map(t -> t.isEmpty() ? new int[0] : model.tokenize(t, true, true)).toList();
        List<float[]> vectors;
        synchronized (embeddings) {
            vectors = embeddings.embedTokenized(inputs, true);
        }
        int tokens = inputs.stream().mapToInt(t -> t.length).sum();
        ObjectNode out = JSON.createObjectNode().put("object", "list").put("model", modelName);
        ArrayNode data = out.putArray("data");
        for (int i = 0; i < vectors.size(); i++) {
            ArrayNode v = data.addObject().put("object", "embedding").put("index", i).putArray("embedding");
            for (float x : vectors.get(i)) {
                v.add(x);
            }
        }
        out.putObject("usage").put("prompt_tokens", tokens).put("total_tokens", tokens);
        ctx.contentType("application/json").result(out.toString());
    }
}
