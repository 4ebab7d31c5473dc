package org.flexidepth.llama;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The run-time choice of the CPU backend variant, against this CPU's flags as Linux reports them. */
class CpuBackendTest {
    // What each x86-64 variant requires, in /proc/cpuinfo's names (ggml's variant list, ggml/src/CMakeLists.txt)
    static final Map<String, List<String>> X86_VARIANTS = new LinkedHashMap<>();

    static {
        List<String> haswell = List.of("sse4_2", "avx", "f16c", "fma", "bmi2", "avx2");
        List<String> skylakex = concat(haswell, "avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw");
        X86_VARIANTS.put("x64", List.of());
        X86_VARIANTS.put("sse42", List.of("sse4_2"));
        X86_VARIANTS.put("sandybridge", List.of("sse4_2", "avx"));
        X86_VARIANTS.put("haswell", haswell);
        X86_VARIANTS.put("skylakex", skylakex);
        X86_VARIANTS.put("cascadelake", concat(skylakex, "avx512_vnni"));
        X86_VARIANTS.put("icelake", concat(skylakex, "avx512vbmi", "avx512_vnni"));
        X86_VARIANTS.put("alderlake", concat(haswell, "avx_vnni"));
        X86_VARIANTS.put("zen4", concat(skylakex, "avx512vbmi", "avx512_vnni", "avx512_bf16"));
        X86_VARIANTS.put("sapphirerapids", concat(skylakex, "avx512vbmi", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8"));
    }

    static List<String> concat(List<String> a, String... b) {
        return java.util.stream.Stream.concat(a.stream(), Arrays.stream(b)).toList();
    }

    @TempDir
    Path dir;

    @Test
    void theLoaderChoosesTheLargestVariantThisCpuRuns() throws IOException {
        Path cpuinfo = Path.of("/proc/cpuinfo");
        Assumptions.assumeTrue(System.getProperty("os.arch").matches("amd64|x86_64") && Files.isReadable(cpuinfo),
                "x86-64 Linux only");
        Set<String> flags = Files.readAllLines(cpuinfo).stream().filter(l -> l.startsWith("flags")).findFirst()
                .map(l -> Set.of(l.substring(l.indexOf(':') + 1).trim().split("\\s+"))).orElseThrow();
        Path libs = Path.of(System.getProperty(NativeLibrary.PATH_PROPERTY));
        List<String> built;
        try (var files = Files.list(libs)) {
            built = files.map(p -> p.getFileName().toString()).filter(n -> n.matches("libggml-cpu-.*\\.so"))
                    .map(n -> n.substring("libggml-cpu-".length(), n.length() - 3)).toList();
        }
        String chosen = Llama.cpuBackend();
        if (built.isEmpty()) {
            assertEquals("libggml-cpu.so", chosen, "a -DFLEXI_NATIVE_CPU build has one CPU library");
            return;
        }
        assertTrue(X86_VARIANTS.keySet().containsAll(built), "variants built: " + built);
        String expected = built.stream().filter(v -> flags.containsAll(X86_VARIANTS.get(v)))
                .max(java.util.Comparator.comparingInt(v -> X86_VARIANTS.get(v).size())).orElseThrow();
        System.out.println("CPU backend " + chosen + " of " + built.size() + " variants; this CPU's best by its flags: " + expected);
        assertEquals("libggml-cpu-" + expected + ".so", chosen);
    }

    @Test
    void aFolderWithoutACpuBackendIsRefusedWithAClearMessage() throws Exception {
        Path libs = Path.of(System.getProperty(NativeLibrary.PATH_PROPERTY));
        for (String name : List.of("libggml-base.so", "libggml.so", "libllama.so", "libllama-common.so", "libllama-fork-common.so")) {
            Files.copy(libs.resolve(name), dir.resolve(name));
        }
        String out = childJvm(dir);
        assertTrue(out.startsWith("ERROR no CPU backend library (libggml-cpu*.so) in " + dir), out);
    }

    @Test
    void anUnsupportedPlatformIsNamedWithTheSupportedOnes() throws Exception {
        // the natives come from the jar's resources (no library path): none for this os.arch
        String out = childJvm(List.of("-Dos.arch=sparcv9"));
        assertTrue(out.startsWith("ERROR no native libraries for linux-sparcv9") && out.contains("linux-x86_64, linux-aarch64"), out);
    }

    /** This JVM's class and module paths as one class path: the child runs unnamed, without module options. */
    static String classPath() {
        String modules = System.getProperty("jdk.module.path", "");
        String classes = System.getProperty("java.class.path", "");
        return modules.isEmpty() ? classes : classes.isEmpty() ? modules : modules + java.io.File.pathSeparator + classes;
    }

    /** Loads the library from {@code libs} in a child JVM (loading is once per JVM) and prints the outcome. */
    static String childJvm(Path libs) throws IOException, InterruptedException {
        return childJvm(List.of("-D" + NativeLibrary.PATH_PROPERTY + "=" + libs));
    }

    static String childJvm(List<String> properties) throws IOException, InterruptedException {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> cmd = new java.util.ArrayList<>(List.of(java.toString(), "--enable-native-access=ALL-UNNAMED", "-cp", classPath()));
        cmd.addAll(properties);
        cmd.add(NativeLibraryLocationTest.class.getName());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        // what the program printed, from its verdict on (the log comes before it)
        return out.lines().dropWhile(l -> !l.startsWith("ERROR") && !l.startsWith("LOADED")).collect(Collectors.joining("\n"));
    }
}
