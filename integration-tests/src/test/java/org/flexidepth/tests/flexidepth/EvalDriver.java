package org.flexidepth.tests.flexidepth;

import org.flexidepth.tools.ProjectPaths;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Runs the fork's native driver (native/tests/flexidepth-eval.cpp) on a script and reads its output. */
final class EvalDriver {
    /** One token's output from the fork. */
    record Output(int seq, int pos, float[] logits, float[] gates, boolean[] ran) {
    }

    private EvalDriver() {
    }

    /**
     * How the fork computes routed layers (llama_flexidepth_mode); MASKED_FA adds flash attention and
     * an F16 cache; AUTO is the runtime's default.
     */
    enum Mode { DENSE, MASKED, MASKED_FA, AUTO }

    static List<Output> run(Path model, Path plugin, float tau, List<String> script, Path dir) throws IOException, InterruptedException {
        return run(model, plugin, tau, script, dir, Mode.MASKED);
    }

    static List<Output> run(Path model, Path plugin, float tau, List<String> script, Path dir, Mode mode) throws IOException, InterruptedException {
        return run(model, plugin, tau, script, dir, mode, List.of());
    }

    /** With more driver options, e.g. {@code --lora FILE SCALE}. */
    static List<Output> run(Path model, Path plugin, float tau, List<String> script, Path dir, Mode mode, List<String> options)
            throws IOException, InterruptedException {
        return runLogged(model, plugin, tau, script, dir, mode, options).outputs();
    }

    /** The outputs and what the driver printed (its last line counts the graphs' token-skipping products). */
    record Run(List<Output> outputs, String log) {
        long mulMatIdNodes() {
            return count("mul_mat_id nodes: ");
        }

        /** The graphs' MUL_MAT nodes, as computed. */
        long mulMatNodes() {
            return count("mul_mat nodes: ");
        }

        /** With --dmtd: the gathers of refill rows' K/V from their old cells, as computed. */
        long dmtdRefillCopies() {
            return count("dmtd refill copies: ");
        }

        private long count(String prefix) {
            return log.lines().filter(l -> l.startsWith(prefix)).mapToLong(l -> Long.parseLong(l.substring(prefix.length()).trim()))
                    .findFirst().orElseThrow(() -> new AssertionError("no " + prefix + "in " + log));
        }
    }

    static Run runLogged(Path model, Path plugin, float tau, List<String> script, Path dir, Mode mode, List<String> options)
            throws IOException, InterruptedException {
        return runUnder(List.of(), ProjectPaths.nativeBuild(), model, plugin, tau, script, dir, mode, options);
    }

    /**
     * Runs the driver of the native build {@code build} under a launcher, e.g. {@code qemu-x86_64
     * -cpu Haswell}, or the aarch64 cross build under {@code qemu-aarch64}.
     */
    static Run runUnder(List<String> launcher, Path build, Path model, Path plugin, float tau, List<String> script, Path dir,
                        Mode mode, List<String> options) throws IOException, InterruptedException {
        Path exe = build.resolve("bin/flexidepth-eval");
        assertTrue(Files.isExecutable(exe), exe + " missing: build the native tree");
        Path scriptFile = Files.write(Files.createTempFile(dir, "script", ".txt"), script);
        Path out = Files.createTempFile(dir, "out", ".bin");
        List<String> cmd = new ArrayList<>(launcher);
        cmd.addAll(List.of(exe.toString(), model.toString(), plugin == null ? "-" : plugin.toString(),
                Float.toString(tau), scriptFile.toString(), out.toString(), mode.name().toLowerCase().replace('_', '-')));
        cmd.addAll(options);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), "flexidepth-eval failed: " + log);
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(out)).order(ByteOrder.LITTLE_ENDIAN);
        int nVocab = b.getInt(), nRouted = b.getInt();
        List<Output> outputs = new ArrayList<>();
        while (b.hasRemaining()) {
            int n = b.getInt();
            for (int i = 0; i < n; i++) {
                int seq = b.getInt(), pos = b.getInt();
                float[] logits = new float[nVocab];
                b.asFloatBuffer().get(logits);
                b.position(b.position() + 4 * nVocab);
                float[] gates = new float[nRouted];
                b.asFloatBuffer().get(gates);
                b.position(b.position() + 4 * nRouted);
                boolean[] ran = new boolean[nRouted];
                for (int r = 0; r < nRouted; r++) {
                    ran[r] = b.get() != 0;
                }
                outputs.add(new Output(seq, pos, logits, gates, ran));
            }
        }
        return new Run(outputs, log);
    }
}
