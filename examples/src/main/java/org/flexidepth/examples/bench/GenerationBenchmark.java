package org.flexidepth.examples.bench;

import org.flexidepth.llama.Generation;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.llama.Token;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Decode speed through the Java API: one operation is one generated token (sample, log-probability,
 * text piece, decode), so ops/s is tokens/s, comparable with {@code llama-bench -n}; JMH's gc
 * profiler ({@code -prof gc}) gives the Java allocation per token. Run with
 * {@code examples/bench-java-vs-native.sh}, or:
 * {@code java -jar examples/target/flexillama-examples.jar} is the chat program, so use
 * {@code java -cp examples/target/flexillama-examples.jar org.openjdk.jmh.Main GenerationBenchmark -p model=M.gguf}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class GenerationBenchmark {
    @Param("")
    public String model;

    @Param("2")
    public int threads;

    private LlamaModel llama;
    private Session session;
    private Generation generation;
    private final GenerationOptions options = GenerationOptions.builder().maxTokens(1_000_000).build();

    @Setup(Level.Trial)
    public void load() {
        llama = LlamaModel.load(Path.of(model));
        session = llama.newSession(SessionOptions.builder().contextSize(4096).threads(threads).build());
    }

    @Benchmark
    public int nextToken() {
        if (generation == null || !generation.hasNext()) {
            // the context is full (or the model ended): start over; rare against thousands of tokens
            if (generation != null) {
                generation.close();
            }
            session.clear();
            generation = session.generate(new int[] {1, 300, 301}, options);
        }
        Token t = generation.next();
        return t.id();
    }

    @TearDown(Level.Trial)
    public void close() {
        if (generation != null) {
            generation.close();
        }
        session.close();
        llama.close();
    }
}
