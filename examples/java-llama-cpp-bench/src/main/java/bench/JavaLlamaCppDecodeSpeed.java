package bench;

import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.LlamaOutput;
import de.kherud.llama.args.LogFormat;
import de.kherud.llama.ModelParameters;

import java.util.Iterator;

/**
 * Greedy decode speed through java-llama.cpp, timed as DecodeSpeed times the Java API: one warm-up
 * generation, then per repetition N decode steps after the first token, from an emptied cache
 * (no prompt caching), with its own greedy settings (temperature 0, end of text ignored).
 * usage: JavaLlamaCppDecodeSpeed MODEL THREADS TOKENS REPETITIONS
 */
public final class JavaLlamaCppDecodeSpeed {
    public static void main(String[] args) {
        int threads = Integer.parseInt(args[1]);
        int tokens = Integer.parseInt(args[2]);
        int reps = Integer.parseInt(args[3]);
        LlamaModel.setLogger(LogFormat.TEXT, (level, message) -> { });
        ModelParameters mp = new ModelParameters().setModel(args[0]).setThreads(threads).setThreadsBatch(threads)
                .setCtxSize(512).setGpuLayers(0);
        try (LlamaModel model = new LlamaModel(mp)) {
            InferenceParameters ip = new InferenceParameters("Once upon a time").setNPredict(tokens + 1)
                    .setTemperature(0).setIgnoreEos(true).setCachePrompt(false).setSeed(1);
            timedRun(model, ip, tokens);
            for (int r = 0; r < reps; r++) {
                System.out.printf("%.3f%n", timedRun(model, ip, tokens));
            }
        }
        // its native worker thread outlives close() and would keep the JVM from exiting
        System.exit(0);
    }

    private static double timedRun(LlamaModel model, InferenceParameters ip, int tokens) {
        Iterator<LlamaOutput> it = model.generate(ip).iterator();
        it.next();
        long start = System.nanoTime();
        int steps = 0;
        while (it.hasNext()) {
            it.next();
            steps++;
        }
        long end = System.nanoTime();
        if (steps < tokens) {
            throw new IllegalStateException("generated " + steps + " tokens after the first, expected " + tokens);
        }
        return steps / ((end - start) / 1e9);
    }
}
