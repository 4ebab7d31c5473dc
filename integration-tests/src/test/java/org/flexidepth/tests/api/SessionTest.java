package org.flexidepth.tests.api;

import org.flexidepth.llama.ChatMessage;
import org.flexidepth.llama.ConcurrentUseException;
import org.flexidepth.llama.ContextFullException;
import org.flexidepth.llama.Conversation;
import org.flexidepth.llama.Generation;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.InvalidArgumentException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.ModelInfo;
import org.flexidepth.llama.ResourceClosedException;
import org.flexidepth.llama.Sampling;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.llama.SessionState;
import org.flexidepth.llama.StopReason;
import org.flexidepth.llama.Token;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The session API on a real model (stories260K): every behaviour DEVELOPERS.md and the issue list. */
class SessionTest {
    static LlamaModel model;
    static final String PROMPT = "Once upon a time";
    static final GenerationOptions GREEDY_20 = GenerationOptions.builder().maxTokens(20).build();

    @BeforeAll
    static void load() {
        model = LlamaModel.load(RealModels.stories260K());
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    @Test
    void metadata() {
        ModelInfo info = model.info();
        assertEquals("llama", info.architecture());
        assertEquals(5, info.layers());
        assertEquals(64, info.embeddingSize());
        assertEquals(512, info.vocabularySize());
        assertTrue(info.parameterCount() > 200_000 && info.parameterCount() < 400_000, "params " + info.parameterCount());
        assertTrue(info.chatTemplate().isEmpty());
        assertEquals("llama", info.metadata().get("general.architecture"));
    }

    @Test
    void tokenizeAndDetokenizeRoundTrip() {
        String text = "Lily saw a big red ball.";
        int[] tokens = model.tokenize(text, false, false);
        assertTrue(tokens.length > 3);
        assertEquals(text, model.detokenize(tokens).strip());
        assertThrows(InvalidArgumentException.class, () -> model.detokenize(new int[] {512}));
        // characters spelled with byte tokens belong to the token that completes them
        List<String> pieces = model.tokenPieces(model.tokenize("café 🦙", false, false));
        assertEquals(" café 🦙", String.join("", pieces));
        assertTrue(pieces.stream().noneMatch(p -> p.contains("\uFFFD")), pieces.toString());
        assertThrows(InvalidArgumentException.class, () -> model.tokenBytes(-1));
    }

    @Test
    void tokensCarryTextLogProbabilityAndTiming() {
        try (Session s = model.newSession()) {
            GenerationResult r = s.complete(PROMPT, GREEDY_20);
            assertEquals(20, r.tokens().size());
            assertEquals(StopReason.MAX_TOKENS, r.stopReason());
            assertEquals(r.text(), r.tokens().stream().map(Token::text).collect(Collectors.joining()));
            for (Token t : r.tokens()) {
                assertTrue(t.logProbability() <= 0 && Float.isFinite(t.logProbability()), "logprob " + t.logProbability());
                assertFalse(t.latency().isNegative());
            }
            assertEquals(20, r.stats().generatedTokens());
            assertEquals(model.tokenize(PROMPT).length, r.stats().promptTokens());
            assertTrue(r.stats().generationTokensPerSecond() > 0);
        }
    }

    @Test
    void streamIteratorAndCallbackAgree() {
        try (Session s = model.newSession()) {
            String viaResult = s.complete(PROMPT, GREEDY_20).text();
            String viaStream;
            try (Generation g = s.generate(PROMPT, GREEDY_20)) {
                viaStream = g.stream().map(Token::text).collect(Collectors.joining());
            }
            StringBuilder viaCallback = new StringBuilder();
            s.generate(PROMPT, GREEDY_20, t -> viaCallback.append(t.text()));
            assertEquals(viaResult, viaStream);
            assertEquals(viaResult, viaCallback.toString());
        }
    }

    @Test
    void stopStringEndsGenerationBeforeIt() {
        try (Session s = model.newSession()) {
            String full = s.complete(PROMPT, GREEDY_20).text();
            int cut = full.indexOf(' ', 8);
            String stop = full.substring(cut, cut + 4);
            GenerationResult r = s.complete(PROMPT, GREEDY_20.toBuilder().stopString(stop).build());
            assertEquals(StopReason.STOP_STRING, r.stopReason());
            assertEquals(full.substring(0, full.indexOf(stop)), r.text());
        }
    }

    @Test
    void seededSamplingIsReproducible() {
        Sampling seven = Sampling.builder().temperature(1.0f).seed(7).build();
        try (Session s = model.newSession()) {
            GenerationOptions o = GenerationOptions.builder().maxTokens(40).sampling(seven).build();
            String a = s.complete(PROMPT, o).text();
            String b = s.complete(PROMPT, o).text();
            String c = s.complete(PROMPT, o.toBuilder().sampling(seven.toBuilder().seed(8).build()).build()).text();
            assertEquals(a, b);
            assertNotEquals(a, c);
        }
    }

    @Test
    void grammarConstrainsTheOutputAndMultiByteTextIsNeverBroken() {
        // The grammar forces characters that this vocabulary spells with several byte tokens each.
        Sampling g = Sampling.builder().temperature(0).grammar("root ::= \"yes \" (\"é\" | \"🦙\") \"中\"").build();
        try (Session s = model.newSession()) {
            GenerationResult r = s.complete(PROMPT, GenerationOptions.builder().maxTokens(30).sampling(g).build());
            assertTrue(r.text().matches("yes (é|🦙)中"), r.text());
            for (Token t : r.tokens()) {
                assertFalse(t.text().contains("\uFFFD"), "broken character in a streamed piece");
            }
            assertTrue(r.tokens().size() > r.text().codePointCount(0, r.text().length()), "expected byte tokens");
            assertEquals(StopReason.END_OF_GENERATION, r.stopReason());
        }
        var e = assertThrows(InvalidArgumentException.class, () -> {
            try (Session s = model.newSession()) {
                s.generate(PROMPT, GenerationOptions.builder().sampling(Sampling.builder().grammar("root ::= (").build()).build());
            }
        });
        assertTrue(e.getMessage().contains("grammar"), e.getMessage());
    }

    @Test
    void cancelFromAnotherThreadStopsBeforeTheNextToken() throws Exception {
        try (Session s = model.newSession()) {
            List<Token> seen = new ArrayList<>();
            try (Generation g = s.generate(PROMPT, GenerationOptions.builder().maxTokens(200).build())) {
                while (g.hasNext()) {
                    seen.add(g.next());
                    if (seen.size() == 5) {
                        Thread t = new Thread(g::cancel);
                        t.start();
                        t.join();
                    }
                }
                assertEquals(5, seen.size());
                assertEquals(StopReason.CANCELLED, g.stopReason().orElseThrow());
            }
            // The session stays usable.
            assertEquals(20, s.complete(PROMPT, GREEDY_20).tokens().size());
        }
    }

    @Test
    void secondThreadIsRefusedWhileAGenerationRuns() throws Exception {
        try (Session s = model.newSession(); ExecutorService other = Executors.newSingleThreadExecutor()) {
            Generation g = s.generate(PROMPT, GREEDY_20);
            g.next();
            Future<?> intruder = other.submit(() -> s.complete(PROMPT, GREEDY_20));
            var e = assertThrows(java.util.concurrent.ExecutionException.class, intruder::get);
            assertTrue(e.getCause() instanceof ConcurrentUseException, String.valueOf(e.getCause()));
            assertEquals(19, g.result().tokens().size() - 1 + 0, "the owner goes on undisturbed");
            // Once the generation has ended the other thread may take the session.
            assertEquals(20, other.submit(() -> s.complete(PROMPT, GREEDY_20).tokens().size()).get());
        }
    }

    @Test
    void severalSessionsGenerateConcurrently() throws Exception {
        String expected;
        try (Session s = model.newSession()) {
            expected = s.complete(PROMPT, GREEDY_20).text();
        }
        try (ExecutorService pool = Executors.newFixedThreadPool(3)) {
            List<Future<String>> results = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                results.add(pool.submit(() -> {
                    try (Session s = model.newSession(SessionOptions.builder().threads(1).build())) {
                        return s.complete(PROMPT, GREEDY_20).text();
                    }
                }));
            }
            for (Future<String> f : results) {
                assertEquals(expected, f.get());
            }
        }
    }

    @Test
    void stateSavedToMemoryRestoresIntoAnotherSession() {
        int[] prompt = model.tokenize(PROMPT);
        SessionState state;
        List<Integer> original;
        try (Session a = model.newSession()) {
            a.complete(PROMPT, GenerationOptions.builder().maxTokens(1).build());
            state = a.saveState();
            original = RealModels.ids(a.complete(PROMPT, GREEDY_20).tokens());
        }
        try (Session b = model.newSession()) {
            b.restoreState(state);
            assertArrayEquals(state.tokens(), b.cachedTokens());
            GenerationResult r = b.complete(PROMPT, GREEDY_20);
            assertEquals(prompt.length - 1, r.stats().reusedTokens(), "the restored cache was used");
            assertEquals(original, RealModels.ids(r.tokens()));
        }
    }

    @Test
    void stateSavedToAFileRestores(@TempDir Path dir) {
        Path file = dir.resolve("session.bin");
        List<Integer> original;
        try (Session a = model.newSession()) {
            original = RealModels.ids(a.complete(PROMPT, GREEDY_20).tokens());
            a.saveState(file);
        }
        try (Session b = model.newSession()) {
            b.restoreState(file);
            assertTrue(b.cachedTokenCount() > model.tokenize(PROMPT).length);
            // Continue the same text: the prompt is the cache plus nothing new.
            int[] cached = b.cachedTokens();
            GenerationResult r = b.generate(cached, GenerationOptions.builder().maxTokens(5).build()).result();
            assertEquals(cached.length - 1, r.stats().reusedTokens());
            assertEquals(original.subList(original.size() - 1, original.size()), RealModels.ids(r.tokens()).subList(0, 1),
                    "the restored session predicts the last token the original generated but never evaluated");
        }
        assertThrows(InvalidArgumentException.class, () -> {
            try (Session c = model.newSession()) {
                c.restoreState(dir.resolve("missing.bin"));
            }
        });
    }

    @Test
    void corruptStateIsRejected(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("state.bin");
        try (Session a = model.newSession()) {
            a.complete(PROMPT, GREEDY_20);
            a.saveState(file);
        }
        byte[] whole = java.nio.file.Files.readAllBytes(file);
        Path cut = java.nio.file.Files.write(dir.resolve("cut.bin"), java.util.Arrays.copyOf(whole, whole.length / 2));
        try (Session b = model.newSession()) {
            var e = assertThrows(InvalidArgumentException.class, () -> b.restoreState(cut));
            assertTrue(e.getMessage().contains("cut.bin"), e.getMessage());
            assertEquals(0, b.cachedTokenCount(), "nothing half-restored is left");
            assertEquals(20, b.complete(PROMPT, GREEDY_20).tokens().size(), "the session stays usable");
        }
    }

    @Test
    void chatReusesTheCacheForEarlierTurns() {
        try (Session s = model.newSession(SessionOptions.builder().contextSize(512).build())) {
            Conversation c = s.conversation("chatml", List.of(ChatMessage.system("You tell stories.")));
            GenerationOptions o = GenerationOptions.builder().maxTokens(12).build();
            GenerationResult first = c.ask("Tell me about a cat.", o);
            GenerationResult second = c.ask("And a dog?", o);
            assertTrue(second.stats().reusedTokens() >= first.stats().promptTokens(),
                    "turn 2 reused " + second.stats().reusedTokens() + " of turn 1's " + first.stats().promptTokens() + " prompt tokens");
            assertTrue(second.stats().promptTokens() - second.stats().reusedTokens() < second.stats().promptTokens() / 2);
            assertEquals(5, c.messages().size());
            assertEquals("assistant", c.messages().get(4).role());
        }
        var e = assertThrows(InvalidArgumentException.class, () -> {
            try (Session s = model.newSession()) {
                s.conversation();
            }
        });
        assertTrue(e.getMessage().contains("no chat template"), e.getMessage());
    }

    @Test
    void badInputGivesClearExceptions() {
        try (Session s = model.newSession(SessionOptions.builder().contextSize(64).build())) {
            String longPrompt = "the dog ran and ran ".repeat(40);
            var e = assertThrows(ContextFullException.class, () -> s.generate(longPrompt, GREEDY_20));
            assertTrue(e.getMessage().contains("context"), e.getMessage());
            assertThrows(InvalidArgumentException.class, () -> s.generate(new int[0], GREEDY_20));
            assertThrows(InvalidArgumentException.class, () -> s.generate(new int[] {1, 99999}, GREEDY_20));
            // A generation that runs into the end of the context stops cleanly.
            GenerationResult r = s.complete(PROMPT, GenerationOptions.builder().maxTokens(500).build());
            assertTrue(r.stopReason() == StopReason.CONTEXT_FULL || r.stopReason() == StopReason.END_OF_GENERATION, r.stopReason().name());
        }
    }

    @Test
    void useAfterCloseThrows() {
        Session s = model.newSession();
        Generation g = s.generate(PROMPT, GREEDY_20);
        s.close();
        s.close(); // idempotent
        assertThrows(ResourceClosedException.class, () -> s.complete(PROMPT, GREEDY_20));
        assertThrows(ResourceClosedException.class, s::saveState);
        assertFalse(g.hasNext(), "closing the session ended its generation");
        assertEquals(StopReason.CANCELLED, g.stopReason().orElseThrow());

        LlamaModel other = LlamaModel.load(model.path());
        Session open = other.newSession();
        other.close();
        assertTrue(open.isClosed(), "closing a model closes its sessions");
        assertThrows(ResourceClosedException.class, () -> other.tokenize("x"));
        assertThrows(ResourceClosedException.class, other::newSession);
    }

    @Test
    void parallelTokenizationOnASharedModel() throws Exception {
        int[] expected = model.tokenize(PROMPT);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            Thread t = new Thread(() -> {
                try {
                    for (int k = 0; k < 200; k++) {
                        assertArrayEquals(expected, model.tokenize(PROMPT));
                    }
                } catch (Throwable e) {
                    failure.set(e);
                }
            });
            threads.add(t);
            t.start();
        }
        for (Thread t : threads) {
            t.join();
        }
        if (failure.get() != null) {
            throw new AssertionError(failure.get());
        }
    }
}
