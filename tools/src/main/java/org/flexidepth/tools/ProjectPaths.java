package org.flexidepth.tools;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Where the repository's build outputs and the read-only {@code ../shared} folder are. Both can
 * be given as system properties (Maven sets them for tests); otherwise they are found from the
 * working directory, which is the repository root for the README's commands.
 */
public final class ProjectPaths {
    private ProjectPaths() {
    }

    /** The CMake build folder ({@code build/native}). */
    public static Path nativeBuild() {
        return Path.of(System.getProperty("flexillama.build.dir", root().resolve("build/native").toString()));
    }

    /** The folder for cached converted models ({@code build/models}). */
    public static Path modelCache() {
        return nativeBuild().getParent().resolve("models");
    }

    /** {@code ../shared}, if present. */
    public static Optional<Path> shared() {
        Path p = Path.of(System.getProperty("flexillama.shared.dir", root().resolve("../shared").toString())).normalize();
        return Files.isDirectory(p) ? Optional.of(p) : Optional.empty();
    }

    private static Path root() {
        Path dir = Path.of("").toAbsolutePath();
        for (Path p = dir; p != null; p = p.getParent()) {
            if (Files.isDirectory(p.resolve("native")) && Files.isRegularFile(p.resolve("CMakeLists.txt"))) {
                return p;
            }
        }
        return dir;
    }
}
