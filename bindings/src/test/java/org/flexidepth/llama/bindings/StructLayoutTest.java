package org.flexidepth.llama.bindings;

import org.flexidepth.bindgen.BindingsGenerator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.GroupLayout;
import java.lang.foreign.MemoryLayout.PathElement;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * Every bound struct's size and every field's offset, as the C compiler lays them out, equal the
 * generated Java layouts: a C program prints sizeof/offsetof and the test compares.
 */
class StructLayoutTest {
    @TempDir
    Path dir;

    @Test
    void javaLayoutsMatchTheCCompiler() throws Exception {
        Path root = GeneratedSourcesUpToDateTest.ROOT;
        Map<String, List<String>> structs = BindingsGenerator.structFields(GeneratedSourcesUpToDateTest.ARGFILE, root);
        assertFalse(structs.isEmpty());
        StringBuilder c = new StringBuilder("#include <stdio.h>\n#include <stddef.h>\n#include \"flexillama.h\"\nint main(void) {\n");
        List<String> expected = new ArrayList<>();
        for (var s : structs.entrySet()) {
            c.append("    printf(\"%s %zu\\n\", \"").append(s.getKey()).append("\", sizeof(struct ").append(s.getKey()).append("));\n");
            GroupLayout layout = (GroupLayout) Class.forName("org.flexidepth.llama.bindings." + s.getKey()).getMethod("layout").invoke(null);
            expected.add(s.getKey() + " " + layout.byteSize());
            for (String f : s.getValue()) {
                c.append("    printf(\"%s %zu\\n\", \"").append(s.getKey()).append('.').append(f)
                        .append("\", offsetof(struct ").append(s.getKey()).append(", ").append(f).append("));\n");
                expected.add(s.getKey() + "." + f + " " + layout.byteOffset(PathElement.groupElement(f)));
            }
        }
        c.append("    return 0;\n}\n");
        Path src = Files.writeString(dir.resolve("layouts.c"), c);
        Path exe = dir.resolve("layouts");
        String inc = root.resolve("build/native/_deps/llama.cpp-fork").toString();
        run(List.of("cc", "-std=c11", "-I" + root.resolve("bindings"), "-I" + inc + "/include", "-I" + inc + "/ggml/include",
                "-I" + root.resolve("native/include"), "-o", exe.toString(), src.toString()));
        List<String> actual = run(List.of(exe.toString())).lines().toList();
        assertEquals(expected, actual);
    }

    private static String run(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), String.join(" ", cmd) + "\n" + out);
        return out;
    }
}
