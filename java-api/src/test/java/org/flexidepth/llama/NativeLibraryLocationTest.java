package org.flexidepth.llama;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;

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
        String out = CpuBackendTest.childJvm(Path.of("/nonexistent/libs"));
        assertTrue(out.startsWith("ERROR"), out);
        assertTrue(out.contains("/nonexistent/libs") && out.contains("libllama.so"), out);
    }
}
