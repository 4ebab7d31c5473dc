package org.flexidepth.llama;

import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Optional;

/** Says what is wrong with a path that should name a readable file, in words a user can act on. */
final class FilePaths {
    private FilePaths() {
    }

    /** Why {@code path} is not a regular file, or empty if it is one. */
    static Optional<String> problem(Path path) {
        if (Files.isRegularFile(path)) {
            return Optional.empty();
        }
        if (Files.isDirectory(path)) {
            return Optional.of("is a directory, not a file");
        }
        if (Files.isSymbolicLink(path)) {
            try {
                path.toRealPath();
            } catch (FileSystemException e) {
                // ELOOP says "Too many levels of symbolic links"; a dangling link has no reason
                return Optional.of(e.getReason() != null
                        ? "is a symbolic link that cannot be resolved (" + e.getReason() + ")"
                        : "is a symbolic link to a file that does not exist");
            } catch (IOException e) {
                return Optional.of("is a symbolic link that cannot be resolved (" + e.getMessage() + ")");
            }
        }
        if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            return Optional.of("is not a regular file");
        }
        return Optional.of("not found");
    }
}
