package org.flexidepth.llama.bindings;

import org.flexidepth.bindgen.BindingsGenerator;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The committed bindings are exactly what the generator makes from the headers today. */
class GeneratedSourcesUpToDateTest {
    static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
    static final Path ARGFILE = ROOT.resolve("bindings/jextract.args");

    @Test
    void regeneratingChangesNothing() throws IOException {
        Map<String, String> fresh = BindingsGenerator.generate(ARGFILE, ROOT);
        Path dir = BindingsGenerator.outputDir(ARGFILE, ROOT);
        TreeSet<String> committed = new TreeSet<>();
        try (Stream<Path> files = Files.list(dir)) {
            files.filter(p -> p.toString().endsWith(".java")).forEach(p -> committed.add(p.getFileName().toString()));
        }
        assertEquals(new TreeSet<>(fresh.keySet()), committed, "generated file set differs; run ./dev bindings");
        for (var e : fresh.entrySet()) {
            assertEquals(e.getValue(), Files.readString(dir.resolve(e.getKey())), e.getKey() + " differs; run ./dev bindings");
        }
        assertTrue(fresh.containsKey("llama_h.java"));
    }
}
