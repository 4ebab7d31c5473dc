package org.flexidepth.tests.api;

import org.flexidepth.tools.DefaultModel;
import org.flexidepth.tools.ProjectPaths;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The real models of ../shared as GGUF files, and the pristine upstream reference program. */
public final class RealModels {
    private RealModels() {
    }

    public static void assumeShared() {
        org.flexidepth.tests.Prerequisites.require(ProjectPaths.shared().isPresent(),
                "../shared is absent: real-model tests need it (see ../shared/README.md)");
    }

    public static Path stories260K() {
        return converted(DefaultModel::stories260K);
    }

    public static Path flexiDemo12L() {
        return converted(DefaultModel::flexiDemo12L);
    }

    static Path tinyStories656K() {
        return converted(DefaultModel::tinyStories656K);
    }

    private interface Conversion {
        Path run() throws IOException;
    }

    /** A model of ../shared, converted to GGUF on first use. */
    private static Path converted(Conversion conversion) {
        assumeShared();
        try {
            return conversion.run();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Greedy token ids from the pristine upstream library (native/tests/reference-greedy.c). */
    public static int[] referenceGreedy(Path model, int nPredict, String prompt) throws IOException, InterruptedException {
        return referenceGreedy(model, nPredict, prompt, List.of());
    }

    /** As {@link #referenceGreedy(Path, int, String)} with more options ({@code --lora FILE SCALE}). */
    public static int[] referenceGreedy(Path model, int nPredict, String prompt, List<String> options) throws IOException, InterruptedException {
        Path exe = ProjectPaths.nativeBuild().resolve("pristine-tools/reference-greedy");
        assertTrue(Files.isExecutable(exe), exe + " missing: build the native tree (see README)");
        List<String> command = new ArrayList<>(List.of(exe.toString(), model.toString(), String.valueOf(nPredict), prompt));
        command.addAll(options);
        Process p = new ProcessBuilder(command).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), "reference-greedy failed: " + err);
        return out.isEmpty() ? new int[0] : Arrays.stream(out.split(" ")).mapToInt(Integer::parseInt).toArray();
    }

    static long rssKiB() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IOException("no VmRSS in /proc/self/status");
    }

    public static List<Integer> ids(List<org.flexidepth.llama.Token> tokens) {
        List<Integer> ids = new ArrayList<>();
        tokens.forEach(t -> ids.add(t.id()));
        return ids;
    }
}
