package org.flexidepth.llama;

import org.flexidepth.llama.bindings.llama_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * Text a {@link FlexiDepthTrainer} learns from: plain text files, chat conversations in JSONL
 * rendered with a chat template, or tokens. Files are read when training starts.
 */
public final class TrainingData {
    private enum Format { TEXT, CHAT_JSONL, TOKENS }

    private final Format format;
    private final List<Path> files;
    private final Optional<String> chatTemplate;
    private final int[] tokens;

    private TrainingData(Format format, List<Path> files, Optional<String> chatTemplate, int[] tokens) {
        this.format = format;
        this.files = files;
        this.chatTemplate = chatTemplate;
        this.tokens = tokens;
    }

    /**
     * Plain text files; each is tokenized on its own, starting with BOS.
     *
     * @param files UTF-8 text files, at least one; checked to exist now, read when training starts
     * @return the data
     * @throws InvalidArgumentException if {@code files} is empty
     * @throws FlexiDepthException       with reason {@code IO} if a file is not a regular file
     */
    public static TrainingData textFiles(List<Path> files) {
        return new TrainingData(Format.TEXT, requireFiles(files), Optional.empty(), new int[0]);
    }

    /**
     * Plain text files; see {@link #textFiles(List)}.
     *
     * @param files UTF-8 text files, at least one
     * @return the data
     * @throws InvalidArgumentException if {@code files} is empty
     * @throws FlexiDepthException       with reason {@code IO} if a file is not a regular file
     */
    public static TrainingData textFiles(Path... files) {
        return textFiles(List.of(files));
    }

    /**
     * Chat JSONL files, one {@code {"messages": [{"role": ..., "content": ...}, ...]}} per line,
     * rendered with {@code template} (a template name such as "chatml", or the model's own when empty).
     *
     * @param files    JSONL files, at least one; checked to exist now, read when training starts
     * @param template the chat template's name, or empty for the model's own template
     * @return the data
     * @throws InvalidArgumentException if {@code files} is empty
     * @throws FlexiDepthException       with reason {@code IO} if a file is not a regular file
     */
    public static TrainingData chatJsonl(List<Path> files, Optional<String> template) {
        return new TrainingData(Format.CHAT_JSONL, requireFiles(files), template, new int[0]);
    }

    /**
     * Tokens the caller already has, trained on as one stream.
     *
     * @param tokens token ids of the model to be trained on, at least two; copied
     * @return the data
     * @throws InvalidArgumentException if there are fewer than two tokens
     */
    public static TrainingData tokens(int[] tokens) {
        if (tokens.length < 2) {
            throw new InvalidArgumentException("training needs at least two tokens");
        }
        return new TrainingData(Format.TOKENS, List.of(), Optional.empty(), tokens.clone());
    }

    private static List<Path> requireFiles(List<Path> files) {
        if (files.isEmpty()) {
            throw new InvalidArgumentException("give at least one training file");
        }
        for (Path f : files) {
            if (!Files.isRegularFile(f)) {
                throw new FlexiDepthException(FlexiDepthException.Reason.IO, "training file not found: " + f);
            }
        }
        return List.copyOf(files);
    }

    /** Tokenizes for {@code model}; the caller frees the handle with llama_flexidepth_train_data_free. */
    MemorySegment load(LlamaModel model, Arena arena) {
        NativeLibrary.loadTraining();
        if (format == Format.TOKENS) {
            model.checkTokens(tokens);
            MemorySegment t = arena.allocateFrom(ValueLayout.JAVA_INT, tokens);
            return llama_h.llama_flexidepth_train_data_from_tokens(t, tokens.length);
        }
        MemorySegment paths = arena.allocate(ValueLayout.ADDRESS, files.size());
        for (int i = 0; i < files.size(); i++) {
            paths.setAtIndex(ValueLayout.ADDRESS, i, arena.allocateFrom(files.get(i).toString()));
        }
        MemorySegment template = chatTemplate.map(arena::allocateFrom).orElse(MemorySegment.NULL);
        MemorySegment status = arena.allocate(ValueLayout.JAVA_INT);
        int kind = format == Format.TEXT ? llama_h.LLAMA_FLEXIDEPTH_DATA_TEXT() : llama_h.LLAMA_FLEXIDEPTH_DATA_CHAT_JSONL();
        MemorySegment data = llama_h.llama_flexidepth_train_data_load(model.handle(), paths, files.size(), kind, template, status);
        if (data.equals(MemorySegment.NULL)) {
            throw new FlexiDepthException(FlexiDepthException.Reason.of(status.get(ValueLayout.JAVA_INT, 0)),
                    "cannot read training data: " + llama_h.llama_flexidepth_last_error().getString(0));
        }
        return data;
    }

    @Override
    public String toString() {
        return format == Format.TOKENS ? "TrainingData[" + tokens.length + " tokens]" : "TrainingData[" + format + " " + files + "]";
    }
}
