package org.flexidepth.tests.flexidepth;

import org.flexidepth.tests.Prerequisites;
import org.flexidepth.tools.ProjectPaths;
import org.flexidepth.tests.api.RealModels;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The packaged natives on CPUs other than the build machine's, emulated by qemu-user: older x86-64
 * CPUs (SSE4.2 only, AVX2) with the x86-64 build, and ARM CPUs with the aarch64 cross build
 * ({@code build/aarch64}, {@code ./dev test} makes it). The loader must pick the variant of the
 * emulated CPU's level (never executing an instruction it lacks, which would be SIGILL), and the
 * results must still be right: greedy generation on stories260K equals the pristine x86-64 library's
 * on the host, and FlexiDepth's mixed routing matches the f64 reference. The native driver programs
 * run under emulation, not a JVM, which would be slow there.
 */
class EmulatedCpuTest {
    @TempDir
    Path dir;

    /** An emulated CPU: the qemu command line, the native build its programs come from, and the variant it must load. */
    record Cpu(String name, List<String> qemu, Path build, String variant) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Cpu> cpus() {
        Path x86 = ProjectPaths.nativeBuild(), arm = x86.resolveSibling("aarch64");
        List<String> armQemu = List.of("/usr/bin/qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", "-cpu");
        return Stream.of(
                new Cpu("x86-64 Nehalem", List.of("/usr/bin/qemu-x86_64", "-cpu", "Nehalem"), x86, "libggml-cpu-sse42.so"),
                new Cpu("x86-64 Haswell", List.of("/usr/bin/qemu-x86_64", "-cpu", "Haswell"), x86, "libggml-cpu-haswell.so"),
                new Cpu("aarch64 Cortex-A53", concat(armQemu, "cortex-a53"), arm, "libggml-cpu-armv8.0_1.so"),
                new Cpu("aarch64 Neoverse-N1", concat(armQemu, "neoverse-n1"), arm, "libggml-cpu-armv8.2_2.so"));
    }

    static List<String> concat(List<String> a, String b) {
        List<String> out = new ArrayList<>(a);
        out.add(b);
        return out;
    }

    static Cpu require(Cpu cpu) {
        boolean x86Host = System.getProperty("os.arch").matches("amd64|x86_64");
        Prerequisites.require(x86Host && Files.isExecutable(Path.of(cpu.qemu().getFirst())),
                cpu.qemu().getFirst() + " is missing (apt install qemu-user) or this is not an x86-64 host");
        Prerequisites.require(Files.isRegularFile(cpu.build().resolve("jar-natives/natives.list")),
                cpu.build() + " is not built (./dev test cross-compiles build/aarch64)");
        return cpu;
    }

    @ParameterizedTest
    @MethodSource("cpus")
    void greedyGenerationEqualsPristineOnTheHost(Cpu cpu) throws Exception {
        require(cpu);
        Path model = RealModels.stories260K();
        String prompt = "Once upon a time";
        int[] expected = RealModels.referenceGreedy(model, 24, prompt);
        Path natives = cpu.build().resolve("jar-natives");
        List<String> cmd = new ArrayList<>(cpu.qemu());
        cmd.addAll(List.of("-E", "LD_LIBRARY_PATH=" + natives, "-E", "FLEXI_BACKEND_DIR=" + natives,
                cpu.build().resolve("bin/fork-greedy").toString(), model.toString(), "24", prompt));
        Path err = dir.resolve("stderr.txt");
        Process p = new ProcessBuilder(cmd).redirectError(err.toFile()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        int rc = p.waitFor();
        String log = Files.readString(err);
        assertEquals(0, rc, "fork-greedy on " + cpu + " failed: " + log);
        assertTrue(log.contains("CPU backend: " + cpu.variant()), cpu + " must run " + cpu.variant() + ": " + log);
        int[] got = Arrays.stream(out.split("\\s+")).mapToInt(Integer::parseInt).toArray();
        assertArrayEquals(expected, got, "greedy tokens on " + cpu);
    }

    @ParameterizedTest
    @MethodSource("cpus")
    void flexiDepthMatchesTheReference(Cpu cpu) throws Exception {
        require(cpu);
        FlexiDepthReferenceTest.Case c0 = FlexiDepthReferenceTest.cases()
                .filter(c -> c.mode() == EvalDriver.Mode.MASKED).findFirst().orElseThrow();
        Path[] files = FlexiDepthReferenceTest.mixedFixture(c0, dir);
        var script = FlexiDepthReferenceTest.Script.standard(c0.shape().vocab(), 13);
        List<String> launcher = new ArrayList<>(cpu.qemu());
        launcher.addAll(List.of("-E", "LD_LIBRARY_PATH=" + cpu.build().resolve("bin")));
        EvalDriver.Run run = EvalDriver.runUnder(launcher, cpu.build(), files[0], files[1], FlexiDepthReferenceTest.TAU,
                script.lines(), dir, EvalDriver.Mode.MASKED, List.of());
        assertTrue(run.log().contains("CPU backend: " + cpu.variant()), cpu + " must run " + cpu.variant() + ": " + run.log());
        var c = FlexiDepthReferenceTest.compare(new ReferenceModel(files[0], files[1]), run.outputs(), script, false);
        System.out.printf("%s (%s): max |logit diff| %.2e, max |gate diff| %.2e, skips per layer %s of %d%n", cpu, cpu.variant(),
                c.maxLogitError(), c.maxGateError(), Arrays.toString(c.skipsPerLayer()), c.tokens());
        assertTrue(c.maxLogitError() < FlexiDepthReferenceTest.LOGIT_TOLERANCE, "logits differ by " + c.maxLogitError());
        assertTrue(c.maxGateError() < FlexiDepthReferenceTest.GATE_TOLERANCE, "gates differ by " + c.maxGateError());
        assertTrue(Arrays.stream(c.skipsPerLayer()).allMatch(k -> k > 0 && k < c.tokens()), "decisions are mixed");
    }
}
