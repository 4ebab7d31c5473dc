package org.flexidepth.llama;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A JVM that cannot find the libraries says where it looked (run in a child JVM: loading is once per JVM). */
class NativeLibraryLocationTest {
    public static void main(String[] args) {
        try {
            Llama.upstreamCommit();
            System.out.println("LOADED");
        } catch (NativeLibraryException e) {
            System.out.println("ERROR " + e.getMessage());
        }
    }

    @Test
    void missingLibrariesListWhereTheLoaderLooked() throws IOException, InterruptedException {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(List.of(java.toString(), "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), "-Dflexillama.library.path=/nonexistent/libs",
                NativeLibraryLocationTest.class.getName())).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        assertTrue(out.startsWith("ERROR"), out);
        assertTrue(out.contains("/nonexistent/libs") && out.contains("libllama.so"), out);
    }
}
