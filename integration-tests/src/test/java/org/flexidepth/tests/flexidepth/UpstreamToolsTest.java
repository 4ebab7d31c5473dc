package org.flexidepth.tests.flexidepth;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.llama.TokenScores;
import org.flexidepth.tests.Prerequisites;
import org.flexidepth.tests.api.RealModels;
import org.flexidepth.tools.ProjectPaths;
import org.flexidepth.tools.RandomFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Upstream's tools built from the fork take a plug-in through upstream's own argument parser and
 * {@code common_init_from_params} ({@code --flexidepth}, {@code --flexidepth-tau}; patch 0013):
 * {@code llama-perplexity} on WikiText-2 with a plug-in gives the perplexity that
 * {@code Session.score} gives with it, computed as llama-perplexity computes it (chunks of n_ctx
 * tokens starting with BOS, the second half of each scored).
 */
class UpstreamToolsTest {
    static final RandomFixtures.Shape STORIES = new RandomFixtures.Shape(5, 64, 8, 4, 172, 512, 512);
    static final int CTX = 128, CHUNKS = 4;
    static final float TAU = 0.5f;
    @TempDir
    Path dir;

    static double perplexityOf(Path exe, Path model, Path text, List<String> extra) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(exe.toString(), "-m", model.toString(), "-f", text.toString(), "-c", String.valueOf(CTX),
                "-b", String.valueOf(CTX), "--chunks", String.valueOf(CHUNKS), "-t", "2"));
        cmd.addAll(extra);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), "llama-perplexity failed: " + out);
        Matcher m = Pattern.compile("Final estimate: PPL = ([0-9.]+)").matcher(out);
        assertTrue(m.find(), "no final estimate in: " + out);
        return Double.parseDouble(m.group(1));
    }

    @Test
    void llamaPerplexityWithAPluginGivesWhatSessionScoreGives() throws Exception {
        Path exe = ProjectPaths.nativeBuild().resolve("bin/llama-perplexity");
        Prerequisites.require(Files.isExecutable(exe), exe + " (the native build makes it)");
        Path wiki = ProjectPaths.shared().map(s -> s.resolve("data/wiki.test.raw")).filter(Files::isRegularFile).orElse(null);
        Prerequisites.require(wiki != null, "../shared/data/wiki.test.raw");
        Path text = Files.writeString(dir.resolve("wiki.txt"), Files.readString(wiki).substring(0, 8000));
        Path model = RealModels.stories260K();
        Path plugin = dir.resolve("plugin.gguf");
        RandomFixtures.writePlugin(plugin, STORIES, 17, List.of(1, 2, 3), 8, 16, TAU, null, GgmlType.F32);

        double base = perplexityOf(exe, model, text, List.of());
        double routed = perplexityOf(exe, model, text, List.of("--flexidepth", plugin.toString(), "--flexidepth-tau", String.valueOf(TAU)));

        try (LlamaModel m = LlamaModel.load(model); FlexiDepthPlugin p = m.loadFlexiDepth(plugin);
             Session s = m.newSession(SessionOptions.builder().contextSize(CTX).build())) {
            int[] tokens = m.tokenize(Files.readString(text), true, false);
            assertTrue(tokens.length >= CHUNKS * CTX, "the text holds " + CHUNKS + " chunks");
            s.attach(p, TAU);
            double nll = 0, layers = 0;
            int count = 0;
            for (int c = 0; c < CHUNKS; c++) {
                int[] chunk = Arrays.copyOfRange(tokens, c * CTX, (c + 1) * CTX);
                chunk[0] = m.bosToken().orElseThrow();
                TokenScores scores = s.score(chunk);
                float[] lp = scores.logProbabilities(); // lp[k]: token k + 1
                for (int k = CTX / 2; k < CTX - 1; k++) {
                    nll -= lp[k];
                    count++;
                }
                layers += scores.meanLayers();
            }
            double expected = Math.exp(nll / count);
            System.out.printf("llama-perplexity: %.4f without the plug-in, %.4f with it; Session.score %.4f at %.2f layers per token%n",
                    base, routed, expected, layers / CHUNKS);
            assertEquals(expected, routed, 1e-3 * expected, "llama-perplexity with --flexidepth computes what the session computes");
            assertTrue(layers / CHUNKS < STORIES.layers(), "the plug-in skips layers");
            assertTrue(Math.abs(routed - base) > 1e-3 * base, "and that changes the perplexity: " + base + " vs " + routed);
        }
    }
}
