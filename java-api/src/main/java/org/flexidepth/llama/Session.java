package org.flexidepth.llama;

import org.flexidepth.llama.bindings.llama_batch;
import org.flexidepth.llama.bindings.llama_context_params;
import org.flexidepth.llama.bindings.llama_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * A llama.cpp context on a model: a KV cache that remembers the tokens evaluated so far, so a
 * prompt that starts with what the cache already holds (the next turn of a chat) only evaluates
 * the new part. Confined to one thread at a time: a call from a second thread while another is
 * inside the session throws {@link ConcurrentUseException}.
 */
public final class Session implements AutoCloseable {
    private final LlamaModel model;
    private final SessionOptions options;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment ctx;
    private final MemorySegment batch;
    private final MemorySegment batchToken, batchPos, batchLogits;
    private final int contextSize, batchSize;
    private final ReentrantLock lock = new ReentrantLock();
    private volatile Thread user;
    private volatile boolean closed;
    // Native scratch reused for every token: token text, logits index.
    private MemorySegment pieceBuffer;
    private int[] cached = new int[64];
    private int cachedLength;
    private Generation active;
    // FlexiDepth: the attached plug-in and reused buffers for the routing of one decode
    private FlexiDepthPlugin plugin;
    private float threshold;
    private MemorySegment routingGates, routingRun;

    Session(LlamaModel model, SessionOptions options) {
        this.model = model;
        this.options = options;
        MemorySegment params = llama_h.llama_context_default_params(arena);
        llama_context_params.n_ctx(params, options.contextSize());
        llama_context_params.n_batch(params, options.batchSize());
        llama_context_params.n_ubatch(params, Math.min(options.batchSize(), 512));
        llama_context_params.n_seq_max(params, 1);
        llama_context_params.n_threads(params, options.effectiveThreads());
        llama_context_params.n_threads_batch(params, options.effectiveThreadsBatch());
        NativeLog.clearNativeError();
        MemorySegment c = llama_h.llama_init_from_model(model.handle(), params);
        if (c.equals(MemorySegment.NULL)) {
            arena.close();
            throw new LlamaException("cannot create a session with " + options + NativeLog.nativeErrorSuffix());
        }
        ctx = c;
        contextSize = llama_h.llama_n_ctx(ctx);
        batchSize = llama_h.llama_n_batch(ctx);
        batch = llama_h.llama_batch_init(arena, batchSize, 0, 1);
        batchToken = llama_batch.token(batch).reinterpret(4L * batchSize);
        batchPos = llama_batch.pos(batch).reinterpret(4L * batchSize);
        batchLogits = llama_batch.logits(batch).reinterpret(batchSize);
        MemorySegment nSeq = llama_batch.n_seq_id(batch).reinterpret(4L * batchSize);
        MemorySegment seqIds = llama_batch.seq_id(batch).reinterpret(8L * batchSize);
        for (int i = 0; i < batchSize; i++) {
            // Every token belongs to sequence 0: set once, never per token.
            nSeq.setAtIndex(ValueLayout.JAVA_INT, i, 1);
            seqIds.getAtIndex(ValueLayout.ADDRESS, i).reinterpret(4).set(ValueLayout.JAVA_INT, 0, 0);
        }
        pieceBuffer = arena.allocate(64);
    }

    public LlamaModel model() {
        return model;
    }

    public SessionOptions options() {
        return options;
    }

    /** Tokens the session can hold. */
    public int contextSize() {
        return contextSize;
    }

    /** Tokens currently in the cache. */
    public int cachedTokenCount() {
        return enter(() -> cachedLength);
    }

    /** The tokens currently in the cache, in order. */
    public int[] cachedTokens() {
        return enter(() -> Arrays.copyOf(cached, cachedLength));
    }

    /**
     * Starts generating a continuation of {@code prompt} (tokenized with BOS and special tokens).
     * The prompt is evaluated before this returns; tokens are produced as the result is iterated.
     *
     * @throws ContextFullException if the prompt leaves no room in the context for a token
     */
    public Generation generate(String prompt, GenerationOptions options) {
        return generate(model.tokenize(prompt), options);
    }

    /** Like {@link #generate(String, GenerationOptions)} for a prompt already tokenized. */
    public Generation generate(int[] promptTokens, GenerationOptions options) {
        return generate(promptTokens, options, r -> { });
    }

    Generation generate(int[] promptTokens, GenerationOptions options, Consumer<GenerationResult> onFinish) {
        model.checkTokens(promptTokens);
        if (promptTokens.length == 0) {
            throw new InvalidArgumentException("the prompt is empty");
        }
        return enter(() -> {
            if (active != null) {
                active.finishQuietly(); // a new generation ends the one left unfinished
            }
            active = new Generation(this, promptTokens, options, onFinish);
            return active;
        });
    }

    /** Generates to the end, passing each token to {@code onToken} as it comes. */
    public GenerationResult generate(String prompt, GenerationOptions options, Consumer<Token> onToken) {
        try (Generation g = generate(prompt, options)) {
            g.forEachRemaining(onToken);
            return g.result();
        }
    }

    /** Generates to the end and returns the whole result. */
    public GenerationResult complete(String prompt, GenerationOptions options) {
        return generate(prompt, options, t -> { });
    }

    /** A conversation that renders its messages with the model's chat template. */
    public Conversation conversation() {
        return new Conversation(this, Optional.empty(), List.of());
    }

    /** A conversation rendered with a named llama.cpp template ("chatml", "llama3", ...). */
    public Conversation conversation(String templateName, List<ChatMessage> history) {
        return new Conversation(this, Optional.of(templateName), history);
    }

    /**
     * Attaches a FlexiDepth plug-in with threshold {@code tau}: from the next evaluated token on,
     * every token is routed and carries its {@link LayerUsage}. Replaces a plug-in attached before.
     * The cache is kept; tokens already in it were computed without (or with the previous) plug-in.
     */
    public void attach(FlexiDepthPlugin plugin, float tau) {
        if (plugin.model() != model) {
            throw new InvalidArgumentException("the plug-in was loaded for " + plugin.model().path().getFileName()
                    + ", not for this session's model " + model.path().getFileName());
        }
        checkThreshold(tau);
        enter(() -> {
            int rc = llama_h.llama_flexidepth_attach(ctx, plugin.handle(), tau);
            if (rc != 0) {
                throw new FlexiDepthException(FlexiDepthException.Reason.of(rc), llama_h.llama_flexidepth_last_error().getString(0));
            }
            int n = plugin.routedLayers().size();
            if (routingGates == null || routingGates.byteSize() < 4L * n * batchSize) {
                routingGates = arena.allocate(ValueLayout.JAVA_FLOAT, (long) n * batchSize);
                routingRun = arena.allocate(ValueLayout.JAVA_BYTE, (long) n * batchSize);
            }
            this.plugin = plugin;
            this.threshold = tau;
            return null;
        });
    }

    /** Changes the threshold of the attached plug-in; takes effect at the next token, no graph rebuild. */
    public void setThreshold(float tau) {
        checkThreshold(tau);
        enter(() -> {
            if (attachedPlugin().isEmpty()) {
                throw new InvalidArgumentException("no FlexiDepth plug-in is attached to this session");
            }
            llama_h.llama_flexidepth_set_threshold(ctx, tau);
            threshold = tau;
            return null;
        });
    }

    /** Detaches the plug-in: the session computes the base model again. */
    public void detach() {
        enter(() -> {
            llama_h.llama_flexidepth_detach(ctx);
            plugin = null;
            return null;
        });
    }

    /**
     * Overrides the routers of the attached plug-in: the routed layers in {@code decisions} run
     * ({@code true}) or are skipped ({@code false}) for every token; the others keep routing. With a
     * plug-in whose adapters are zero, a forced skip removes the layer, which is how static layer
     * removal and early exit are measured. Takes effect at the next token, no graph rebuild.
     *
     * @throws InvalidArgumentException if no plug-in is attached or a layer is not routed
     */
    public void forceRouting(java.util.Map<Integer, Boolean> decisions) {
        enter(() -> {
            FlexiDepthPlugin p = attachedPlugin().orElseThrow(
                    () -> new InvalidArgumentException("no FlexiDepth plug-in is attached to this session"));
            List<Integer> routed = p.routedLayers();
            for (Integer layer : decisions.keySet()) {
                if (!routed.contains(layer)) {
                    throw new InvalidArgumentException("layer " + layer + " is not routed by " + p);
                }
            }
            try (Arena a = Arena.ofConfined()) {
                MemorySegment d = a.allocate(ValueLayout.JAVA_BYTE, routed.size());
                for (int r = 0; r < routed.size(); r++) {
                    Boolean run = decisions.get(routed.get(r));
                    d.set(ValueLayout.JAVA_BYTE, r, (byte) (run == null ? -1 : run ? 1 : 0));
                }
                llama_h.llama_flexidepth_force(ctx, d, routed.size());
            }
            return null;
        });
    }

    /** Lets every router decide again after {@link #forceRouting}. */
    public void releaseRouting() {
        enter(() -> {
            if (attachedPlugin().isPresent()) {
                llama_h.llama_flexidepth_force(ctx, MemorySegment.NULL, 0);
            }
            return null;
        });
    }

    /** The attached plug-in, if any (a closed plug-in is detached). */
    public Optional<FlexiDepthPlugin> attachedPlugin() {
        FlexiDepthPlugin p = plugin;
        return p == null || p.isClosed() ? Optional.empty() : Optional.of(p);
    }

    /** The attached plug-in's threshold tau. */
    public Optional<Float> threshold() {
        return attachedPlugin().map(p -> threshold);
    }

    private static void checkThreshold(float tau) {
        if (!(tau >= 0 && tau <= 1)) {
            throw new InvalidArgumentException("the FlexiDepth threshold must be in [0, 1], was " + tau);
        }
    }

    /**
     * Scores a text the model reads from the start (the cache is cleared first): the log-probability
     * of every token given the ones before it, for perplexity, with each token's layer usage when a
     * plug-in is attached.
     *
     * @throws ContextFullException if the tokens do not fit the context
     */
    public TokenScores score(int[] tokens) {
        model.checkTokens(tokens);
        if (tokens.length < 2) {
            throw new InvalidArgumentException("scoring needs at least two tokens");
        }
        if (tokens.length > contextSize) {
            throw new ContextFullException(tokens.length + " tokens do not fit this session's context of " + contextSize);
        }
        return enter(() -> {
            endActive();
            llama_h.llama_memory_clear(llama_h.llama_get_memory(ctx), true);
            cachedLength = 0;
            float[] logProbs = new float[tokens.length - 1];
            List<LayerUsage> usage = new java.util.ArrayList<>();
            for (int at = 0; at < tokens.length; at += batchSize) {
                int n = Math.min(batchSize, tokens.length - at);
                usage.addAll(decode(tokens, at, n, 0));
                for (int j = 0; j < n && at + j + 1 < tokens.length; j++) {
                    logProbs[at + j] = llama_h.llama_fork_token_logprob(ctx, j, tokens[at + j + 1]);
                }
            }
            return new TokenScores(tokens, logProbs, usage);
        });
    }

    /** Empties the cache. */
    public void clear() {
        enter(() -> {
            endActive();
            llama_h.llama_memory_clear(llama_h.llama_get_memory(ctx), true);
            cachedLength = 0;
            return null;
        });
    }

    /** A snapshot of the cache, restorable with {@link #restoreState(SessionState)}. */
    public SessionState saveState() {
        return enter(() -> {
            endActive();
            long size = llama_h.llama_state_get_size(ctx);
            try (Arena tmp = Arena.ofConfined()) {
                MemorySegment buf = tmp.allocate(size);
                long written = llama_h.llama_state_get_data(ctx, buf, size);
                return new SessionState(Arrays.copyOf(cached, cachedLength), buf.asSlice(0, written).toArray(ValueLayout.JAVA_BYTE));
            }
        });
    }

    /** Restores a snapshot taken from a session of the same model and context size. */
    public void restoreState(SessionState state) {
        enter(() -> {
            endActive();
            byte[] data = state.data();
            if (state.tokensView().length > contextSize) {
                throw new ContextFullException("the state holds " + state.tokensView().length + " tokens, more than this session's context of " + contextSize);
            }
            try (Arena tmp = Arena.ofConfined()) {
                MemorySegment buf = tmp.allocateFrom(ValueLayout.JAVA_BYTE, data);
                NativeLog.clearNativeError();
                long read = llama_h.llama_state_set_data(ctx, buf, data.length);
                if (read == 0) {
                    cachedLength = 0;
                    throw new InvalidArgumentException("the state does not fit this session" + NativeLog.nativeErrorSuffix());
                }
            }
            setCached(state.tokensView(), state.tokensView().length);
            return null;
        });
    }

    /** Writes the cache and its tokens to a file (llama.cpp's session file format). */
    public void saveState(Path file) {
        enter(() -> {
            endActive();
            try (Arena tmp = Arena.ofConfined()) {
                MemorySegment toks = tmp.allocateFrom(ValueLayout.JAVA_INT, Arrays.copyOf(cached, cachedLength));
                NativeLog.clearNativeError();
                if (!llama_h.llama_state_save_file(ctx, tmp.allocateFrom(file.toString()), toks, cachedLength)) {
                    throw new LlamaException("cannot write session state to " + file + NativeLog.nativeErrorSuffix());
                }
            }
            return null;
        });
    }

    /** Restores a file written by {@link #saveState(Path)}. */
    public void restoreState(Path file) {
        enter(() -> {
            endActive();
            if (!java.nio.file.Files.isRegularFile(file)) {
                throw new InvalidArgumentException("session state file not found: " + file);
            }
            try (Arena tmp = Arena.ofConfined()) {
                MemorySegment toks = tmp.allocate(ValueLayout.JAVA_INT, contextSize);
                MemorySegment count = tmp.allocate(ValueLayout.JAVA_LONG);
                NativeLog.clearNativeError();
                if (!llama_h.llama_state_load_file(ctx, tmp.allocateFrom(file.toString()), toks, contextSize, count)) {
                    llama_h.llama_memory_clear(llama_h.llama_get_memory(ctx), true);
                    cachedLength = 0;
                    throw new InvalidArgumentException("cannot restore session state from " + file + NativeLog.nativeErrorSuffix());
                }
                int n = (int) count.get(ValueLayout.JAVA_LONG, 0);
                setCached(toks.asSlice(0, 4L * n).toArray(ValueLayout.JAVA_INT), n);
            }
            return null;
        });
    }

    // ---- used by Generation, always inside enter() ----

    /**
     * Evaluates the prompt after the longest prefix the cache already holds; returns how many were
     * reused. The layer usage of the evaluated tokens goes to {@code usage}.
     */
    int evaluatePrompt(int[] prompt, Generation g, List<LayerUsage> usage) {
        if (prompt.length >= contextSize) {
            throw new ContextFullException("the prompt has " + prompt.length + " tokens; this session's context holds "
                    + contextSize + " (including at least one generated token)");
        }
        int reuse = 0;
        while (reuse < cachedLength && reuse < prompt.length && cached[reuse] == prompt[reuse]) {
            reuse++;
        }
        if (reuse == prompt.length) {
            reuse--; // the last prompt token is evaluated again for its logits
        }
        if (reuse < cachedLength) {
            MemorySegment mem = llama_h.llama_get_memory(ctx);
            if (!llama_h.llama_memory_seq_rm(mem, 0, reuse, -1)) {
                llama_h.llama_memory_clear(mem, true); // e.g. recurrent models cannot drop a suffix
                reuse = 0;
            }
            cachedLength = reuse;
        }
        for (int at = reuse; at < prompt.length; at += batchSize) {
            if (g.isCancelRequested()) {
                break;
            }
            int n = Math.min(batchSize, prompt.length - at);
            usage.addAll(decode(prompt, at, n, at + n == prompt.length ? n - 1 : n));
        }
        return reuse;
    }

    /**
     * Evaluates tokens[off, off+n) at the end of the cache, with logits for the tokens from batch
     * index {@code firstOutput} on (n - 1: the last only; n: none). Returns the tokens' layer usage
     * when a plug-in is attached, else an empty list.
     */
    List<LayerUsage> decode(int[] tokens, int off, int n, int firstOutput) {
        if (cachedLength + n > contextSize) {
            throw new ContextFullException("the context of " + contextSize + " tokens is full");
        }
        for (int i = 0; i < n; i++) {
            batchToken.setAtIndex(ValueLayout.JAVA_INT, i, tokens[off + i]);
            batchPos.setAtIndex(ValueLayout.JAVA_INT, i, cachedLength + i);
            batchLogits.set(ValueLayout.JAVA_BYTE, i, (byte) (i >= firstOutput ? 1 : 0));
        }
        llama_batch.n_tokens(batch, n);
        int rc = llama_h.llama_decode(ctx, batch);
        if (rc == 1) {
            throw new ContextFullException("no room in the KV cache for " + n + " more tokens");
        }
        if (rc != 0) {
            throw new DecodeException(rc, "evaluating " + n + " tokens failed" + NativeLog.nativeErrorSuffix());
        }
        if (cachedLength + n > cached.length) {
            cached = Arrays.copyOf(cached, Math.max(cached.length * 2, cachedLength + n));
        }
        System.arraycopy(tokens, off, cached, cachedLength, n);
        cachedLength += n;
        return routing(n);
    }

    /** Reads the routing of the last decode into the reused native buffers. */
    private List<LayerUsage> routing(int n) {
        Optional<FlexiDepthPlugin> p = attachedPlugin();
        if (p.isEmpty()) {
            return List.of();
        }
        int got = llama_h.llama_flexidepth_get_routing(ctx, routingGates, routingRun, MemorySegment.NULL, MemorySegment.NULL, batchSize);
        if (got != n) {
            throw new DecodeException(got, "expected the routing of " + n + " tokens");
        }
        List<Integer> routed = p.get().routedLayers();
        int r = routed.size();
        List<LayerUsage> out = new java.util.ArrayList<>(n);
        for (int t = 0; t < n; t++) {
            boolean[] ran = new boolean[r];
            float[] gates = new float[r];
            for (int i = 0; i < r; i++) {
                gates[i] = routingGates.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * r + i);
                ran[i] = routingRun.get(ValueLayout.JAVA_BYTE, (long) t * r + i) != 0;
            }
            out.add(new LayerUsage(model.info().layers(), routed, ran, gates));
        }
        return out;
    }

    /** Reads one token's text bytes into the reused native buffer. */
    byte[] tokenBytes(int token) {
        int n = llama_h.llama_token_to_piece(model.vocab(), token, pieceBuffer, (int) pieceBuffer.byteSize(), 0, false);
        if (n < 0) {
            pieceBuffer = arena.allocate(-n);
            n = llama_h.llama_token_to_piece(model.vocab(), token, pieceBuffer, (int) pieceBuffer.byteSize(), 0, false);
        }
        return pieceBuffer.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
    }

    int cachedLengthUnchecked() {
        return cachedLength;
    }

    MemorySegment context() {
        return ctx;
    }

    void generationFinished(Generation g) {
        if (active == g) {
            active = null;
        }
    }

    private void endActive() {
        if (active != null) {
            active.finishQuietly();
        }
    }

    private void setCached(int[] tokens, int n) {
        cached = Arrays.copyOf(tokens, Math.max(64, n));
        cachedLength = n;
    }

    interface Call<T> {
        T run();
    }

    /** Runs {@code call} as the only thread inside this session. */
    <T> T enter(Call<T> call) {
        if (!lock.tryLock()) {
            Thread other = user;
            throw new ConcurrentUseException("the session is in use by thread \"" + (other == null ? "?" : other.getName())
                    + "\"; a session must be used by one thread at a time");
        }
        try {
            if (closed) {
                throw new ResourceClosedException("the session is closed");
            }
            if (active != null && active.owner() != Thread.currentThread()) {
                throw new ConcurrentUseException("the session is generating on thread \"" + active.owner().getName()
                        + "\"; a session must be used by one thread at a time (Generation.cancel() is the exception)");
            }
            if (lock.getHoldCount() == 1) {
                user = Thread.currentThread();
            }
            return call.run();
        } finally {
            if (lock.getHoldCount() == 1) {
                user = null;
            }
            lock.unlock();
        }
    }

    public boolean isClosed() {
        return closed;
    }

    /** Frees the context. Waits for a call in progress on another thread. Idempotent. */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            endActive();
            closed = true;
            llama_h.llama_batch_free(batch);
            llama_h.llama_free(ctx);
            arena.close();
        } finally {
            lock.unlock();
        }
        model.sessionClosed(this);
    }
}
