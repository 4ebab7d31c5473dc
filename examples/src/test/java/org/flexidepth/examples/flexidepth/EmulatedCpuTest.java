package org.flexidepth.examples.flexidepth;

import org.flexidepth.examples.Prerequisites;
import org.flexidepth.examples.ProjectPaths;
import org.flexidepth.examples.api.RealModels;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The packaged natives on CPUs older than the build machine, emulated by qemu-user: the loader must
 * pick the variant of the emulated CPU's level (never executing an instruction it lacks, which
 * would be SIGILL), and the results must still be right: greedy generation on stories260K equals
 * the pristine library's on the host, and FlexiDepth's mixed routing matches the f64 reference.
 * The native driver programs run under emulation, not a JVM, which would be slow there.
 */
class EmulatedCpuTest {
    @TempDir
    Path dir;

    static List<String> qemu(String cpu) {
        boolean x86 = System.getProperty("os.arch").matches("amd64|x86_64");
        boolean present = x86 && Files.isExecutable(Path.of("/usr/bin/qemu-x86_64"));
        Prerequisites.require(present, "qemu-x86_64 is missing (apt install qemu-user) or this is not an x86-64 host");
        return List.of("/usr/bin/qemu-x86_64", "-cpu", cpu);
    }

    @ParameterizedTest
    @CsvSource({"Nehalem, libggml-cpu-sse42.so", "Haswell, libggml-cpu-haswell.so"})
    void greedyGenerationEqualsPristineOnTheHost(String cpu, String variant) throws Exception {
        Path model = RealModels.stories260K();
        String prompt = "Once upon a time";
        int[] expected = RealModels.referenceGreedy(model, 24, prompt);
        Path natives = ProjectPaths.nativeBuild().resolve("jar-natives");
        List<String> cmd = new ArrayList<>(qemu(cpu));
        cmd.addAll(List.of("-E", "LD_LIBRARY_PATH=" + natives, "-E", "FLEXI_BACKEND_DIR=" + natives,
                ProjectPaths.nativeBuild().resolve("bin/fork-greedy").toString(), model.toString(), "24", prompt));
        Path err = dir.resolve("stderr.txt");
        Process p = new ProcessBuilder(cmd).redirectError(err.toFile()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        String log = "";
        int rc = p.waitFor();
        log = Files.readString(err);
        assertEquals(0, rc, "fork-greedy under qemu -cpu " + cpu + " failed: " + log);
        assertTrue(log.contains("CPU backend: " + variant), cpu + " must run " + variant + ": " + log);
        int[] got = Arrays.stream(out.split("\\s+")).mapToInt(Integer::parseInt).toArray();
        assertArrayEquals(expected, got, "greedy tokens under " + cpu);
    }

    @ParameterizedTest
    @CsvSource({"Nehalem, libggml-cpu-sse42.so", "Haswell, libggml-cpu-haswell.so"})
    void flexiDepthMatchesTheReference(String cpu, String variant) throws Exception {
        FlexiDepthReferenceTest.Case c0 = FlexiDepthReferenceTest.cases()
                .filter(c -> c.mode() == EvalDriver.Mode.MASKED).findFirst().orElseThrow();
        Path[] files = FlexiDepthReferenceTest.mixedFixture(c0, dir);
        var script = FlexiDepthReferenceTest.Script.standard(c0.shape().vocab(), 13);
        EvalDriver.Run run = EvalDriver.runUnder(qemu(cpu), files[0], files[1], FlexiDepthReferenceTest.TAU, script.lines(), dir,
                EvalDriver.Mode.MASKED, List.of());
        assertTrue(run.log().contains("CPU backend: " + variant), cpu + " must run " + variant + ": " + run.log());
        var c = FlexiDepthReferenceTest.compare(new ReferenceModel(files[0], files[1]), run.outputs(), script, false);
        System.out.printf("qemu -cpu %s (%s): max |logit diff| %.2e, max |gate diff| %.2e, skips per layer %s of %d%n", cpu, variant,
                c.maxLogitError(), c.maxGateError(), Arrays.toString(c.skipsPerLayer()), c.tokens());
        assertTrue(c.maxLogitError() < FlexiDepthReferenceTest.LOGIT_TOLERANCE, "logits differ by " + c.maxLogitError());
        assertTrue(c.maxGateError() < FlexiDepthReferenceTest.GATE_TOLERANCE, "gates differ by " + c.maxGateError());
        assertTrue(Arrays.stream(c.skipsPerLayer()).allMatch(k -> k > 0 && k < c.tokens()), "decisions are mixed");
    }
}
