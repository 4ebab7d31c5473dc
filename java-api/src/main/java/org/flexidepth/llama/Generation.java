package org.flexidepth.llama;

import org.flexidepth.llama.bindings.llama_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Optional;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/**
 * A generation in progress: an {@link Iterator} of {@link Token}s, produced one by one as it is
 * iterated. Until it ends, the session belongs to the thread that started it: only that thread
 * may iterate it or use the session; {@link #cancel()} may be called from any thread.
 * The prompt has already been evaluated when a Generation is returned.
 */
public final class Generation implements Iterator<Token>, AutoCloseable {
    private final Session session;
    private final Thread owner = Thread.currentThread();
    private final LlamaModel model;
    private final GenerationOptions options;
    private final Consumer<GenerationResult> onFinish;
    private final MemorySegment sampler;
    private final java.util.Set<Integer> visibleTokens;
    private MemorySegment topIds, topLogProbs; // scratch of alternatives(), allocated on first use
    private final AtomicBoolean cancelRequested = new AtomicBoolean();
    private final Utf8Accumulator utf8 = new Utf8Accumulator();
    private final StopStringMatcher stops;
    private final StringBuilder text = new StringBuilder();
    private final List<Token> tokens = new ArrayList<>();
    private final List<LayerUsage> promptUsage = new ArrayList<>();
    private final int promptTokens;
    private final int reusedTokens;
    private final long promptNanos;
    private final long generationStart;
    private long generationEnd;
    private long lastTokenAt;
    private Token next;
    private volatile StopReason stopReason; // read by cancel() on any thread

    Generation(Session session, int[] prompt, GenerationOptions options, ChatConstraint constraint, Consumer<GenerationResult> onFinish) {
        this.session = session;
        this.model = session.model();
        this.options = options;
        this.onFinish = onFinish;
        this.stops = new StopStringMatcher(options.stopStrings());
        this.promptTokens = prompt.length;
        this.visibleTokens = constraint.visibleTokens();
        this.sampler = CommonSampler.create(model, options.sampling(), prompt, constraint);
        long start = System.nanoTime();
        try {
            this.reusedTokens = session.evaluatePrompt(prompt, this, promptUsage);
        } catch (RuntimeException e) {
            CommonSampler.free(sampler);
            throw e;
        }
        generationStart = System.nanoTime();
        promptNanos = generationStart - start;
        lastTokenAt = generationStart;
        if (cancelRequested.get()) {
            finish(StopReason.CANCELLED);
        }
    }

    @Override
    public boolean hasNext() {
        if (next == null && stopReason == null) {
            next = session.enter(this::advance);
        }
        return next != null;
    }

    @Override
    public Token next() {
        if (!hasNext()) {
            throw new NoSuchElementException("the generation has ended: " + stopReason);
        }
        Token t = next;
        next = null;
        return t;
    }

    /** Produces the next token, or null after finishing. Runs inside the session. */
    private Token advance() {
        if (stopReason != null) {
            // ended meanwhile by another thread (its plug-in closed), which freed the sampler;
            // read under the session's lock, which that thread held to end it
            return null;
        }
        // an interrupted thread stops generating, as a blocking JDK call would stop waiting
        if (cancelRequested.get() || Thread.currentThread().isInterrupted()) {
            finish(StopReason.CANCELLED);
            return null;
        }
        try {
            return produce();
        } catch (Session.Aborted e) {
            finish(StopReason.CANCELLED); // cancel() stopped the token's decode
            return null;
        } catch (RuntimeException e) {
            finish(StopReason.FAILED); // the session's cache is as before this token
            throw e;
        }
    }

    private Token produce() {
        Optional<Token.Step> step = session.lastStep();
        int id = session.sample(sampler, tokens.size());
        float logProb = llama_h.llama_fork_token_logprob(session.context(), -1, id);
        List<Token.Alternative> alternatives = alternatives();
        if (model.isEndOfGeneration(id)) {
            Token t = new Token(id, stops.append(utf8.flush()) + stops.flush(), logProb, sinceLastToken(), Optional.empty(), alternatives, step);
            record(t);
            finish(StopReason.END_OF_GENERATION);
            return t;
        }
        String piece = stops.append(utf8.append(session.tokenBytes(id, !visibleTokens.isEmpty() && visibleTokens.contains(id))));
        StopReason stop = stops.stopped() ? StopReason.STOP_STRING
                : tokens.size() + 1 >= options.maxTokens() ? StopReason.MAX_TOKENS : null;
        boolean routed = session.attachedPlugin().isPresent();
        Optional<LayerUsage> usage = Optional.empty();
        // The token is read back right away: its logits drive the next token, and with a plug-in
        // its routing is this token's layer usage. A final token is read only for its usage.
        if (stop == null || routed) {
            if (session.cachedLengthUnchecked() >= session.contextSize()) {
                stop = stop == null ? StopReason.CONTEXT_FULL : stop;
            } else {
                List<LayerUsage> u = session.decodeNext(id);
                usage = u.isEmpty() ? Optional.empty() : Optional.of(u.get(0));
            }
        }
        if (stop == StopReason.MAX_TOKENS || stop == StopReason.CONTEXT_FULL) {
            piece += stops.append(utf8.flush());
            if (stops.stopped()) {
                stop = StopReason.STOP_STRING;
            } else {
                piece += stops.flush();
            }
        }
        Token t = new Token(id, piece, logProb, sinceLastToken(), usage, alternatives, step);
        record(t);
        if (stop != null) {
            finish(stop);
        }
        return t;
    }

    /** The most likely tokens of this step's logits, as many as the options ask. */
    private List<Token.Alternative> alternatives() {
        int n = options.topLogProbabilities();
        if (n == 0) {
            return List.of();
        }
        if (topIds == null) {
            Arena arena = Arena.ofAuto();
            topIds = arena.allocate(ValueLayout.JAVA_INT, n);
            topLogProbs = arena.allocate(ValueLayout.JAVA_FLOAT, n);
        }
        int got = llama_h.llama_fork_token_top_logprobs(session.context(), -1, n, topIds, topLogProbs);
        List<Token.Alternative> out = new ArrayList<>(Math.max(got, 0));
        for (int i = 0; i < got; i++) {
            int id = topIds.getAtIndex(ValueLayout.JAVA_INT, i);
            out.add(new Token.Alternative(id, new String(session.tokenBytes(id, true), java.nio.charset.StandardCharsets.UTF_8),
                    topLogProbs.getAtIndex(ValueLayout.JAVA_FLOAT, i)));
        }
        return out;
    }

    private Duration sinceLastToken() {
        long now = System.nanoTime();
        Duration d = Duration.ofNanos(now - lastTokenAt);
        lastTokenAt = now;
        return d;
    }

    private void record(Token t) {
        tokens.add(t);
        text.append(t.text());
    }

    private void finish(StopReason reason) {
        if (stopReason != null) {
            return;
        }
        stopReason = reason;
        generationEnd = System.nanoTime();
        CommonSampler.free(sampler);
        session.generationFinished(this);
        // not result(), which iterates: finish may run on a thread that closes the plug-in, and must
        // not take the token the generation's own thread has yet to read
        onFinish.accept(ended());
    }

    /** Ends the generation if it is still running (a new generation started, or the session closes). */
    void finishQuietly() {
        if (stopReason == null) {
            finish(StopReason.CANCELLED);
        }
    }

    GenerationOptions options() {
        return options;
    }

    /** The thread that started the generation: until it ends, only it may use the session. */
    Thread owner() {
        return owner;
    }

    boolean isCancelRequested() {
        return cancelRequested.get();
    }

    /** Records that the prompt's evaluation was stopped (cancelled or interrupted). */
    void promptCancelled() {
        cancelRequested.set(true);
    }

    /**
     * Asks the generation to stop: the decode in progress, if any, stops between two of its graph
     * nodes, and no further token is produced. Safe from any thread.
     */
    public void cancel() {
        cancelRequested.set(true);
        if (stopReason == null) {
            session.abortDecode();
        }
    }

    /** {@return the tokens as a sequential stream; closing the stream closes the generation} */
    public Stream<Token> stream() {
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(this, Spliterator.ORDERED | Spliterator.NONNULL), false)
                .onClose(this::close);
    }

    /** {@return why it ended, once it has} */
    public Optional<StopReason> stopReason() {
        return Optional.ofNullable(stopReason);
    }

    /** {@return layer usage of the prompt tokens this generation evaluated (reused tokens excluded), in order} */
    public List<LayerUsage> promptLayerUsage() {
        return List.copyOf(promptUsage);
    }

    /** {@return the text generated so far} */
    public String text() {
        return text.toString();
    }

    /** {@return counts and timings so far} */
    public GenerationStats stats() {
        long end = stopReason != null ? generationEnd : lastTokenAt;
        Optional<LayerStats> layers = session.attachedPlugin().map(p -> LayerStats.of(
                tokens.stream().flatMap(t -> t.layers().stream()).toList(), p.routedLayers()));
        return new GenerationStats(promptTokens, reusedTokens, tokens.size(), Duration.ofNanos(promptNanos),
                Duration.ofNanos(end - generationStart), layers);
    }

    /** {@return runs the generation to its end and returns the result} */
    public GenerationResult result() {
        while (hasNext()) {
            next();
        }
        return ended();
    }

    private GenerationResult ended() {
        return new GenerationResult(text.toString(), tokens, stopReason, stats());
    }

    /** Stops the generation (as cancelled) if it is still running. */
    @Override
    public void close() {
        if (stopReason == null) {
            session.enter(() -> {
                finishQuietly();
                return null;
            });
        }
    }
}
