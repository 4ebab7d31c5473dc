package org.flexidepth.examples.chat;

import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.tools.DefaultModel;
import org.flexidepth.tools.ProjectPaths;
import org.flexidepth.tools.RandomFixtures;
import org.flexidepth.gguf.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The chat program as a user runs it: a separate JVM that loads the native libraries from the
 * jar resources (no library path given), with stdout holding only the model's text.
 */
class ChatProgramTest {
    @TempDir
    Path cache;

    record Run(int exit, String out, String err) {
    }

    private Run chat(String stdin, List<String> props, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                "-Dflexillama.cache.dir=" + cache));
        cmd.addAll(props);
        cmd.add(Chat.class.getName());
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).start();
        p.getOutputStream().write(stdin.getBytes(StandardCharsets.UTF_8));
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        return new Run(p.waitFor(), out, err);
    }

    private static List<String> sharedProps() {
        return List.of("-Dflexillama.build.dir=" + ProjectPaths.nativeBuild(),
                "-Dflexillama.shared.dir=" + ProjectPaths.shared().map(Path::toString).orElse("/nonexistent"));
    }

    private static String expectedGreedy(String prompt, int n) throws IOException {
        try (LlamaModel m = LlamaModel.load(DefaultModel.stories260K()); Session s = m.newSession()) {
            return s.complete(prompt, GenerationOptions.builder().maxTokens(n).build()).text();
        }
    }

    @Test
    void oneShotPromptOnTheDefaultModel() throws Exception {
        org.flexidepth.tests.Prerequisites.require(ProjectPaths.shared().isPresent(), "../shared is absent");
        Run r = chat("", sharedProps(), "--prompt", "Once upon a time", "--temp", "0", "--max-tokens", "24");
        assertEquals(0, r.exit(), r.err());
        String[] lines = r.out().split("\n");
        assertEquals("Once upon a time" + expectedGreedy("Once upon a time", 24), String.join("\n", List.of(lines).subList(0, lines.length - 1)));
        assertTrue(lines[lines.length - 1].matches("\\[24 tokens, [0-9.]+ tokens/s; prompt \\d+ tokens \\(0 cached\\), [0-9.]+ tokens/s; max_tokens]"),
                lines[lines.length - 1]);
        assertTrue(r.err().contains("stories260K.gguf"), r.err());
    }

    @Test
    void interactiveModeReadsLinesUntilExit() throws Exception {
        org.flexidepth.tests.Prerequisites.require(ProjectPaths.shared().isPresent(), "../shared is absent");
        Run r = chat("The little dog\n\nLily and Tom\n/exit\n", sharedProps(), "--temp", "0", "-n", "12");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("> The little dog" + expectedGreedy("The little dog", 12)), r.out());
        assertTrue(r.out().contains("Lily and Tom" + expectedGreedy("Lily and Tom", 12)), r.out());
        assertEquals(2, r.out().lines().filter(l -> l.startsWith("[12 tokens")).count(), r.out());
    }

    @Test
    void flexiDepthShowsLayersPerTokenAsNumbersWhenNotATerminal() throws Exception {
        Path model = cache.resolve("model.gguf"), plugin = cache.resolve("plugin.gguf");
        RandomFixtures.Shape shape = new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 512);
        RandomFixtures.writeModel(model, shape, 11, GgmlType.F32);
        RandomFixtures.writePlugin(plugin, shape, 17, List.of(2, 3), 8, 16, 0.5f, null, GgmlType.F32);
        Run r = chat("", List.of(), "--model", model.toString(), "--flexidepth", plugin.toString(), "--tau", "0.5",
                "--prompt", "hello", "--temp", "0", "-n", "12");
        assertEquals(0, r.exit(), r.err());
        String numbers = r.out().lines().filter(l -> l.startsWith("layers per token: ")).findFirst().orElseThrow(() -> new AssertionError(r.out()));
        List<Integer> layers = java.util.Arrays.stream(numbers.substring(18).split(" ")).map(Integer::parseInt).toList();
        assertEquals(12, layers.size(), numbers);
        assertTrue(layers.stream().allMatch(l -> l >= 2 && l <= 4), numbers);
        assertTrue(r.out().contains("layers/token (min "), r.out());
        assertTrue(r.err().contains("routed layers [2, 3], tau 0.5"), r.err());
        assertEquals(-1, r.out().indexOf('\033'), "no colour codes outside a terminal");
        Run bad = chat("", List.of(), "--model", model.toString(), "--tau", "0.5", "--prompt", "x");
        assertEquals(2, bad.exit());
        assertTrue(bad.err().contains("--tau needs --flexidepth"), bad.err());
    }

    @Test
    void dmtdMarksTheStepOfEveryTokenWhenNotATerminal() throws Exception {
        org.flexidepth.tests.Prerequisites.require(ProjectPaths.shared().isPresent(), "../shared is absent");
        Path model = DefaultModel.dmtdDemo12L();
        Run r = chat("", sharedProps(), "--model", model.toString(), "--dmtd", "4", "--prompt", "The King said to his people that",
                "--temp", "0", "-n", "10");
        assertEquals(0, r.exit(), r.err());
        String steps = r.out().lines().filter(l -> l.startsWith("DMTD steps")).findFirst().orElseThrow(() -> new AssertionError(r.out()));
        // the first token from the prompt, the second from the first head, then three by the decoding layers per cycle
        assertTrue(steps.endsWith(": F F d d d F d d d F"), steps);
        assertTrue(r.err().contains("DMTD: cycles of 4 tokens"), r.err());
        // without refill: the same schedule, said on stderr; the option needs --dmtd
        Run noRefill = chat("", sharedProps(), "--model", model.toString(), "--dmtd", "4", "--dmtd-refill", "false",
                "--prompt", "The King said to his people that", "--temp", "0", "-n", "10");
        assertEquals(0, noRefill.exit(), noRefill.err());
        assertTrue(noRefill.err().contains("DMTD: cycles of 4 tokens, no refill"), noRefill.err());
        assertTrue(noRefill.out().lines().anyMatch(l -> l.startsWith("DMTD steps") && l.endsWith(": F F d d d F d d d F")), noRefill.out());
        Run bad = chat("", List.of(), "--model", model.toString(), "--dmtd-refill", "false", "--prompt", "x");
        assertEquals(2, bad.exit());
        assertTrue(bad.err().contains("--dmtd-refill needs --dmtd"), bad.err());
    }

    @Test
    void flexiDepthShadesTokensInATerminalWithTheLegendOnOneLine() throws Exception {
        org.flexidepth.tests.Prerequisites.require(java.nio.file.Files.isExecutable(Path.of("/usr/bin/tmux")), "tmux is not installed (.ci/run installs it)");
        // 24 layers, 20 of them routed: a legend of every level from 4 to 24 would wrap at 80 columns
        Path model = cache.resolve("deep.gguf"), plugin = cache.resolve("deep-plugin.gguf");
        RandomFixtures.Shape shape = new RandomFixtures.Shape(24, 64, 4, 2, 128, 320, 512);
        RandomFixtures.writeModel(model, shape, 11, GgmlType.F32);
        RandomFixtures.writePlugin(plugin, shape, 17, java.util.stream.IntStream.range(4, 24).boxed().toList(), 8, 16, 0.5f, null, GgmlType.F32);
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), "-Dflexillama.cache.dir=" + cache,
                Chat.class.getName(), "--model", model.toString(), "--flexidepth", plugin.toString(), "--tau", "0.5",
                "--prompt", "hello", "--temp", "0", "-n", "12"));
        String quoted = String.join(" ", cmd.stream().map(a -> "'" + a.replace("'", "'\\''") + "'").toList());
        String socket = "chat-test-" + ProcessHandle.current().pid();
        List<String> tmux = List.of("tmux", "-L", socket);
        try {
            run(concat(tmux, "new-session", "-d", "-x", "80", "-y", "40", quoted + "; echo EXIT=$?; sleep 600"));
            String pane = "";
            for (int i = 0; i < 600 && !pane.contains("EXIT="); i++) {
                Thread.sleep(100);
                pane = run(concat(tmux, "capture-pane", "-p", "-e", "-t", "0"));
            }
            assertTrue(pane.contains("EXIT=0"), pane);
            String[] lines = pane.split("\n");
            int legend = -1;
            for (int i = 0; i < lines.length; i++) {
                if (lines[i].startsWith("layers per token: ")) {
                    legend = i;
                }
            }
            assertTrue(legend >= 0, "a legend line: " + pane);
            String legendText = lines[legend].replaceAll("\033\\[[0-9;]*m", "");
            assertTrue(legendText.strip().endsWith(" 24"), "the legend ends at the model's depth on its own line: [" + legendText + "]");
            assertTrue(legendText.contains(" 4 "), legendText);
            assertTrue(lines[legend + 1].replaceAll("\033\\[[0-9;]*m", "").startsWith("hello"), "the reply follows the legend: " + pane);
            assertTrue(pane.contains("\033[48;2;"), "the tokens are shaded: " + pane);
            assertTrue(pane.lines().noneMatch(l -> l.matches("layers per token: [0-9 ]+")), "no numbers line in a terminal: " + pane);
        } finally {
            new ProcessBuilder(concat(tmux, "kill-server")).start().waitFor();
        }
    }

    private static List<String> concat(List<String> head, String... tail) {
        List<String> all = new ArrayList<>(head);
        all.addAll(List.of(tail));
        return all;
    }

    private static String run(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), cmd + ": " + out);
        return out;
    }

    @Test
    void withoutSharedItAsksForAModel(@TempDir Path emptyBuild) throws Exception {
        Run r = chat("", List.of("-Dflexillama.build.dir=" + emptyBuild.resolve("native"), "-Dflexillama.shared.dir=/nonexistent"),
                "--prompt", "hi");
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("../shared is not present") && r.err().contains("--model"), r.err());
        assertEquals("", r.out());
    }

    @Test
    void badArgumentsPrintUsage() throws Exception {
        Run r = chat("", List.of(), "--temp", "hot");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("not a number for --temp") && r.err().contains("usage:"), r.err());
        Run missing = chat("", List.of(), "--model", cache.resolve("none.gguf").toString(), "--prompt", "x");
        assertEquals(1, missing.exit());
        assertTrue(missing.err().contains("model file not found"), missing.err());
        Run unknown = chat("", List.of(), "--bogus-flag");
        assertEquals(2, unknown.exit());
        assertTrue(unknown.err().contains("unknown option --bogus-flag") && unknown.err().contains("usage:"), unknown.err());
        Run unknownWithValue = chat("", List.of(), "--bogus-flag", "1", "--prompt", "x");
        assertTrue(unknownWithValue.err().contains("unknown option --bogus-flag"), unknownWithValue.err());
        Run noGrammar = chat("", List.of(), "--grammar-file", cache.resolve("none.gbnf").toString(), "--prompt", "x");
        assertEquals(2, noGrammar.exit());
        assertTrue(noGrammar.err().contains("grammar file not found: " + cache.resolve("none.gbnf"))
                && noGrammar.err().contains("usage:"), noGrammar.err());
    }
}
