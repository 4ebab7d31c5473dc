package org.flexidepth.examples.bench;

import org.flexidepth.llama.Generation;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;

import java.nio.file.Path;

/**
 * Greedy decode speed through the Java API, measured the way {@code llama-bench -p 0 -n N} measures
 * it, so that {@code examples/bench-java-vs-native.sh} can put the two side by side: one warm-up
 * generation, then each repetition generates from an emptied cache and times N decode steps, each
 * step being what a user's loop pays per token (sample, log-probability, text piece, decode). The
 * first token (the prompt's decode) is not timed, as llama-bench times no prompt at {@code -p 0}.
 * <p>
 * usage: {@code DecodeSpeed MODEL THREADS TOKENS REPETITIONS}; prints one line of tokens/s per
 * repetition.
 */
public final class DecodeSpeed {
    private static final String PROMPT = "Once upon a time";

    private DecodeSpeed() {
    }

    public static void main(String[] args) {
        if (args.length != 4) {
            System.err.println("usage: DecodeSpeed MODEL THREADS TOKENS REPETITIONS");
            System.exit(2);
        }
        int threads = Integer.parseInt(args[1]);
        int tokens = Integer.parseInt(args[2]);
        int reps = Integer.parseInt(args[3]);
        try (LlamaModel model = LlamaModel.load(Path.of(args[0]));
             Session session = model.newSession(SessionOptions.builder().contextSize(512).threads(threads).build())) {
            int[] prompt = model.tokenize(PROMPT);
            // tokens + 1: the first is sampled from the prompt's logits, then each of the next N follows one decode
            GenerationOptions options = GenerationOptions.builder().maxTokens(tokens + 1).build();
            timedRun(session, prompt, options, tokens); // warm-up: JIT, caches, the thread pool
            for (int r = 0; r < reps; r++) {
                System.out.printf("%.3f%n", timedRun(session, prompt, options, tokens));
            }
        }
    }

    /** Tokens/s over the decode steps after the first token. */
    private static double timedRun(Session session, int[] prompt, GenerationOptions options, int tokens) {
        session.clear();
        try (Generation g = session.generate(prompt, options)) {
            g.next();
            long start = System.nanoTime();
            int steps = 0;
            while (g.hasNext()) {
                g.next();
                steps++;
            }
            long end = System.nanoTime();
            if (steps != tokens) {
                throw new IllegalStateException("generated " + steps + " tokens after the first, expected " + tokens
                        + " (stopped: " + g.stopReason().orElseThrow() + ")");
            }
            return steps / ((end - start) / 1e9);
        }
    }
}
