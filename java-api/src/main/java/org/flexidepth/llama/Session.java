package org.flexidepth.llama;

import org.flexidepth.llama.bindings.llama_batch;
import org.flexidepth.llama.bindings.llama_dmtd_params;
import org.flexidepth.llama.bindings.llama_context_params;
import org.flexidepth.llama.bindings.llama_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * A llama.cpp context on a model: a KV cache that remembers the tokens evaluated so far, so a
 * prompt that starts with what the cache already holds (the next turn of a chat) only evaluates
 * the new part. Confined to one thread at a time: a call from a second thread while another is
 * inside the session throws {@link ConcurrentUseException}. Closing it (or its plug-in, or its
 * model) is safe from any thread: it waits for the decode in progress. A call that fails leaves
 * the cache as it was before the call.
 */
public final class Session implements AutoCloseable {
    private final LlamaModel model;
    private final SessionOptions options;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment ctx;
    private final MemorySegment batch;
    private final MemorySegment batchToken, batchPos, batchLogits;
    private final int contextSize, batchSize;
    static final int DEFAULT_MAX_CONTEXT = 4096;
    private final SessionLock lock = new SessionLock();
    // threads closing the session, its plug-in or its model, waiting for the lock or holding it: a
    // call that finds the lock held by one of them waits instead of reporting concurrent use
    private final Set<Thread> lifecycleThreads = ConcurrentHashMap.newKeySet();
    private volatile boolean closed;
    // Native scratch reused for every token: token text, logits index.
    private PieceBuffer pieces;
    private final MemorySegment sampledToken;
    // non-zero aborts the decode in progress (llama_fork_abort_on_flag): cancel() from another thread
    private final MemorySegment abortFlag;
    private static final java.lang.invoke.VarHandle FLAG = ValueLayout.JAVA_INT.varHandle();
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(Session.class);
    private int[] cached = new int[64];
    private int cachedLength;
    private long cacheChanges; // counts native changes to the KV cache, to know when a failed call must restore it
    private Generation active;
    // FlexiDepth: the attached plug-in and reused buffers for the routing of one decode
    private FlexiDepthPlugin plugin;
    private float threshold;
    private Map<Integer, Boolean> forced = Map.of();
    private MemorySegment routingGates, routingRun;
    // LoRA adapters applied, with their scales, in the order given
    private Map<LoraAdapter, Float> loras = Map.of();
    // with DMTD, the kind of step whose logits the next token is sampled from
    private Optional<Token.Step> lastStep = Optional.empty();
    // with DMTD, the thinking layers of its split (0: no DMTD), recorded in saved states
    private int dmtdThinking;

    Session(LlamaModel model, SessionOptions options) {
        this.model = model;
        this.options = options;
        MemorySegment params = llama_h.llama_context_default_params(arena);
        // 0: the training context, but not all of a long-context model's (128k tokens of KV cache
        // is gigabytes a user who asked for nothing did not expect)
        int n = options.contextSize() > 0 ? options.contextSize() : Math.min(model.info().contextLength(), DEFAULT_MAX_CONTEXT);
        llama_context_params.n_ctx(params, n);
        llama_context_params.n_batch(params, options.batchSize());
        llama_context_params.n_ubatch(params, Math.min(options.batchSize(), 512));
        llama_context_params.n_seq_max(params, options.sequences());
        options.embeddings().ifPresent(pooling -> {
            llama_context_params.embeddings(params, true);
            llama_context_params.pooling_type(params, pooling.nativeValue);
            // A text's tokens are pooled within one ubatch (and non-causal models attend over
            // it), so the ubatch is the batch. Upstream's graph reservation for mean pooling
            // asserts (aborts the process) when the ubatch is not a multiple of the sequences,
            // hence the rounding. The cache is one unified pool, so any texts that fit the batch
            // fit the cache.
            int b = Math.max(options.sequences(), options.batchSize() - options.batchSize() % options.sequences());
            llama_context_params.n_batch(params, b);
            llama_context_params.n_ubatch(params, b);
            llama_context_params.n_ctx(params, Math.max(n, b));
            llama_context_params.kv_unified(params, true);
        });
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
        LOG.info("session on {}: context {} tokens, batch {}, {} threads ({} for batches){}", model.path().getFileName(), contextSize,
                batchSize, options.effectiveThreads(), options.effectiveThreadsBatch(),
                options.embeddings().map(p -> ", embeddings pooled " + p.name().toLowerCase(java.util.Locale.ROOT)).orElse(""));
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
        options.dmtd().ifPresent(this::setDmtd);
        pieces = new PieceBuffer(arena, model.vocab());
        sampledToken = arena.allocate(ValueLayout.JAVA_INT);
        abortFlag = arena.allocate(ValueLayout.JAVA_INT);
        llama_h.llama_set_abort_callback(ctx, llama_h.llama_fork_abort_on_flag$address(), abortFlag);
    }

    /** Turns DMTD on for the new context, with the model's split unless the options give one; frees it on failure. */
    private void setDmtd(Dmtd d) {
        MemorySegment p = llama_dmtd_params.allocate(arena);
        boolean declared = llama_h.llama_dmtd_model_params(model.handle(), p);
        if (d.thinkingLayers() == 0 && !declared) {
            freeUnopened();
            throw new InvalidArgumentException(model.path().getFileName() + " declares no DMTD split (dmtd.thinking_layers):"
                    + " it was not fine-tuned for direct multi-token decoding; give Dmtd.withThinkingLayers to run it anyway");
        }
        if (d.thinkingLayers() > 0) {
            llama_dmtd_params.n_thinking(p, d.thinkingLayers());
        }
        llama_dmtd_params.cycle(p, d.cycle());
        llama_dmtd_params.phase(p, d.phase() == Dmtd.Phase.ABSOLUTE ? llama_h.LLAMA_DMTD_PHASE_ABSOLUTE() : llama_h.LLAMA_DMTD_PHASE_PROMPT_END());
        llama_dmtd_params.refill(p, d.refill());
        if (llama_h.llama_set_dmtd(ctx, p) != llama_h.LLAMA_DMTD_OK()) {
            String why = llama_h.llama_dmtd_last_error().getString(0);
            freeUnopened();
            throw new InvalidArgumentException("cannot decode " + model.path().getFileName() + " with " + d + ": " + why);
        }
        dmtdThinking = llama_dmtd_params.n_thinking(p);
        LOG.info("session decodes with DMTD: cycle {}, {} thinking layers of {}, phase {}{}", d.cycle(), dmtdThinking,
                model.info().layers(), d.phase(), d.refill() ? "" : ", no refill");
    }

    /** Frees what the constructor allocated when it cannot finish. */
    private void freeUnopened() {
        llama_h.llama_batch_free(batch);
        llama_h.llama_free(ctx);
        arena.close();
    }

    /**
     * With DMTD, the kind of step whose logits the next sampled token comes from: full depth after
     * a prompt or a cycle head, the decoding layers only otherwise; empty without DMTD.
     */
    Optional<Token.Step> lastStep() {
        return lastStep;
    }

    /** A decode stopped by {@link #abortDecode()}; the cache holds what it held before that decode. */
    static final class Aborted extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Aborted() {
            super("the decode was cancelled", null, false, false);
        }
    }

    /**
     * Stops the decode in progress, if any, between two graph nodes; safe from any thread. A call
     * entering the session clears it, so a late abort stops nothing after its generation.
     */
    void abortDecode() {
        FLAG.setVolatile(abortFlag, 0L, 1);
    }

    /** {@return the model this session evaluates} */
    public LlamaModel model() {
        return model;
    }

    /** {@return the options the session was opened with; {@link #contextSize()} gives the size in effect} */
    public SessionOptions options() {
        return options;
    }

    /** {@return tokens the session can hold} */
    public int contextSize() {
        return contextSize;
    }

    /** {@return tokens currently in the cache} */
    public int cachedTokenCount() {
        return enter(() -> cachedLength);
    }

    /** {@return the tokens currently in the cache, in order} */
    public int[] cachedTokens() {
        return enter(() -> Arrays.copyOf(cached, cachedLength));
    }

    /**
     * Starts generating a continuation of {@code prompt}, tokenized as llama-server tokenizes a raw
     * completion prompt: with BOS, and special-token text (a chat format written by hand) parsed.
     * The prompt is evaluated before this returns; tokens are produced as the result is iterated.
     *
     * @param prompt  the text to continue, not empty
     * @param options limits, stop strings and sampling
     * @return the running generation; it ends any generation of this session left unfinished
     * @throws ContextFullException if the prompt leaves no room in the context for a token
     * @throws InvalidArgumentException if the prompt is null, empty or holds an unpaired surrogate
     */
    public Generation generate(String prompt, GenerationOptions options) {
        return generate(model.tokenize(prompt, true, true), options);
    }

    /**
     * Like {@link #generate(String, GenerationOptions)} for a prompt already tokenized.
     *
     * @param promptTokens token ids of this session's model, at least one; used as they are (no BOS added)
     * @param options      limits, stop strings and sampling
     * @return the running generation; it ends any generation of this session left unfinished
     * @throws ContextFullException if the prompt leaves no room in the context for a token
     * @throws InvalidArgumentException if the prompt is empty or a token is outside the vocabulary
     */
    public Generation generate(int[] promptTokens, GenerationOptions options) {
        return generate(promptTokens, options, r -> { });
    }

    Generation generate(int[] promptTokens, GenerationOptions options, Consumer<GenerationResult> onFinish) {
        return generate(promptTokens, options, ChatConstraint.NONE, onFinish);
    }

    /**
     * Starts generating the reply to a rendered chat: the template's grammar (tool calls, a JSON
     * schema) constrains it, its stop strings are added to {@code options}', and the special tokens
     * its parser reads appear in the text.
     *
     * @param prompt  a chat request rendered by this session's model's {@link ChatTemplate}
     * @param options limits, stop strings and sampling; its sampling must set no grammar or JSON schema
     *                when the rendering has a grammar
     * @return the running generation; parse its text with {@link ChatTemplate#parse(ChatPrompt, String)}
     * @throws InvalidArgumentException if the template is another model's, or two grammars would apply
     * @throws ContextFullException if the prompt leaves no room in the context for a token
     */
    public Generation generate(ChatPrompt prompt, GenerationOptions options) {
        return generate(prompt, options, r -> { });
    }

    Generation generate(ChatPrompt prompt, GenerationOptions options, Consumer<GenerationResult> onFinish) {
        return generate(prompt.tokens(), prompt.replyOptions(model, options), ChatConstraint.of(prompt, model), onFinish);
    }

    /**
     * Generates the whole reply to a rendered chat and parses it with its template.
     *
     * @param prompt  a chat request rendered by this session's model's {@link ChatTemplate}
     * @param options limits, stop strings and sampling
     * @return the parsed reply and the generation
     * @throws InvalidArgumentException as {@link #generate(ChatPrompt, GenerationOptions)}, or if the reply does not parse
     * @throws ContextFullException if the prompt leaves no room in the context for a token
     */
    public ChatResult chat(ChatPrompt prompt, GenerationOptions options) {
        try (Generation g = generate(prompt, options)) {
            GenerationResult r = g.result();
            return new ChatResult(prompt.template().parse(prompt, r.text()), r);
        }
    }

    Generation generate(int[] promptTokens, GenerationOptions options, ChatConstraint constraint, Consumer<GenerationResult> onFinish) {
        if (this.options.embeddings().isPresent()) {
            throw new InvalidArgumentException("this is an embedding session (SessionOptions.embeddings): it embeds, it does not generate");
        }
        model.checkTokens(promptTokens);
        if (promptTokens.length == 0) {
            throw new InvalidArgumentException("the prompt is empty");
        }
        return enter(() -> {
            if (options.flexiDepthThreshold().isPresent() && plugin == null) {
                throw new InvalidArgumentException("a FlexiDepth threshold was given, but no plug-in is attached to this session");
            }
            if (active != null) {
                active.finishQuietly(); // a new generation ends the one left unfinished
            }
            generationThreshold(options.flexiDepthThreshold().orElse(-1f));
            Generation g;
            try {
                g = new Generation(this, promptTokens, options, constraint, onFinish);
            } catch (RuntimeException e) {
                generationThreshold(-1f);
                throw e;
            }
            // one cancelled during its prompt has finished already and holds the session no longer
            active = g.stopReason().isPresent() ? null : g;
            return g;
        });
    }

    /**
     * Generates to the end, passing each token to {@code onToken} as it comes.
     *
     * @param prompt  the text to continue, not empty
     * @param options limits, stop strings and sampling
     * @param onToken called on this thread with each token, in order; an exception it throws ends the
     *                generation and propagates
     * @return the finished generation
     * @throws ContextFullException if the prompt leaves no room in the context for a token
     */
    public GenerationResult generate(String prompt, GenerationOptions options, Consumer<Token> onToken) {
        try (Generation g = generate(prompt, options)) {
            g.forEachRemaining(onToken);
            return g.result();
        }
    }

    /**
     * Generates to the end and returns the whole result.
     *
     * @param prompt  the text to continue, not empty
     * @param options limits, stop strings and sampling
     * @return the finished generation
     * @throws ContextFullException if the prompt leaves no room in the context for a token
     */
    public GenerationResult complete(String prompt, GenerationOptions options) {
        return generate(prompt, options, t -> { });
    }

    /**
     * Embeds texts: each text's tokens (with BOS and special-token text parsed, as llama-server's)
     * are evaluated and pooled as the session's {@link SessionOptions#embeddings()} says, up to
     * {@link SessionOptions#sequences()} texts per native call; vectors are scaled to unit length
     * (as llama-server's do). The cache is emptied before and after.
     *
     * @param texts the texts, each at most {@link SessionOptions#batchSize()} tokens
     * @return one vector per text, in order: the model's embedding width long, or for
     *         {@link Pooling#RANK} the classification head's scores (not normalised)
     * @throws InvalidArgumentException if this is not an embedding session, its pooling is
     *         {@link Pooling#NONE} (use {@link #embedTokens(String)}), or a text is empty or too long
     */
    public List<float[]> embed(List<String> texts) {
        return embed(texts, true);
    }

    /**
     * As {@link #embed(List)}; {@code normalize} false returns the pooled vectors as the model computes them.
     *
     * @param texts     the texts, each at most {@link SessionOptions#batchSize()} tokens
     * @param normalize whether vectors are scaled to unit euclidean length (never scores)
     * @return one vector per text, in order
     * @throws InvalidArgumentException as {@link #embed(List)}
     */
    public List<float[]> embed(List<String> texts, boolean normalize) {
        if (texts == null || texts.stream().anyMatch(java.util.Objects::isNull)) {
            throw new InvalidArgumentException("the texts must not be null");
        }
        return pooled(texts.stream().map(this::embeddingTokens).toList(), pooledKind(), normalize);
    }

    /**
     * As {@link #embed(List, boolean)} for texts already tokenized (with {@link LlamaModel#tokenize(String, boolean, boolean)}
     * and BOS, as {@link #embed(List)} tokenizes them; or token arrays as OpenAI's API takes them).
     *
     * @param tokens    one token array per text, each at most {@link SessionOptions#batchSize()} long
     * @param normalize whether vectors are scaled to unit euclidean length (never scores)
     * @return one vector per array, in order
     * @throws InvalidArgumentException as {@link #embed(List)}, or if a token is not in the vocabulary
     */
    public List<float[]> embedTokenized(List<int[]> tokens, boolean normalize) {
        if (tokens == null || tokens.stream().anyMatch(java.util.Objects::isNull)) {
            throw new InvalidArgumentException("the token arrays must not be null");
        }
        Pooling pooling = pooledKind();
        for (int[] t : tokens) {
            model.checkTokens(checkedLength(t));
        }
        return pooled(tokens.stream().map(int[]::clone).toList(), pooling, normalize);
    }

    /** The session's pooling, refused when it gives no vector per text. */
    private Pooling pooledKind() {
        Pooling pooling = embeddingPooling();
        if (pooling == Pooling.NONE) {
            throw new InvalidArgumentException("pooling NONE gives one vector per token: use embedTokens");
        }
        return pooling;
    }

    /** Evaluates token sequences (each at most a batch) and pools each as {@code pooling} says. */
    private List<float[]> pooled(List<int[]> tokens, Pooling pooling, boolean normalize) {
        return enter(() -> {
            endActive();
            List<float[]> out = new java.util.ArrayList<>(tokens.size());
            int next = 0;
            try {
                while (next < tokens.size()) {
                    // as many whole texts as fit one call: sequences and the batch
                    int first = next;
                    int used = 0;
                    while (next < tokens.size() && next - first < options.sequences() && used + tokens.get(next).length <= batchSize) {
                        used += tokens.get(next++).length;
                    }
                    evaluateSequences(tokens.subList(first, next));
                    for (int seq = 0; seq < next - first; seq++) {
                        out.add(vector(llama_h.llama_get_embeddings_seq(ctx, seq), pooling, normalize && pooling != Pooling.RANK));
                    }
                }
            } finally {
                clearCache();
                resetSequenceIds();
            }
            return out;
        });
    }

    /**
     * One vector per token of {@code text}, for an embedding session with {@link Pooling#NONE}.
     *
     * @param text the text, at most {@link SessionOptions#batchSize()} tokens
     * @return a vector per token (with BOS when the model adds one), each scaled to unit length
     * @throws InvalidArgumentException if this is not an embedding session with pooling NONE, or the text is empty or too long
     */
    public float[][] embedTokens(String text) {
        if (embeddingPooling() != Pooling.NONE) {
            throw new InvalidArgumentException("embedTokens needs an embedding session with Pooling.NONE; this one pools with "
                    + llama_h.llama_pooling_type(ctx));
        }
        int[] tokens = embeddingTokens(text);
        return enter(() -> {
            endActive();
            try {
                evaluateSequences(List.of(tokens));
                float[][] out = new float[tokens.length][];
                for (int i = 0; i < tokens.length; i++) {
                    out[i] = vector(llama_h.llama_get_embeddings_ith(ctx, i), Pooling.NONE, true);
                }
                return out;
            } finally {
                clearCache();
                resetSequenceIds();
            }
        });
    }

    private Pooling embeddingPooling() {
        if (options.embeddings().isEmpty()) {
            throw new InvalidArgumentException("this session generates; open an embedding session with SessionOptions.builder().embeddings(...)");
        }
        int p = llama_h.llama_pooling_type(ctx); // the pooling in effect, MODEL resolved
        return java.util.Arrays.stream(Pooling.values()).filter(v -> v.nativeValue == p).findFirst().orElseThrow();
    }

    /**
     * Scores how well each document answers {@code query}, as llama-server's {@code /rerank} does:
     * each pair becomes the model's rerank prompt (its {@code rerank} chat template, or BOS, query,
     * EOS or SEP, document, EOS as its vocabulary asks) and the score is the first output of the
     * classification head ({@link Pooling#RANK}).
     *
     * @param query     the query
     * @param documents the documents, each with the query at most {@link SessionOptions#batchSize()} tokens
     * @return a score per document, in order; higher is more relevant
     * @throws InvalidArgumentException if this is not an embedding session with {@link Pooling#RANK}, or
     *         a text is null or a pair too long
     */
    public float[] rerank(String query, List<String> documents) {
        if (query == null || documents == null || documents.stream().anyMatch(java.util.Objects::isNull)) {
            throw new InvalidArgumentException("the query and the documents must not be null");
        }
        if (embeddingPooling() != Pooling.RANK) {
            throw new InvalidArgumentException("reranking needs an embedding session with Pooling.RANK (a model with a rank head)");
        }
        List<int[]> pairs = documents.stream().map(d -> checkedLength(rerankTokens(query, d))).toList();
        List<float[]> scores = pooled(pairs, Pooling.RANK, false);
        float[] out = new float[scores.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = scores.get(i)[0];
        }
        return out;
    }

    /** The tokens of llama-server's rerank prompt (format_prompt_rerank). */
    private int[] rerankTokens(String query, String document) {
        MemorySegment vocab = model.vocab();
        Optional<String> template = model.read(() -> {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment t = llama_h.llama_model_chat_template(model.handle(), a.allocateFrom("rerank"));
                return t.equals(MemorySegment.NULL) ? Optional.<String>empty() : Optional.of(t.getString(0));
            }
        });
        if (template.isPresent()) {
            return model.tokenize(template.get().replace("{query}", query).replace("{document}", document), false, true);
        }
        int eos = llama_h.llama_vocab_eos(vocab);
        int separator = eos != llama_h.LLAMA_TOKEN_NULL() ? eos : llama_h.llama_vocab_sep(vocab);
        boolean addEos = llama_h.llama_vocab_get_add_eos(vocab);
        java.util.stream.IntStream.Builder b = java.util.stream.IntStream.builder();
        if (llama_h.llama_vocab_get_add_bos(vocab)) {
            b.add(llama_h.llama_vocab_bos(vocab));
        }
        java.util.Arrays.stream(model.tokenize(query, false, false)).forEach(b::add);
        if (addEos) {
            b.add(separator);
        }
        if (llama_h.llama_vocab_get_add_sep(vocab)) {
            b.add(llama_h.llama_vocab_sep(vocab));
        }
        java.util.Arrays.stream(model.tokenize(document, false, false)).forEach(b::add);
        if (addEos) {
            b.add(separator);
        }
        return b.build().toArray();
    }

    private int[] embeddingTokens(String text) {
        return checkedLength(text.isEmpty() ? new int[0] : model.tokenize(text, true, true));
    }

    private int[] checkedLength(int[] t) {
        if (t.length == 0) {
            throw new InvalidArgumentException("an empty text has no embedding");
        }
        if (t.length > batchSize) {
            throw new InvalidArgumentException("a text of " + t.length + " tokens is longer than this session's batch of "
                    + batchSize + " (SessionOptions.batchSize)");
        }
        return t;
    }

    /** Evaluates whole texts as sequences 0, 1, ... of an emptied cache, every token an output. */
    private void evaluateSequences(List<int[]> texts) {
        clearCache();
        MemorySegment seqIds = llama_batch.seq_id(batch).reinterpret(8L * batchSize);
        int i = 0;
        for (int seq = 0; seq < texts.size(); seq++) {
            int[] t = texts.get(seq);
            for (int p = 0; p < t.length; p++, i++) {
                batchToken.setAtIndex(ValueLayout.JAVA_INT, i, t[p]);
                batchPos.setAtIndex(ValueLayout.JAVA_INT, i, p);
                batchLogits.set(ValueLayout.JAVA_BYTE, i, (byte) 1);
                seqIds.getAtIndex(ValueLayout.ADDRESS, i).reinterpret(4).set(ValueLayout.JAVA_INT, 0, seq);
            }
        }
        llama_batch.n_tokens(batch, i);
        cacheChanges++;
        boolean encoderOnly = llama_h.llama_model_has_encoder(model.handle()) && !llama_h.llama_model_has_decoder(model.handle());
        int rc = encoderOnly ? llama_h.llama_encode(ctx, batch) : llama_h.llama_decode(ctx, batch);
        if (rc != 0) {
            throw new DecodeException(rc, "embedding " + texts.size() + " texts (" + i + " tokens) failed" + NativeLog.nativeErrorSuffix());
        }
    }

    private void resetSequenceIds() {
        MemorySegment seqIds = llama_batch.seq_id(batch).reinterpret(8L * batchSize);
        for (int i = 0; i < batchSize; i++) {
            seqIds.getAtIndex(ValueLayout.ADDRESS, i).reinterpret(4).set(ValueLayout.JAVA_INT, 0, 0);
        }
    }

    private float[] vector(MemorySegment v, Pooling pooling, boolean normalize) {
        if (v.equals(MemorySegment.NULL)) {
            throw new DecodeException("llama.cpp returned no embedding" + NativeLog.nativeErrorSuffix());
        }
        int n = pooling == Pooling.RANK ? llama_h.llama_model_n_cls_out(model.handle()) : llama_h.llama_model_n_embd(model.handle());
        float[] out = v.reinterpret(4L * n).toArray(ValueLayout.JAVA_FLOAT);
        if (normalize) {
            double norm = 0;
            for (float x : out) {
                norm += (double) x * x;
            }
            norm = Math.sqrt(norm);
            for (int i = 0; i < n; i++) {
                out[i] = norm > 0 ? (float) (out[i] / norm) : 0f;
            }
        }
        return out;
    }

    /**
     * Generates on a thread of its own: the future completes with the whole result, and
     * cancelling it stops the generation, its prompt's evaluation included (between two graph
     * nodes of the decode in progress). Until it completes, the session
     * belongs to that thread.
     *
     * @param prompt  the text to continue, not empty
     * @param options limits, stop strings and sampling
     * @return the future result; it fails with the exception the generation threw
     */
    public java.util.concurrent.CompletableFuture<GenerationResult> generateAsync(String prompt, GenerationOptions options) {
        return generateAsync(prompt, options, t -> { }, AsyncGeneration.THREAD_PER_GENERATION);
    }

    /**
     * As {@link #generateAsync(String, GenerationOptions)}, passing each token to {@code onToken} as it comes, on {@code executor}.
     *
     * @param prompt   the text to continue, not empty
     * @param options  limits, stop strings and sampling
     * @param onToken  called on the executor's thread with each token, in order
     * @param executor runs the generation (it blocks one of its threads until the end)
     * @return the future result
     */
    public java.util.concurrent.CompletableFuture<GenerationResult> generateAsync(String prompt, GenerationOptions options,
            Consumer<Token> onToken, java.util.concurrent.Executor executor) {
        if (onToken == null || executor == null) {
            throw new InvalidArgumentException("onToken and executor must not be null");
        }
        checkUsable();
        return AsyncGeneration.run(() -> generate(prompt, options), this::abortDecode, onToken, executor);
    }

    /**
     * The tokens of a generation as a {@link java.util.concurrent.Flow.Publisher} for one subscriber:
     * the generation starts when it subscribes, runs on a thread of its own, and produces a token
     * only when one is requested; cancelling the subscription stops it.
     *
     * @param prompt  the text to continue, not empty
     * @param options limits, stop strings and sampling
     * @return the publisher
     */
    public java.util.concurrent.Flow.Publisher<Token> publish(String prompt, GenerationOptions options) {
        checkUsable();
        return AsyncGeneration.publisher(() -> generate(prompt, options), this::abortDecode, AsyncGeneration.THREAD_PER_GENERATION);
    }

    /** {@return a conversation that renders its messages with the model's chat template} */
    public Conversation conversation() {
        return conversation(ConversationOptions.DEFAULT);
    }

    /**
     * A conversation rendered and trimmed as {@code options} say.
     *
     * @param options the template, the messages it starts with, whether the oldest turns are dropped
     * @return the conversation
     * @throws InvalidArgumentException if options is null, the model has no chat template and none is
     *         given, or the template cannot render
     */
    public Conversation conversation(ConversationOptions options) {
        if (options == null) {
            throw new InvalidArgumentException("the conversation options must not be null");
        }
        return new Conversation(this, options);
    }

    /**
     * A conversation rendered with a named llama.cpp template ("chatml", "llama3", ...) or Jinja source.
     *
     * @param template     the built-in template's name, or Jinja source
     * @param history      messages the conversation starts with (a system prompt, earlier turns); copied
     * @return the conversation
     * @throws InvalidArgumentException if an argument or message is null, or the template is unknown
     */
    public Conversation conversation(String template, List<ChatMessage> history) {
        if (template == null || history == null) {
            throw new InvalidArgumentException("the template and the history must not be null");
        }
        return conversation(ConversationOptions.builder().template(template).history(history).build());
    }

    /**
     * Attaches a FlexiDepth plug-in with threshold {@code tau}: from the next evaluated token on,
     * every token is routed and carries its {@link LayerUsage}. Replaces a plug-in attached before.
     * Empties the cache ({@link CachePolicy#DISCARD}), so that no reply reuses K/V computed under
     * other routing.
     *
     * @param plugin a plug-in loaded onto this session's model
     * @param tau    the threshold in [0, 1]: a token runs a routed layer in full when its gate is above
     *               tau, so 0 runs nearly every layer and 1 skips every routed layer
     * @throws InvalidArgumentException if the plug-in is for another model or tau is out of range
     * @throws ResourceClosedException if the plug-in is closed or closing
     * @throws FlexiDepthException if the native attach fails; what was attached before stays attached
     */
    public void attach(FlexiDepthPlugin plugin, float tau) {
        attach(plugin, tau, CachePolicy.DISCARD);
    }

    /**
     * Like {@link #attach(FlexiDepthPlugin, float)}; {@code cache} says what happens to the cached tokens.
     *
     * @param plugin a plug-in loaded onto this session's model
     * @param tau    the threshold in [0, 1]
     * @param cache  {@link CachePolicy#DISCARD} to empty the cache, {@link CachePolicy#KEEP} to keep it
     * @throws InvalidArgumentException if the plug-in is for another model, tau is out of range or
     *         {@code cache} is null
     * @throws ResourceClosedException if the plug-in is closed or closing
     * @throws FlexiDepthException if the native attach fails; what was attached before stays attached
     */
    public void attach(FlexiDepthPlugin plugin, float tau, CachePolicy cache) {
        if (plugin.model() != model) {
            throw new InvalidArgumentException("the plug-in was loaded for " + plugin.model().path().getFileName()
                    + ", not for this session's model " + model.path().getFileName());
        }
        FlexiDepthPlugin.checkThreshold(tau);
        requirePolicy(cache);
        enter(() -> {
            FlexiDepthPlugin previous = this.plugin;
            plugin.addUser(this); // refused once the plug-in is closing
            try {
                FlexiDepthPlugin.setOn(ctx, plugin, tau, Map.of());
            } catch (FlexiDepthException e) {
                if (previous != plugin) {
                    plugin.removeUser(this);
                }
                throw e;
            }
            if (previous != null && previous != plugin) {
                previous.removeUser(this);
            }
            int n = plugin.routedLayers().size();
            if (routingGates == null || routingGates.byteSize() < 4L * n * batchSize) {
                routingGates = arena.allocate(ValueLayout.JAVA_FLOAT, (long) n * batchSize);
                routingRun = arena.allocate(ValueLayout.JAVA_BYTE, (long) n * batchSize);
            }
            if (previous != plugin) {
                LOG.info("session on {}: FlexiDepth plug-in {} attached, {} routed layers, tau {}", model.path().getFileName(),
                        plugin.path().getFileName(), n, tau);
            }
            this.plugin = plugin;
            this.threshold = tau;
            this.forced = Map.of();
            routingChanged(cache);
            return null;
        });
    }

    /**
     * Changes the threshold of the attached plug-in; takes effect at the next token, no graph
     * rebuild. Empties the cache ({@link CachePolicy#DISCARD}).
     *
     * @param tau the new threshold in [0, 1]; higher skips more layers
     * @throws InvalidArgumentException if tau is out of range or no plug-in is attached
     */
    public void setThreshold(float tau) {
        setThreshold(tau, CachePolicy.DISCARD);
    }

    /**
     * Like {@link #setThreshold(float)}; {@code cache} says what happens to the cached tokens.
     *
     * @param tau   the new threshold in [0, 1]; higher skips more layers
     * @param cache {@link CachePolicy#DISCARD} to empty the cache, {@link CachePolicy#KEEP} to keep it
     * @throws InvalidArgumentException if tau is out of range, {@code cache} is null or no plug-in is
     *         attached
     */
    public void setThreshold(float tau, CachePolicy cache) {
        FlexiDepthPlugin.checkThreshold(tau);
        requirePolicy(cache);
        enter(() -> {
            FlexiDepthPlugin.setOn(ctx, requireAttached(), tau, forced);
            threshold = tau;
            routingChanged(cache);
            return null;
        });
    }

    /**
     * Detaches the plug-in: the session computes the base model again. Empties the cache
     * ({@link CachePolicy#DISCARD}), whose K/V were computed with the plug-in.
     */
    public void detach() {
        detach(CachePolicy.DISCARD);
    }

    /**
     * Like {@link #detach()}; {@code cache} says what happens to the cached tokens. Does nothing if no
     * plug-in is attached.
     *
     * @param cache {@link CachePolicy#DISCARD} to empty the cache, {@link CachePolicy#KEEP} to keep it
     * @throws InvalidArgumentException if {@code cache} is null
     * @throws FlexiDepthException if the native detach fails; the plug-in then stays attached
     */
    public void detach(CachePolicy cache) {
        requirePolicy(cache);
        enter(() -> {
            FlexiDepthPlugin p = plugin;
            if (p == null) {
                return null;
            }
            FlexiDepthPlugin.setOn(ctx, null, 0, Map.of());
            p.removeUser(this);
            plugin = null;
            forced = Map.of();
            routingChanged(cache);
            return null;
        });
    }

    /**
     * Overrides the routers of the attached plug-in: the routed layers in {@code decisions} run
     * ({@code true}) or are skipped ({@code false}) for every token; the others keep routing. With a
     * plug-in whose adapters are zero, a forced skip removes the layer, which is how static layer
     * removal and early exit are measured. Takes effect at the next token, no graph rebuild.
     * Empties the cache ({@link CachePolicy#DISCARD}).
     *
     * @param decisions model layer index to {@code true} (run) or {@code false} (skip); replaces the
     *                  decisions forced before, and an empty map lets every router decide
     * @throws InvalidArgumentException if no plug-in is attached or a layer is not routed
     */
    public void forceRouting(Map<Integer, Boolean> decisions) {
        forceRouting(decisions, CachePolicy.DISCARD);
    }

    /**
     * Like {@link #forceRouting(Map)}; {@code cache} says what happens to the cached tokens.
     *
     * @param decisions model layer index to {@code true} (run) or {@code false} (skip); replaces the
     *                  decisions forced before
     * @param cache     {@link CachePolicy#DISCARD} to empty the cache, {@link CachePolicy#KEEP} to keep it
     * @throws InvalidArgumentException if no plug-in is attached, a layer is not routed or {@code cache}
     *         is null
     */
    public void forceRouting(Map<Integer, Boolean> decisions, CachePolicy cache) {
        requirePolicy(cache);
        Map<Integer, Boolean> copy = Map.copyOf(decisions);
        enter(() -> {
            FlexiDepthPlugin p = requireAttached();
            List<Integer> routed = p.routedLayers();
            for (Integer layer : copy.keySet()) {
                if (!routed.contains(layer)) {
                    throw new InvalidArgumentException("layer " + layer + " is not routed by " + p);
                }
            }
            FlexiDepthPlugin.setOn(ctx, p, threshold, copy);
            forced = copy;
            routingChanged(cache);
            return null;
        });
    }

    /** Lets every router decide again after {@link #forceRouting}. Empties the cache if routing was forced. */
    public void releaseRouting() {
        enter(() -> {
            if (plugin != null && !forced.isEmpty()) {
                FlexiDepthPlugin.setOn(ctx, plugin, threshold, Map.of());
                forced = Map.of();
                routingChanged(CachePolicy.DISCARD);
            }
            return null;
        });
    }

    private FlexiDepthPlugin requireAttached() {
        if (plugin == null) {
            throw new InvalidArgumentException("no FlexiDepth plug-in is attached to this session");
        }
        return plugin;
    }

    private static void requirePolicy(CachePolicy cache) {
        if (cache == null) {
            throw new InvalidArgumentException("the cache policy must not be null");
        }
    }

    /** After the routing changed: the cached K/V no longer match it unless the caller keeps them. */
    private void routingChanged(CachePolicy cache) {
        if (cache == CachePolicy.DISCARD) {
            endActive();
            clearCache();
        }
    }

    /**
     * The plug-in is closing on some thread: wait for the call in progress, then detach it. The
     * cache is emptied and a generation in progress ends, as after {@link #detach()}.
     */
    void pluginClosed(FlexiDepthPlugin p) {
        underLifecycleLock(() -> {
            if (!closed && plugin == p) {
                endActive();
                // the native free that follows takes the plug-in off by force if this fails
                llama_h.llama_set_adapter_flexidepth(ctx, MemorySegment.NULL, MemorySegment.NULL);
                plugin = null;
                forced = Map.of();
                clearCache();
            }
        });
    }

    /**
     * Applies LoRA adapters with their scales, replacing those applied before (an empty map removes
     * them all), as upstream's {@code llama_set_adapters_lora}. They combine with an attached
     * FlexiDepth plug-in. Empties the cache ({@link CachePolicy#DISCARD}), whose K/V were computed
     * without them.
     *
     * @param scales the adapters, each loaded onto this session's model, and their scales (1 applies
     *               an adapter as trained; 0 leaves it out); iterated in order
     * @throws InvalidArgumentException if an adapter is another model's, or a key or scale is null or not finite
     * @throws ResourceClosedException if an adapter is closed
     */
    public void setLoras(Map<LoraAdapter, Float> scales) {
        setLoras(scales, CachePolicy.DISCARD);
    }

    /**
     * Like {@link #setLoras(Map)}; {@code cache} says what happens to the cached tokens.
     *
     * @param scales the adapters and their scales
     * @param cache  {@link CachePolicy#DISCARD} to empty the cache, {@link CachePolicy#KEEP} to keep it
     * @throws InvalidArgumentException as {@link #setLoras(Map)}, or if {@code cache} is null
     * @throws ResourceClosedException if an adapter is closed
     */
    public void setLoras(Map<LoraAdapter, Float> scales, CachePolicy cache) {
        if (scales == null) {
            throw new InvalidArgumentException("the adapters must not be null (an empty map removes them)");
        }
        requirePolicy(cache);
        Map<LoraAdapter, Float> next = new java.util.LinkedHashMap<>();
        scales.forEach((a, scale) -> {
            if (a == null || scale == null || !Float.isFinite(scale)) {
                throw new InvalidArgumentException("every adapter needs a finite scale, got " + a + " -> " + scale);
            }
            if (a.model() != model) {
                throw new InvalidArgumentException("the LoRA adapter " + a.path().getFileName() + " was loaded for "
                        + a.model().path().getFileName() + ", not for this session's model " + model.path().getFileName());
            }
            next.put(a, scale);
        });
        enter(() -> {
            List<LoraAdapter> added = new java.util.ArrayList<>();
            try {
                for (LoraAdapter a : next.keySet()) {
                    if (!loras.containsKey(a)) {
                        a.addUser(this); // refused once it is closing
                        added.add(a);
                    }
                }
                applyLoras(next);
            } catch (RuntimeException e) {
                added.forEach(a -> a.removeUser(this));
                throw e;
            }
            loras.keySet().stream().filter(a -> !next.containsKey(a)).forEach(a -> a.removeUser(this));
            loras = java.util.Collections.unmodifiableMap(next);
            routingChanged(cache);
            return null;
        });
    }

    /** {@return the LoRA adapters applied and their scales, in the order given} */
    public Map<LoraAdapter, Float> loras() {
        return loras;
    }

    private void applyLoras(Map<LoraAdapter, Float> scales) {
        try (Arena a = Arena.ofConfined()) {
            int n = scales.size();
            MemorySegment handles = a.allocate(ValueLayout.ADDRESS, Math.max(1, n));
            MemorySegment values = a.allocate(ValueLayout.JAVA_FLOAT, Math.max(1, n));
            int i = 0;
            for (Map.Entry<LoraAdapter, Float> e : scales.entrySet()) {
                handles.setAtIndex(ValueLayout.ADDRESS, i, e.getKey().handle());
                values.setAtIndex(ValueLayout.JAVA_FLOAT, i++, e.getValue());
            }
            NativeLog.clearNativeError();
            if (llama_h.llama_set_adapters_lora(ctx, n == 0 ? MemorySegment.NULL : handles, n,
                    n == 0 ? MemorySegment.NULL : values) != 0) {
                throw new LoraAdapterException(LoraAdapterException.Reason.WRONG_BASE,
                        "llama.cpp refused the LoRA adapters" + NativeLog.nativeErrorSuffix());
            }
        }
    }

    /** A LoRA adapter is closing: wait for the call in progress, then remove it (emptying the cache). */
    void loraClosed(LoraAdapter a) {
        underLifecycleLock(() -> {
            if (!closed && loras.containsKey(a)) {
                endActive();
                Map<LoraAdapter, Float> next = new java.util.LinkedHashMap<>(loras);
                next.remove(a);
                applyLoras(next);
                loras = java.util.Collections.unmodifiableMap(next);
                clearCache();
            }
        });
    }

    /** What the cached K/V are computed with, recorded in saved states. */
    private String routing() {
        String adapters = loras.isEmpty() ? "" : " with LoRA " + loras.entrySet().stream()
                .map(e -> e.getKey().path().getFileName() + " [" + e.getKey().fingerprint() + "] x " + e.getValue())
                .collect(java.util.stream.Collectors.joining(", "));
        // a DMTD cache has positions whose thinking-layer K/V only its next full step writes
        // (all of them, without refill)
        return weights() + adapters + (dmtdThinking > 0 ? " under DMTD with " + dmtdThinking + " thinking layers"
                + (options.dmtd().orElseThrow().refill() ? "" : " and no refill") : "");
    }

    private String weights() {
        FlexiDepthPlugin p = plugin;
        if (p == null) {
            return "the base model";
        }
        return "FlexiDepth plug-in " + p.path().getFileName() + " [" + p.fingerprint() + "] at tau " + threshold
                + (forced.isEmpty() ? "" : " with forced routing " + new TreeMap<>(forced));
    }

    /** {@return the attached plug-in, if any (closing a plug-in detaches it)} */
    public Optional<FlexiDepthPlugin> attachedPlugin() {
        return Optional.ofNullable(plugin);
    }

    /** {@return the attached plug-in's threshold tau} */
    public Optional<Float> threshold() {
        return attachedPlugin().map(p -> threshold);
    }

    /**
     * Scores a text the model reads from the start (the cache is cleared first): the log-probability
     * of every token given the ones before it, for perplexity, with each token's layer usage when a
     * plug-in is attached. In a session with {@link Dmtd}, the tokens are read as DMTD's training
     * reads them (cyclical masking: a token at position p is a cycle head when p is a multiple of
     * the cycle, and the others reach the decoding layers through their embedding alone), which is
     * perplexity under DMTD's schedule with teacher forcing.
     *
     * @param tokens token ids of this session's model, at least two and at most {@link #contextSize()};
     *               include BOS first if the model expects one
     * @return the log-probabilities (natural log) of tokens 1 to n - 1, and the layer usage of every
     *         token if a plug-in is attached; the cache then holds {@code tokens}
     * @throws ContextFullException if the tokens do not fit the context
     * @throws InvalidArgumentException if there are fewer than two tokens or one is outside the vocabulary
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
            return restoringCacheOnFailure(() -> {
                clearCache();
                float[] logProbs = new float[tokens.length - 1];
                List<LayerUsage> usage = new java.util.ArrayList<>();
                for (int at = 0; at < tokens.length; at += batchSize) {
                    int n = Math.min(batchSize, tokens.length - at);
                    usage.addAll(decode(tokens, at, n, 0, Evaluation.SCORED));
                    for (int j = 0; j < n && at + j + 1 < tokens.length; j++) {
                        logProbs[at + j] = llama_h.llama_fork_token_logprob(ctx, j, tokens[at + j + 1]);
                    }
                }
                return new TokenScores(tokens, logProbs, usage);
            });
        });
    }

    /** Empties the cache. */
    public void clear() {
        enter(() -> {
            endActive();
            clearCache();
            return null;
        });
    }

    private void clearCache() {
        llama_h.llama_memory_clear(llama_h.llama_get_memory(ctx), true);
        cachedLength = 0;
        cacheChanges++;
    }

    /**
     * Runs a call that decodes and, if it fails, puts the cache back as it was: the tokens cached
     * before are evaluated again from an emptied cache (whose data is zeroed, so no NaN or
     * half-written K/V survives), which computes the same K/V under the same routing.
     */
    private <T> T restoringCacheOnFailure(Call<T> call) {
        return restoringCacheOnFailure(call, false);
    }

    /**
     * As {@link #restoringCacheOnFailure(Call)}; {@code appendOnly} says that the call only appends
     * to the cache, which leaves the tokens before it in place, so they need no copy (a decoded
     * token would otherwise copy the whole cache, 4 bytes per cached token).
     */
    private <T> T restoringCacheOnFailure(Call<T> call, boolean appendOnly) {
        long changesBefore = cacheChanges;
        int length = cachedLength;
        int[] before = appendOnly ? cached : Arrays.copyOf(cached, cachedLength);
        try {
            return call.run();
        } catch (Aborted e) {
            throw e; // the cache holds the tokens before the aborted decode, as cachedTokens() says
        } catch (RuntimeException e) {
            if (cacheChanges != changesBefore) {
                try {
                    clearCache();
                    for (int at = 0; at < length; at += batchSize) {
                        int n = Math.min(batchSize, length - at);
                        decode(before, at, n, n);
                    }
                } catch (RuntimeException again) {
                    clearCache(); // an empty cache rather than one that disagrees with cachedTokens()
                    e.addSuppressed(again);
                }
            }
            throw e;
        }
    }

    /**
     * A snapshot of the cache, restorable with {@link #restoreState(SessionState)}. It records the
     * model and the routing (plug-in, threshold, forced routing, DMTD split) its K/V were computed
     * with, and with DMTD the place in the cycle: the tokens since the last full-depth step are
     * refilled by the next one after a restore, as they would have been without it. Ends a
     * generation in progress.
     *
     * @return the snapshot, held in Java memory: about as large as the cached K/V
     * @throws UnsupportedOperationException if a {@link SkipFamily#LAYER_NO_KV} plug-in is attached
     *         (which tokens skipped which layer is not part of llama.cpp's state)
     */
    public SessionState saveState() {
        return enter(() -> {
            requireSnapshotRouting();
            endActive();
            try (Arena tmp = Arena.ofConfined()) {
                return new SessionState(Arrays.copyOf(cached, cachedLength), stateData(tmp).toArray(ValueLayout.JAVA_BYTE),
                        model.fingerprint(), routing(), cyclePlace());
            }
        });
    }

    /**
     * Restores a snapshot taken from a session of the same model file, with the same routing (the
     * same plug-in and threshold attached, or none), and a context at least as large.
     *
     * @param state a snapshot from {@link #saveState()}; it replaces the cache, and a generation in
     *              progress ends
     * @throws InvalidArgumentException if the state was saved from another model or with other routing
     * @throws ContextFullException if the state holds more tokens than this session's context
     */
    public void restoreState(SessionState state) {
        enter(() -> {
            endActive();
            checkCompatible(state.model(), state.routing(), state.tokensView().length);
            try (Arena tmp = Arena.ofConfined()) {
                restoreNative(tmp.allocateFrom(ValueLayout.JAVA_BYTE, state.data()), state.tokensView(), state.cycle());
            }
            return null;
        });
    }

    /**
     * Writes the cache, its tokens and what they were computed with to a file (atomically).
     * Ends a generation in progress.
     *
     * @param file the file to create or replace; it appears only once complete
     * @throws LlamaException if the file cannot be written; a file already there is left as it was
     * @throws UnsupportedOperationException if a {@link SkipFamily#LAYER_NO_KV} plug-in is attached
     */
    public void saveState(Path file) {
        enter(() -> {
            requireSnapshotRouting();
            endActive();
            try (Arena tmp = Arena.ofConfined()) {
                SessionStateFile.write(file, new SessionStateFile.Header(model.fingerprint(), routing(),
                        Arrays.copyOf(cached, cachedLength), cyclePlace()), stateData(tmp));
            }
            return null;
        });
    }

    /**
     * Restores a file written by {@link #saveState(Path)}.
     *
     * @param file a file written by {@link #saveState(Path)}; it replaces the cache, and a generation in
     *             progress ends
     * @throws InvalidArgumentException if the file is missing, corrupt, or saved from another model or with other routing
     * @throws ContextFullException if the state holds more tokens than this session's context
     */
    public void restoreState(Path file) {
        enter(() -> {
            endActive();
            FilePaths.problem(file).ifPresent(problem -> {
                throw new InvalidArgumentException("session state file " + file + " " + problem);
            });
            try (SessionStateFile.Reader in = SessionStateFile.open(file)) {
                SessionStateFile.Header h = in.header();
                checkCompatible(h.model(), h.routing(), h.tokens().length);
                try (Arena tmp = Arena.ofConfined()) {
                    restoreNative(in.readData(tmp), h.tokens(), h.cycle());
                }
            }
            return null;
        });
    }

    private void requireSnapshotRouting() {
        if (plugin != null && !plugin.skipFamily().keepsSkippedKv()) {
            throw new UnsupportedOperationException("the attached plug-in " + plugin.path().getFileName()
                    + " hides skipped tokens' K/V (skip family LAYER_NO_KV), which llama.cpp's state does not record: "
                    + "a snapshot cannot be restored faithfully");
        }
    }

    /** llama.cpp's state of the context, in native memory of {@code arena}. */
    private MemorySegment stateData(Arena arena) {
        long size = llama_h.llama_state_get_size(ctx);
        MemorySegment buf = arena.allocate(size);
        return buf.asSlice(0, llama_h.llama_state_get_data(ctx, buf, size));
    }

    private void checkCompatible(String stateModel, String stateRouting, int tokens) {
        if (!stateModel.equals(model.fingerprint())) {
            throw new InvalidArgumentException("the state was saved from another model file than " + model.path().getFileName()
                    + " (fingerprint " + stateModel + ", this model's " + model.fingerprint() + ")");
        }
        if (!stateRouting.equals(routing())) {
            throw new InvalidArgumentException("the state was computed with " + stateRouting + "; this session computes with "
                    + routing() + ": attach the same plug-in and threshold and apply the same LoRA adapters (or neither) before restoring it");
        }
        if (tokens > contextSize) {
            throw new ContextFullException("the state holds " + tokens + " tokens, more than this session's context of " + contextSize);
        }
    }

    private void restoreNative(MemorySegment data, int[] tokens, SessionState.Cycle cycle) {
        NativeLog.clearNativeError();
        long read = llama_h.llama_state_set_data(ctx, data, data.byteSize());
        cacheChanges++;
        if (read == 0) {
            clearCache();
            throw new InvalidArgumentException("the state does not fit this session" + NativeLog.nativeErrorSuffix());
        }
        if (dmtdThinking > 0) {
            try (Arena tmp = Arena.ofConfined()) {
                int n = cycle.pending();
                MemorySegment pending = tmp.allocateFrom(ValueLayout.JAVA_INT, Arrays.copyOfRange(tokens, tokens.length - n, tokens.length));
                MemorySegment hidden = tmp.allocateFrom(ValueLayout.JAVA_INT, cycle.hidden().stream().mapToInt(Integer::intValue).toArray());
                // a new context sees every restored cell, and a used one what its cells held before
                if (llama_h.llama_dmtd_seq_set_pending(ctx, 0, pending, n, cycle.startsCycle()) != llama_h.LLAMA_DMTD_OK()
                        || llama_h.llama_dmtd_seq_set_hidden(ctx, 0, hidden, cycle.hidden().size()) != llama_h.LLAMA_DMTD_OK()) {
                    String why = llama_h.llama_dmtd_last_error().getString(0);
                    clearCache();
                    throw new InvalidArgumentException("the state's place in its DMTD cycle does not fit it: " + why);
                }
            }
        }
        setCached(tokens, tokens.length);
    }

    /** Where the session's sequence is in its DMTD cycle, for a saved state. */
    private SessionState.Cycle cyclePlace() {
        if (dmtdThinking == 0) {
            return SessionState.Cycle.NONE;
        }
        try (Arena tmp = Arena.ofConfined()) {
            MemorySegment starts = tmp.allocate(ValueLayout.JAVA_BOOLEAN);
            int n = llama_h.llama_dmtd_seq_pending(ctx, 0, MemorySegment.NULL, 0, starts);
            if (n < 0) {
                throw new LlamaException("cannot read the session's place in its DMTD cycle: " + llama_h.llama_dmtd_last_error().getString(0));
            }
            int h = llama_h.llama_dmtd_seq_hidden(ctx, 0, MemorySegment.NULL, 0);
            MemorySegment hidden = tmp.allocate(ValueLayout.JAVA_INT, Math.max(1, h));
            if (h < 0 || llama_h.llama_dmtd_seq_hidden(ctx, 0, hidden, h) != h) {
                throw new LlamaException("cannot read the session's hidden DMTD positions: " + llama_h.llama_dmtd_last_error().getString(0));
            }
            List<Integer> positions = new ArrayList<>(h);
            for (int j = 0; j < h; j++) {
                positions.add(hidden.getAtIndex(ValueLayout.JAVA_INT, j));
            }
            return new SessionState.Cycle(n, starts.get(ValueLayout.JAVA_BOOLEAN, 0), positions);
        }
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
        return restoringCacheOnFailure(() -> evaluatePromptAfterPrefix(prompt, g, usage));
    }

    private int evaluatePromptAfterPrefix(int[] prompt, Generation g, List<LayerUsage> usage) {
        int reuse = 0;
        while (reuse < cachedLength && reuse < prompt.length && cached[reuse] == prompt[reuse]) {
            reuse++;
        }
        if (reuse == prompt.length) {
            reuse--; // the last prompt token is evaluated again for its logits
        }
        if (reuse < cachedLength) {
            MemorySegment mem = llama_h.llama_get_memory(ctx);
            cacheChanges++;
            if (!llama_h.llama_memory_seq_rm(mem, 0, reuse, -1)) {
                llama_h.llama_memory_clear(mem, true); // e.g. recurrent models cannot drop a suffix
                reuse = 0;
            }
            cachedLength = reuse;
        }
        for (int at = reuse; at < prompt.length; at += batchSize) {
            if (g.isCancelRequested() || Thread.currentThread().isInterrupted()) {
                g.promptCancelled();
                break;
            }
            int n = Math.min(batchSize, prompt.length - at);
            try {
                usage.addAll(decode(prompt, at, n, at + n == prompt.length ? n - 1 : n));
            } catch (Aborted e) {
                g.promptCancelled(); // what was evaluated before stays cached: a valid prefix
                break;
            }
        }
        return reuse;
    }

    /**
     * Evaluates tokens[off, off+n) at the end of the cache, with logits for the tokens from batch
     * index {@code firstOutput} on (n - 1: the last only; n: none). Returns the tokens' layer usage
     * when a plug-in is attached, else an empty list.
     */
    List<LayerUsage> decode(int[] tokens, int off, int n, int firstOutput) {
        return decode(tokens, off, n, firstOutput, Evaluation.PROMPT);
    }

    /** What tokens are decoded as; DMTD tells them apart. */
    private enum Evaluation {
        /** A prompt: full depth. */
        PROMPT,
        /** One generated token: DMTD's schedule. */
        GENERATED,
        /** Teacher-forced scoring: with DMTD, as its training saw the tokens (cyclical masking). */
        SCORED
    }

    /** As above, for tokens of the given kind. */
    private List<LayerUsage> decode(int[] tokens, int off, int n, int firstOutput, Evaluation kind) {
        if (cachedLength + n > contextSize) {
            throw new ContextFullException("the context of " + contextSize + " tokens is full");
        }
        for (int i = 0; i < n; i++) {
            batchToken.setAtIndex(ValueLayout.JAVA_INT, i, tokens[off + i]);
            batchPos.setAtIndex(ValueLayout.JAVA_INT, i, cachedLength + i);
            batchLogits.set(ValueLayout.JAVA_BYTE, i, (byte) (i >= firstOutput ? 1 : 0));
        }
        llama_batch.n_tokens(batch, n);
        cacheChanges++;
        boolean dmtd = options.dmtd().isPresent();
        boolean dmtdStep = dmtd && kind == Evaluation.GENERATED && cachedLength > 0;
        // a prompt after a reply refills the reply's decoding-only tokens before reading them
        boolean dmtdPrefill = dmtd && !dmtdStep && kind != Evaluation.SCORED;
        int rc = !dmtd ? llama_h.llama_decode(ctx, batch)
                : dmtdStep ? llama_h.llama_dmtd_decode(ctx, batch)
                : dmtdPrefill ? llama_h.llama_dmtd_prefill(ctx, batch) : llama_h.llama_dmtd_score(ctx, batch);
        if (rc == 2) {
            // upstream drops the aborted ubatch; earlier ubatches of this batch go too
            llama_h.llama_memory_seq_rm(llama_h.llama_get_memory(ctx), 0, cachedLength, -1);
            throw new Aborted();
        }
        if (rc == 1) {
            throw new ContextFullException("no room in the KV cache for " + n + " more tokens");
        }
        if (rc != 0) {
            throw new DecodeException(rc, "evaluating " + n + " tokens failed"
                    + (dmtd ? ": " + llama_h.llama_dmtd_last_error().getString(0) : "") + NativeLog.nativeErrorSuffix());
        }
        if (options.dmtd().isPresent()) {
            lastStep = Optional.of(!dmtdStep || llama_h.llama_dmtd_full_step(ctx, 0) == 1 ? Token.Step.FULL_DEPTH : Token.Step.DECODING_LAYERS);
        }
        for (int i = firstOutput; i < n; i++) {
            if (!llama_h.llama_fork_logits_finite(ctx, dmtdStep || dmtdPrefill ? llama_h.llama_dmtd_output_index(ctx, i) : i)) {
                throw new DecodeException("the logits of token " + (cachedLength + i) + " are not finite (NaN or infinite):"
                        + " the model or plug-in computes garbage for this input; the cache is restored");
            }
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
        return LayerUsage.ofLastDecode(ctx, routingGates, routingRun, batchSize, n, model.info().layers(), p.get().routedLayers());
    }

    /** Decodes one generated token; on failure the cache is as before. */
    List<LayerUsage> decodeNext(int token) {
        return restoringCacheOnFailure(() -> decode(new int[] {token}, 0, 1, 0, Evaluation.GENERATED), true);
    }

    /**
     * Samples the next token from the last decode's logits with {@code sampler}.
     *
     * @throws InvalidArgumentException if the samplers (a grammar) admit no token of the vocabulary
     */
    int sample(MemorySegment sampler, int generated) {
        int rc = llama_h.llama_fork_common_sampler_sample(sampler, ctx, -1, sampledToken);
        if (rc == llama_h.LLAMA_FORK_SAMPLE_OK()) {
            return sampledToken.get(ValueLayout.JAVA_INT, 0);
        }
        if (rc == llama_h.LLAMA_FORK_SAMPLE_NO_CANDIDATE()) {
            throw new InvalidArgumentException("the grammar admits no token of this model's vocabulary after "
                    + generated + " generated tokens");
        }
        throw new DecodeException(rc, "sampling failed: " + NativeStrings.lastError() + NativeLog.nativeErrorSuffix());
    }

    /** Reads one token's text bytes into the reused native buffer; {@code special}: control tokens as their text. */
    byte[] tokenBytes(int token, boolean special) {
        return pieces.bytes(token, special);
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
        if (g.options().flexiDepthThreshold().isPresent()) {
            generationThreshold(-1f);
        }
    }

    /** A generation's own threshold for the session's sequence, or (tau < 0) the attached one again. */
    private void generationThreshold(float tau) {
        if (plugin != null) {
            FlexiDepthException.throwIfFailed(llama_h.llama_set_flexidepth_threshold_seq(ctx, 0, tau));
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

    /** The lock, telling who holds it. */
    private static final class SessionLock extends ReentrantLock {
        private static final long serialVersionUID = 1L;

        Thread owner() {
            return getOwner();
        }
    }

    /** Runs {@code call} as the only thread inside this session. */
    <T> T enter(Call<T> call) {
        while (!lock.tryLock()) {
            Thread owner = lock.owner();
            if (owner == null) {
                continue; // released between the two reads: try again
            }
            if (lifecycleThreads.contains(owner)) {
                lock.lock(); // being closed, or its plug-in, from another thread: wait, then find out
                break;
            }
            if (lock.owner() != owner || lifecycleThreads.contains(owner)) {
                continue; // a close released the lock (and left the set) between the reads, or took it again
            }
            throw new ConcurrentUseException("the session is in use by thread \"" + owner.getName()
                    + "\"; a session must be used by one thread at a time");
        }
        try {
            if (closed) {
                throw new ResourceClosedException("the session is closed");
            }
            if (lock.getHoldCount() == 1) {
                FLAG.setVolatile(abortFlag, 0L, 0);
            }
            if (active != null && active.owner() != Thread.currentThread()) {
                throw new ConcurrentUseException("the session is generating on thread \"" + active.owner().getName()
                        + "\"; a session must be used by one thread at a time (Generation.cancel() is the exception)");
            }
            return call.run();
        } finally {
            lock.unlock();
        }
    }

    /** {@return whether the session has been closed, directly or by closing its model} */
    public boolean isClosed() {
        return closed;
    }

    /** Runs a close from any thread once the call in progress (if any) has returned. */
    private void underLifecycleLock(Runnable r) {
        Thread me = Thread.currentThread();
        boolean added = lifecycleThreads.add(me); // false when nested (closing a plug-in closes nothing else here)
        try {
            lock.lock();
            try {
                r.run();
            } finally {
                lock.unlock();
            }
        } finally {
            if (added) {
                lifecycleThreads.remove(me);
            }
        }
    }

    /**
     * Frees the context. Safe from any thread: waits for a call in progress, after which the
     * session's thread gets {@link ResourceClosedException}. Idempotent.
     */
    @Override
    public void close() {
        underLifecycleLock(() -> {
            if (closed) {
                return;
            }
            endActive();
            closed = true;
            FlexiDepthPlugin p = plugin;
            if (p != null) {
                p.removeUser(this);
                plugin = null;
            }
            loras.keySet().forEach(a -> a.removeUser(this));
            loras = Map.of();
            llama_h.llama_batch_free(batch);
            llama_h.llama_free(ctx);
            arena.close();
        });
        model.sessionClosed(this);
    }

    /** Throws if the session is closed or in use by another thread. */
    void checkUsable() {
        enter(() -> null);
    }
}
