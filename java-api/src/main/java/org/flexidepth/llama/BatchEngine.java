package org.flexidepth.llama;

import org.flexidepth.llama.bindings.llama_batch;
import org.flexidepth.llama.bindings.llama_context_params;
import org.flexidepth.llama.bindings.llama_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * Many requests on one model, decoded together: llama-server's slots (continuous batching). One
 * context holds a sequence per slot; each step is one decode holding the next token of every
 * generating request and chunks of the prompts that wait, so on a memory-bound CPU eight requests
 * cost little more than one. Each request has its own sampling (grammar included), stop strings
 * and token limit; a slot keeps its cache for the next request, which reuses the longest common
 * prefix. Requests that find every slot busy wait in a bounded queue, first come first served.
 * Thread-safe: submit from any thread; tokens are passed to each request's consumer on the
 * engine's own thread.
 */
public final class BatchEngine implements AutoCloseable {
    private final LlamaModel model;
    private final BatchEngineOptions options;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment ctx, batch, batchToken, batchPos, batchLogits, batchSeq, batchNSeq;
    private final Slot[] slots;
    private final ArrayDeque<Request> queue = new ArrayDeque<>(); // guarded by lock
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition work = lock.newCondition();
    private final Thread loop;
    private final MemorySegment sampled, topIds, topLogProbs, routingGates, routingRun;
    private final PieceBuffer pieces; // the engine thread's
    private final List<Integer> routedLayers;
    private final AtomicLong generatedTokens = new AtomicLong(), promptTokens = new AtomicLong(), decodes = new AtomicLong();
    private final AtomicLong layersUsed = new AtomicLong(), routedTokens = new AtomicLong();
    // decode steps (no prompt token in the batch) with a plug-in: routed layers passed, and those
    // that some token of the step ran, whose full-layer weights the step therefore read
    private final AtomicLong routedLayerSteps = new AtomicLong(), routedLayersRead = new AtomicLong();
    private volatile boolean closing;
    private int nextPrompt; // round-robin start among slots evaluating prompts

    BatchEngine(LlamaModel model, BatchEngineOptions options) {
        this.model = model;
        this.options = options;
        options.flexiDepth().ifPresent(f -> {
            if (f.plugin().model() != model) {
                throw new InvalidArgumentException("the plug-in was loaded for " + f.plugin().model().path().getFileName()
                        + ", not for " + model.path().getFileName());
            }
        });
        MemorySegment params = llama_h.llama_context_default_params(arena);
        llama_context_params.n_ctx(params, options.slots() * options.contextPerSlot());
        llama_context_params.n_batch(params, options.batchSize());
        llama_context_params.n_ubatch(params, Math.min(options.batchSize(), 512));
        llama_context_params.n_seq_max(params, options.slots());
        llama_context_params.kv_unified(params, false); // a KV stream per slot: no slot can fill another's room
        llama_context_params.n_threads(params, options.effectiveThreads());
        llama_context_params.n_threads_batch(params, options.effectiveThreads());
        NativeLog.clearNativeError();
        MemorySegment c = llama_h.llama_init_from_model(model.handle(), params);
        if (c.equals(MemorySegment.NULL)) {
            arena.close();
            throw new LlamaException("cannot create a batch engine with " + options + NativeLog.nativeErrorSuffix());
        }
        ctx = c;
        int n = options.batchSize();
        batch = llama_h.llama_batch_init(arena, n, 0, 1);
        batchToken = llama_batch.token(batch).reinterpret(4L * n);
        batchPos = llama_batch.pos(batch).reinterpret(4L * n);
        batchLogits = llama_batch.logits(batch).reinterpret(n);
        batchNSeq = llama_batch.n_seq_id(batch).reinterpret(4L * n);
        batchSeq = llama_batch.seq_id(batch).reinterpret(8L * n);
        for (int i = 0; i < n; i++) {
            batchNSeq.setAtIndex(ValueLayout.JAVA_INT, i, 1);
        }
        sampled = arena.allocate(ValueLayout.JAVA_INT);
        topIds = arena.allocate(ValueLayout.JAVA_INT, 64);
        topLogProbs = arena.allocate(ValueLayout.JAVA_FLOAT, 64);
        pieces = new PieceBuffer(arena, model.vocab());
        slots = new Slot[options.slots()];
        for (int i = 0; i < slots.length; i++) {
            slots[i] = new Slot(i);
        }
        if (options.flexiDepth().isPresent()) {
            BatchEngineOptions.FlexiDepth f = options.flexiDepth().get();
            try {
                FlexiDepthPlugin.setOn(ctx, f.plugin(), f.tau(), Map.of());
            } catch (FlexiDepthException e) {
                free();
                throw e;
            }
            routedLayers = f.plugin().routedLayers();
            routingGates = arena.allocate(ValueLayout.JAVA_FLOAT, (long) routedLayers.size() * n);
            routingRun = arena.allocate(ValueLayout.JAVA_BYTE, (long) routedLayers.size() * n);
        } else {
            routedLayers = List.of();
            routingGates = routingRun = MemorySegment.NULL;
        }
        loop = Thread.ofPlatform().daemon().name("flexillama-batch-engine").start(this::run);
    }

    /** {@return the model the engine decodes} */
    public LlamaModel model() {
        return model;
    }

    /** {@return the engine's shape} */
    public BatchEngineOptions options() {
        return options;
    }

    /**
     * What the engine is doing, for metrics.
     *
     * @param queued          requests waiting for a slot
     * @param active          requests in a slot (evaluating their prompt or generating)
     * @param generatedTokens tokens generated since the engine started
     * @param promptTokens    prompt tokens evaluated since it started (reused ones excluded)
     * @param decodes         native decodes since it started
     * @param meanLayers      with a plug-in, layers per generated token so far (as each was evaluated);
     *                        else the model's depth
     * @param routedLayersRead with a plug-in, the share of routed layers whose full-layer weights
     *                        (Wq, Wo, the FFN) the decode steps so far read: a step reads a layer's
     *                        when any of its tokens runs that layer, so several streams skip less
     *                        than one; 1 without a plug-in or before the first step
     */
    public record Stats(int queued, int active, long generatedTokens, long promptTokens, long decodes, double meanLayers,
                        double routedLayersRead) {
    }

    /** {@return the engine's counters now} */
    public Stats stats() {
        int queued, active = 0;
        lock.lock();
        try {
            queued = queue.size();
            for (Slot s : slots) {
                active += s.request != null ? 1 : 0;
            }
        } finally {
            lock.unlock();
        }
        long routed = routedTokens.get();
        double layers = routed == 0 ? model.info().layers() : (double) layersUsed.get() / routed;
        long steps = routedLayerSteps.get();
        return new Stats(queued, active, generatedTokens.get(), promptTokens.get(), decodes.get(), layers,
                steps == 0 ? 1.0 : (double) routedLayersRead.get() / steps);
    }

    /**
     * Queues a completion of {@code prompt}, tokenized as {@link Session#generate(String, GenerationOptions)} does.
     *
     * @param prompt  the text to continue, not empty
     * @param options limits, stop strings and sampling
     * @param onToken called on the engine's thread with each token, in order; it must not block
     *                (hand slow work to another thread)
     * @return the result; cancelling it stops the request at the next step
     * @throws QueueFullException if the queue is full
     * @throws ContextFullException if the prompt does not fit a slot
     * @throws ResourceClosedException if the engine is closing
     */
    public CompletableFuture<GenerationResult> submit(String prompt, GenerationOptions options, Consumer<Token> onToken) {
        return submit(model.tokenize(prompt, true, true), options, onToken);
    }

    /**
     * Queues a completion of tokens.
     *
     * @param prompt  token ids of the engine's model, at least one, used as they are
     * @param options limits, stop strings and sampling
     * @param onToken called on the engine's thread with each token; it must not block
     * @return the result; cancelling it stops the request at the next step
     * @throws QueueFullException if the queue is full
     * @throws ContextFullException if the prompt does not fit a slot
     */
    public CompletableFuture<GenerationResult> submit(int[] prompt, GenerationOptions options, Consumer<Token> onToken) {
        return enqueue(prompt, options, ChatConstraint.NONE, onToken);
    }

    /**
     * Queues the reply to a rendered chat: its grammar, stop strings and special tokens, as
     * {@link Session#generate(ChatPrompt, GenerationOptions)}.
     *
     * @param prompt  a chat rendered by a template of the engine's model
     * @param options limits, stop strings and sampling (no second grammar)
     * @param onToken called on the engine's thread with each token; it must not block
     * @return the result; parse its text with {@link ChatTemplate#parse(ChatPrompt, String)}
     * @throws QueueFullException if the queue is full
     * @throws InvalidArgumentException if the chat is another model's, or two grammars would apply
     */
    public CompletableFuture<GenerationResult> submit(ChatPrompt prompt, GenerationOptions options, Consumer<Token> onToken) {
        return enqueue(prompt.tokens(), prompt.replyOptions(model, options), ChatConstraint.of(prompt, model), onToken);
    }

    private CompletableFuture<GenerationResult> enqueue(int[] prompt, GenerationOptions options, ChatConstraint constraint,
                                                        Consumer<Token> onToken) {
        if (options == null || onToken == null) {
            throw new InvalidArgumentException("the options and the token consumer must not be null");
        }
        model.checkTokens(prompt);
        if (prompt.length == 0) {
            throw new InvalidArgumentException("the prompt is empty");
        }
        if (options.flexiDepthThreshold().isPresent() && routedLayers.isEmpty()) {
            throw new InvalidArgumentException("a FlexiDepth threshold was given, but the engine has no plug-in (BatchEngineOptions.flexiDepth)");
        }
        if (prompt.length >= this.options.contextPerSlot()) {
            throw new ContextFullException("the prompt has " + prompt.length + " tokens; a slot holds " + this.options.contextPerSlot()
                    + " (including at least one generated token)");
        }
        Request r = new Request(prompt.clone(), options, constraint, onToken);
        lock.lock();
        try {
            if (closing) {
                throw new ResourceClosedException("the batch engine is closing");
            }
            long free = Arrays.stream(slots).filter(s -> s.request == null).count();
            if (queue.size() >= free + this.options.queueCapacity()) {
                throw new QueueFullException("all " + slots.length + " slots are busy and " + queue.size()
                        + " requests wait (BatchEngineOptions.queueCapacity)");
            }
            queue.add(r);
            work.signal();
        } finally {
            lock.unlock();
        }
        return r.future;
    }

    /** A queued or running request. */
    private static final class Request {
        final int[] prompt;
        final GenerationOptions options;
        final ChatConstraint constraint;
        final Consumer<Token> onToken;
        final CompletableFuture<GenerationResult> future = new CompletableFuture<>();
        final long submitted = System.nanoTime();

        Request(int[] prompt, GenerationOptions options, ChatConstraint constraint, Consumer<Token> onToken) {
            this.prompt = prompt;
            this.options = options;
            this.constraint = constraint;
            this.onToken = onToken;
        }
    }

    /** A sequence of the context: the tokens its cache holds, and the request using it. */
    private final class Slot {
        final int seq;
        int[] cached = new int[0];
        int cachedLength;
        Request request;
        MemorySegment sampler;
        int at;             // next prompt token to evaluate; prompt.length once generating
        int reused;
        int pendingToken = -1; // the sampled token, evaluated in the next step
        int row = -1;       // batch index of this slot's logits in the last decode, -1 for none
        int last = -1;      // batch index of its last token in the last decode
        StopReason stopAfter; // ended: its last token is evaluated only for its layers (with a plug-in)
        int added;          // tokens this slot put in the last decode
        Utf8Accumulator utf8;
        StopStringMatcher stops;
        StringBuilder text;
        List<Token> tokens;
        List<LayerUsage> usage;
        long started, promptDone, lastToken;
        long lastUsed; // when its last request ended; 0 for never

        Slot(int seq) {
            this.seq = seq;
        }

        int commonPrefix(int[] prompt) {
            int n = 0;
            while (n < cachedLength && n < prompt.length && cached[n] == prompt[n]) {
                n++;
            }
            return n;
        }

        void start(Request r) {
            int reuse = commonPrefix(r.prompt);
            if (reuse == r.prompt.length) {
                reuse--; // the last prompt token is evaluated again for its logits
            }
            MemorySegment mem = llama_h.llama_get_memory(ctx);
            if (!llama_h.llama_memory_seq_rm(mem, seq, reuse, -1)) {
                llama_h.llama_memory_seq_rm(mem, seq, 0, -1);
                reuse = 0;
            }
            cachedLength = reuse;
            if (!routedLayers.isEmpty()) {
                // this request's threshold for its sequence's tokens from the next decode on (-1: the engine's)
                FlexiDepthException.throwIfFailed(llama_h.llama_set_flexidepth_threshold_seq(ctx, seq, r.options.flexiDepthThreshold().orElse(-1f)));
            }
            sampler = CommonSampler.create(model, r.options.sampling(), r.prompt, r.constraint);
            request = r;
            at = reuse;
            reused = reuse;
            pendingToken = -1;
            stopAfter = null;
            utf8 = new Utf8Accumulator();
            stops = new StopStringMatcher(r.options.stopStrings());
            text = new StringBuilder();
            tokens = new ArrayList<>();
            usage = new ArrayList<>();
            started = System.nanoTime();
        }

        void cache(int token) {
            if (cachedLength == cached.length) {
                cached = Arrays.copyOf(cached, Math.max(64, 2 * cached.length));
            }
            cached[cachedLength++] = token;
        }

        /** Ends the request: frees its sampler and the slot (the cache stays for a later prefix). */
        void finish(StopReason reason) {
            Request r = request;
            CommonSampler.free(sampler);
            sampler = null;
            request = null;
            long now = System.nanoTime();
            long promptEnd = promptDone == 0 ? now : promptDone;
            Optional<LayerStats> layers = routedLayers.isEmpty() ? Optional.empty() : Optional.of(LayerStats.of(usage, routedLayers));
            GenerationStats stats = new GenerationStats(r.prompt.length, reused, tokens.size(), Duration.ofNanos(promptEnd - started),
                    Duration.ofNanos(now - promptEnd), layers);
            promptDone = 0;
            lastUsed = now;
            r.future.complete(new GenerationResult(text.toString(), tokens, reason, stats));
        }

        void fail(RuntimeException e) {
            Request r = request;
            CommonSampler.free(sampler);
            sampler = null;
            request = null;
            promptDone = 0;
            llama_h.llama_memory_seq_rm(llama_h.llama_get_memory(ctx), seq, 0, -1);
            cachedLength = 0;
            r.future.completeExceptionally(e);
        }
    }

    private void run() {
        while (true) {
            lock.lock();
            try {
                admit();
                while (Arrays.stream(slots).allMatch(s -> s.request == null)) {
                    if (closing && queue.isEmpty()) {
                        return;
                    }
                    work.awaitUninterruptibly();
                    admit();
                }
            } finally {
                lock.unlock();
            }
            try {
                step();
            } catch (RuntimeException e) {
                // a failure of the decode itself: every request in it fails, the others go on
                for (Slot s : slots) {
                    if (s.request != null && s.added > 0) {
                        s.fail(e);
                    }
                }
            }
        }
    }

    /**
     * Moves waiting requests into free slots: each to the free slot whose cache shares most of its
     * prompt, or, when none shares more than BOS, to the one used least recently, so that a cache
     * another request may continue is kept longest. Under the lock.
     */
    private void admit() {
        while (!queue.isEmpty()) {
            int[] prompt = queue.peek().prompt;
            Slot best = null, oldest = null;
            for (Slot s : slots) {
                if (s.request != null) {
                    continue;
                }
                if (best == null || s.commonPrefix(prompt) > best.commonPrefix(prompt)) {
                    best = s;
                }
                if (oldest == null || s.lastUsed < oldest.lastUsed) {
                    oldest = s;
                }
            }
            if (best == null) {
                return;
            }
            if (best.commonPrefix(prompt) <= 1) {
                best = oldest;
            }
            Request r = queue.poll();
            if (r.future.isDone()) {
                continue; // cancelled while it waited
            }
            try {
                best.start(r);
            } catch (RuntimeException e) {
                r.future.completeExceptionally(e); // e.g. a grammar that does not parse
            }
        }
    }

    /** One decode: a token of every generating slot, then prompt chunks, round-robin. */
    private void step() {
        int n = 0;
        for (Slot s : slots) {
            s.row = -1;
            s.last = -1;
            s.added = 0;
            if (s.request != null && s.request.future.isDone()) {
                s.finish(StopReason.CANCELLED); // the future was cancelled: nothing more to compute
            }
        }
        for (Slot s : slots) {
            if (s.request != null && s.pendingToken >= 0) {
                s.row = s.stopAfter == null ? n : -1;
                s.last = n;
                add(n++, s.pendingToken, s.cachedLength, s.seq, s.stopAfter == null);
                s.cache(s.pendingToken);
                s.added = 1;
                s.pendingToken = -1;
            }
        }
        for (int k = 0; k < slots.length && n < options.batchSize(); k++) {
            Slot s = slots[(nextPrompt + k) % slots.length];
            if (s.request == null || s.at >= s.request.prompt.length) {
                continue;
            }
            int chunk = Math.min(options.batchSize() - n, s.request.prompt.length - s.at);
            for (int i = 0; i < chunk; i++) {
                boolean last = s.at + i == s.request.prompt.length - 1;
                if (last) {
                    s.row = n;
                }
                s.last = n;
                add(n++, s.request.prompt[s.at + i], s.cachedLength, s.seq, last);
                s.cache(s.request.prompt[s.at + i]);
            }
            s.added += chunk;
            s.at += chunk;
            promptTokens.addAndGet(chunk);
        }
        nextPrompt = (nextPrompt + 1) % slots.length;
        if (n == 0) {
            return;
        }
        llama_batch.n_tokens(batch, n);
        decodes.incrementAndGet();
        int rc = llama_h.llama_decode(ctx, batch);
        if (rc != 0) {
            for (Slot s : slots) {
                s.cachedLength -= s.added; // upstream dropped this batch's positions
            }
            throw new DecodeException(rc, "a batch of " + n + " tokens failed" + NativeLog.nativeErrorSuffix());
        }
        List<LayerUsage> routing = routing(n);
        countLayersRead(routing);
        for (Slot s : slots) {
            if (s.request == null || s.last < 0) {
                continue;
            }
            if (!routing.isEmpty() && !s.tokens.isEmpty() && s.added == 1) {
                LayerUsage u = routing.get(s.last); // the layers the last generated token used
                s.usage.add(u);
                layersUsed.addAndGet(u.layersUsed());
                routedTokens.incrementAndGet();
            }
            if (s.stopAfter != null) {
                s.finish(s.stopAfter);
                continue;
            }
            if (s.row < 0) {
                continue; // a prompt chunk before its last
            }
            if (s.promptDone == 0) {
                s.promptDone = System.nanoTime();
                s.lastToken = s.promptDone;
            }
            try {
                produce(s);
            } catch (RuntimeException e) {
                s.fail(e);
            }
        }
    }

    private void countLayersRead(List<LayerUsage> routing) {
        if (routing.isEmpty()) {
            return;
        }
        for (Slot s : slots) {
            if (s.added > 1) {
                return; // a prompt chunk: not a decode step
            }
        }
        int read = 0;
        for (int r = 0; r < routedLayers.size(); r++) {
            for (LayerUsage u : routing) {
                if (u.ran(r)) {
                    read++;
                    break;
                }
            }
        }
        routedLayersRead.addAndGet(read);
        routedLayerSteps.addAndGet(routedLayers.size());
    }

    private void add(int i, int token, int pos, int seq, boolean logits) {
        batchToken.setAtIndex(ValueLayout.JAVA_INT, i, token);
        batchPos.setAtIndex(ValueLayout.JAVA_INT, i, pos);
        batchLogits.set(ValueLayout.JAVA_BYTE, i, (byte) (logits ? 1 : 0));
        batchSeq.getAtIndex(ValueLayout.ADDRESS, i).reinterpret(4).set(ValueLayout.JAVA_INT, 0, seq);
    }

    private List<LayerUsage> routing(int n) {
        if (routedLayers.isEmpty()) {
            return List.of();
        }
        return LayerUsage.ofLastDecode(ctx, routingGates, routingRun, options.batchSize(), n, model.info().layers(), routedLayers);
    }

    /** Samples the slot's next token from its row of the logits and passes it on; ends the request when it stops. */
    private void produce(Slot s) {
        if (!llama_h.llama_fork_logits_finite(ctx, s.row)) {
            throw new DecodeException("the logits are not finite (NaN or infinite): the model computes garbage for this input");
        }
        int rc = llama_h.llama_fork_common_sampler_sample(s.sampler, ctx, s.row, sampled);
        if (rc == llama_h.LLAMA_FORK_SAMPLE_NO_CANDIDATE()) {
            throw new InvalidArgumentException("the grammar admits no token of this model's vocabulary after " + s.tokens.size() + " generated tokens");
        }
        if (rc != llama_h.LLAMA_FORK_SAMPLE_OK()) {
            throw new DecodeException(rc, "sampling failed: " + NativeStrings.lastError());
        }
        int id = sampled.get(ValueLayout.JAVA_INT, 0);
        float logProb = llama_h.llama_fork_token_logprob(ctx, s.row, id);
        List<Token.Alternative> alternatives = alternatives(s.row, s.request.options.topLogProbabilities());
        long now = System.nanoTime();
        Duration latency = Duration.ofNanos(now - s.lastToken);
        s.lastToken = now;
        generatedTokens.incrementAndGet();
        StopReason stop;
        String piece;
        if (model.isEndOfGeneration(id)) {
            piece = s.stops.append(s.utf8.flush()) + s.stops.flush();
            stop = StopReason.END_OF_GENERATION;
        } else {
            boolean special = s.request.constraint.visibleTokens().contains(id);
            piece = s.stops.append(s.utf8.append(bytes(id, special)));
            stop = s.stops.stopped() ? StopReason.STOP_STRING
                    : s.tokens.size() + 1 >= s.request.options.maxTokens() ? StopReason.MAX_TOKENS
                    : s.cachedLength + 1 >= options.contextPerSlot() ? StopReason.CONTEXT_FULL : null;
            if (stop == StopReason.MAX_TOKENS || stop == StopReason.CONTEXT_FULL) {
                piece += s.stops.append(s.utf8.flush());
                if (s.stops.stopped()) {
                    stop = StopReason.STOP_STRING;
                } else {
                    piece += s.stops.flush();
                }
            }
        }
        // a token is passed on before it is evaluated, so its layers are known a step later: the
        // request's GenerationStats.layers() holds them
        Token t = new Token(id, piece, logProb, latency, Optional.empty(), alternatives);
        s.tokens.add(t);
        s.text.append(piece);
        try {
            s.request.onToken.accept(t);
        } catch (RuntimeException e) {
            s.fail(e); // the consumer's exception ends its own request only
            return;
        }
        if (stop == null) {
            s.pendingToken = id;
        } else if (!routedLayers.isEmpty() && stop != StopReason.CONTEXT_FULL && stop != StopReason.END_OF_GENERATION
                && s.cachedLength + 1 < options.contextPerSlot()) {
            s.pendingToken = id; // evaluated once more, for its layers, as a session does
            s.stopAfter = stop;
        } else {
            s.finish(stop);
        }
    }

    private List<Token.Alternative> alternatives(int row, int n) {
        if (n == 0) {
            return List.of();
        }
        int got = llama_h.llama_fork_token_top_logprobs(ctx, row, Math.min(n, 64), topIds, topLogProbs);
        List<Token.Alternative> out = new ArrayList<>(Math.max(got, 0));
        for (int i = 0; i < got; i++) {
            int id = topIds.getAtIndex(ValueLayout.JAVA_INT, i);
            out.add(new Token.Alternative(id, new String(bytes(id, true), StandardCharsets.UTF_8),
                    topLogProbs.getAtIndex(ValueLayout.JAVA_FLOAT, i)));
        }
        return out;
    }

    private byte[] bytes(int token, boolean special) {
        return pieces.bytes(token, special);
    }

    /**
     * Stops taking requests, lets those queued and running finish, then frees the context.
     * Idempotent; closing the model closes its engines.
     */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closing) {
                return;
            }
            closing = true;
            work.signal();
        } finally {
            lock.unlock();
        }
        boolean interrupted = false;
        while (Thread.currentThread() != loop && loop.isAlive()) {
            try {
                loop.join();
            } catch (InterruptedException e) {
                interrupted = true; // the requests in flight finish first, as close() promises
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        free();
        model.engineClosed(this);
    }

    private void free() {
        llama_h.llama_batch_free(batch);
        llama_h.llama_free(ctx);
        arena.close();
    }
}
