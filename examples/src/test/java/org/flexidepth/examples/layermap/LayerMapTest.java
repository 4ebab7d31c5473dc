package org.flexidepth.examples.layermap;

import org.flexidepth.tools.RandomFixtures;
import org.flexidepth.gguf.GgmlType;
import org.flexidepth.tools.JsonFiles;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The layer-map example's two outputs: the JSONL rows, and the HTML page as headless Chromium renders it. */
class LayerMapTest {
    static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    static final List<String> PROMPTS = List.of("the cat sat", "once there was a dog");

    @TempDir
    static Path dir;
    static Path out;
    static List<Map<String, Object>> rows = new ArrayList<>();

    @BeforeAll
    @SuppressWarnings("unchecked")
    static void makeMap() throws IOException {
        RandomFixtures.Shape shape = new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 512);
        Path model = dir.resolve("model.gguf"), plugin = dir.resolve("plugin.gguf");
        RandomFixtures.writeModel(model, shape, 11, GgmlType.F32);
        RandomFixtures.writePlugin(plugin, shape, 17, List.of(2, 3), 8, 16, 0.5f, null, GgmlType.F32);
        out = dir.resolve("map");
        LayerMap.write(model, plugin, PROMPTS, 0.5f, 16, out);
        for (String line : Files.readAllLines(out.resolve("layer-map.jsonl"))) {
            rows.add((Map<String, Object>) JsonFiles.parse(line));
        }
    }

    @Test
    void jsonlHasOneConsistentRowPerToken() {
        for (int p = 0; p < PROMPTS.size(); p++) {
            final int id = p;
            List<Map<String, Object>> mine = rows.stream().filter(r -> ((Number) r.get("prompt_id")).intValue() == id).toList();
            long generated = mine.stream().filter(r -> r.get("role").equals("generated")).count();
            assertEquals(16, generated, "generated rows of prompt " + p);
            assertTrue(mine.stream().anyMatch(r -> r.get("role").equals("prompt")));
            for (int i = 0; i < mine.size(); i++) {
                assertEquals(i, ((Number) mine.get(i).get("position")).intValue(), "positions are consecutive");
            }
        }
        for (Map<String, Object> r : rows) {
            List<?> ran = (List<?>) r.get("ran"), gates = (List<?>) r.get("gates");
            assertEquals(List.of(2L, 3L), ((List<?>) r.get("routed_layers")).stream().map(x -> ((Number) x).longValue()).toList());
            long ranCount = ran.stream().filter(Boolean.TRUE::equals).count();
            assertEquals(2 + ranCount, ((Number) r.get("layers_used")).longValue());
            for (int i = 0; i < ran.size(); i++) {
                assertEquals(((Number) gates.get(i)).doubleValue() > 0.5, ran.get(i));
            }
            assertTrue(r.get("text") instanceof String && r.get("token_id") instanceof Number);
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void dmtdRowsSayWhichStepRanEachToken() throws IOException {
        RandomFixtures.Shape shape = new RandomFixtures.Shape(4, 64, 4, 2, 128, 320, 512);
        Path model = dir.resolve("dmtd-model.gguf"), mapDir = dir.resolve("dmtd-map");
        RandomFixtures.writeModel(model, shape, 11, GgmlType.F32);
        LayerMap.writeDmtd(model, org.flexidepth.llama.Dmtd.cycle(3).withThinkingLayers(3), PROMPTS, 10, mapDir);
        List<Map<String, Object>> dmtd = new ArrayList<>();
        for (String line : Files.readAllLines(mapDir.resolve("layer-map.jsonl"))) {
            dmtd.add((Map<String, Object>) JsonFiles.parse(line));
        }
        for (int p = 0; p < PROMPTS.size(); p++) {
            final int id = p;
            List<Map<String, Object>> generated = dmtd.stream()
                    .filter(r -> ((Number) r.get("prompt_id")).intValue() == id && r.get("role").equals("generated")).toList();
            assertEquals(10, generated.size());
            // the first generated token comes from the prompt's full-depth pass; it is read at the
            // first generated position, a cycle head (phased from the end of the prompt), and each
            // cycle of 3 is a head and two decoding-only steps
            for (int i = 0; i < generated.size(); i++) {
                assertEquals(i == 0 || (i - 1) % 3 == 0 ? "full_depth" : "decoding_layers", generated.get(i).get("step"), "step of generated token " + i);
            }
        }
        for (Map<String, Object> r : dmtd) {
            boolean full = "full_depth".equals(r.get("step"));
            assertEquals(full ? 4L : 1L, ((Number) r.get("layers_used")).longValue());
            assertEquals(List.of(0L, 1L, 2L), ((List<?>) r.get("thinking_layers")).stream().map(x -> ((Number) x).longValue()).toList());
            assertEquals(List.of(full, full, full), r.get("ran"));
            assertFalse(r.containsKey("gates"));
            if (r.get("role").equals("prompt")) {
                assertTrue(full, "a prompt runs full depth");
            }
        }
        String page = Files.readString(mapDir.resolve("layer-map.html"));
        assertTrue(page.contains("Thinking layers: [0, 1, 2] of 4"), "the page names the thinking layers");
    }

    @Test
    void chromiumRendersTheTokensTheLegendAndTheChart() throws Exception {
        org.flexidepth.tests.Prerequisites.require(Files.isExecutable(CHROMIUM), "Debian's chromium is not installed (.ci/run installs it)");
        Path page = out.resolve("layer-map.html");
        String dom = chromium("--dump-dom", "--virtual-time-budget=3000", page.toUri().toString());
        Matcher tokens = Pattern.compile("data-rendered-tokens=\"(\\d+)\"").matcher(dom);
        Matcher bars = Pattern.compile("data-rendered-bars=\"(\\d+)\"").matcher(dom);
        assertTrue(tokens.find() && bars.find(), "the page's render check did not run:\n" + dom.substring(0, Math.min(500, dom.length())));
        long visibleTexts = rows.stream().filter(r -> !((String) r.get("text")).replace("\n", "").isEmpty()).count();
        assertEquals(visibleTexts, Long.parseLong(tokens.group(1)), "tokens with visible text are laid out");
        assertEquals(2, Integer.parseInt(bars.group(1)), "one bar per routed layer");
        // what a reader sees holds no test marker: the body's text is the tokens, headings, legend and chart
        String visible = dom.replaceAll("(?s)<script.*?</script>", "").replaceAll("<[^>]*>", "");
        assertFalse(visible.contains("rendered"), "a test marker in the page's visible text");
        for (Map<String, Object> r : rows) {
            String text = (String) r.get("text");
            if (text.length() > 2 && !text.contains("&") && !text.contains("<")) {
                assertTrue(dom.contains(text), "token text in the page: " + text);
            }
        }
        Path png = dir.resolve("shot.png");
        chromium("--screenshot=" + png, "--window-size=1000,1400", page.toUri().toString());
        BufferedImage img = ImageIO.read(png.toFile());
        int darkBlue = 0, lightBlue = 0, barBlue = 0;
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                int rgb = img.getRGB(x, y);
                int r = rgb >> 16 & 255, g = rgb >> 8 & 255, b = rgb & 255;
                darkBlue += near(r, g, b, 8, 48, 107) ? 1 : 0;
                lightBlue += near(r, g, b, 222, 235, 247) ? 1 : 0;
                barBlue += near(r, g, b, 33, 113, 181) ? 1 : 0;
            }
        }
        assertTrue(darkBlue > 100 && lightBlue > 100, "token shading visible: dark " + darkBlue + ", light " + lightBlue);
        assertTrue(barBlue > 1000, "chart bars visible: " + barBlue + " pixels");
    }

    private static boolean near(int r, int g, int b, int R, int G, int B) {
        return Math.abs(r - R) + Math.abs(g - G) + Math.abs(b - B) < 12;
    }

    private static String chromium(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(CHROMIUM.toString(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars", "--user-data-dir=" + Files.createTempDirectory(dir, "chromium")));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String stdout = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "chromium did not finish");
        assertEquals(0, p.exitValue(), "chromium failed");
        return stdout;
    }
}
