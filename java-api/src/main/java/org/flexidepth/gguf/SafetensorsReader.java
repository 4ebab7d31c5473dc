package org.flexidepth.gguf;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Reads Hugging Face safetensors checkpoints, single-file or sharded with a
 * {@code model.safetensors.index.json}. Files are memory-mapped, so opening is cheap and tensors
 * are read (and converted to float) only when asked for.
 *
 * <p>Format: an 8-byte little-endian header length, a JSON header mapping each tensor name to its
 * {@code dtype}, {@code shape} and {@code data_offsets} (relative to the end of the header), an
 * optional {@code __metadata__} object of strings, then the data. Tied weights that the
 * safetensors library stored once and recorded as aliases in {@code __metadata__} appear under
 * each of their names.
 *
 * <pre>{@code
 * try (SafetensorsReader st = SafetensorsReader.open(hfDir)) {
 *     float[] w = st.tensor("model.norm.weight").readFloats();
 * }
 * }</pre>
 */
public final class SafetensorsReader implements AutoCloseable {
    /** The index of a sharded checkpoint. */
    public static final String INDEX_FILE = "model.safetensors.index.json";
    /** The file of a single-file checkpoint. */
    public static final String SINGLE_FILE = "model.safetensors";
    /** The reference implementation's limit; larger headers mean a corrupt or hostile file. */
    private static final long MAX_HEADER_BYTES = 100_000_000;

    private final Arena arena;
    private final Map<String, SafetensorsTensor> tensors;
    private final Map<String, String> metadata;
    private final List<Path> files;

    private SafetensorsReader(Arena arena, Map<String, SafetensorsTensor> tensors, Map<String, String> metadata, List<Path> files) {
        this.arena = arena;
        this.tensors = Collections.unmodifiableMap(tensors);
        this.metadata = Collections.unmodifiableMap(metadata);
        this.files = List.copyOf(files);
    }

    /**
     * Opens a checkpoint given as a directory (its index if present, else {@code model.safetensors},
     * else every {@code *.safetensors} in it), an index file, or one {@code .safetensors} file.
     *
     * @param path a checkpoint directory, a {@code .json} index, or a {@code .safetensors} file
     * @return a reader over the mapped files; close it when done
     * @throws IOException if a file cannot be read, a header is malformed, a directory holds no
     *         safetensors files, a tensor appears in two shards, or the index and the shards disagree
     */
    public static SafetensorsReader open(Path path) throws IOException {
        if (Files.isDirectory(path)) {
            if (Files.isRegularFile(path.resolve(INDEX_FILE))) {
                return openIndex(path.resolve(INDEX_FILE));
            }
            if (Files.isRegularFile(path.resolve(SINGLE_FILE))) {
                return openFiles(List.of(path.resolve(SINGLE_FILE)), Map.of());
            }
            List<Path> all;
            try (Stream<Path> s = Files.list(path)) {
                all = s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
            }
            if (all.isEmpty()) {
                throw new IOException("no safetensors files in " + path);
            }
            return openFiles(all, Map.of());
        }
        if (path.getFileName().toString().endsWith(".json")) {
            return openIndex(path);
        }
        return openFiles(List.of(path), Map.of());
    }

    private static SafetensorsReader openIndex(Path index) throws IOException {
        Object weightMap = Json.parseObject(index).get("weight_map");
        if (!(weightMap instanceof Map<?, ?> wm)) {
            throw new IOException(index + ": no weight_map object");
        }
        Map<String, String> shardOf = new LinkedHashMap<>();
        Set<Path> shards = new LinkedHashSet<>();
        for (Map.Entry<?, ?> e : wm.entrySet()) {
            if (!(e.getValue() instanceof String file)) {
                throw new IOException(index + ": weight_map entry " + e.getKey() + " is not a file name");
            }
            shardOf.put((String) e.getKey(), file);
            shards.add(index.resolveSibling(file));
        }
        return openFiles(new ArrayList<>(shards), shardOf);
    }

    private static SafetensorsReader openFiles(List<Path> paths, Map<String, String> expectedShard) throws IOException {
        Arena arena = Arena.ofShared();
        try {
            Map<String, SafetensorsTensor> tensors = new LinkedHashMap<>();
            Map<String, String> metadata = new LinkedHashMap<>();
            Map<String, Path> fileOf = new LinkedHashMap<>();
            for (Path p : paths) {
                for (SafetensorsTensor t : readFile(p, arena, metadata)) {
                    if (tensors.putIfAbsent(t.name(), t) != null) {
                        throw new IOException("tensor " + t.name() + " is in both " + fileOf.get(t.name()) + " and " + p);
                    }
                    fileOf.put(t.name(), p);
                }
            }
            addAliases(tensors, metadata);
            for (Map.Entry<String, String> e : expectedShard.entrySet()) {
                Path p = fileOf.get(e.getKey());
                if (p == null || !p.getFileName().toString().equals(Path.of(e.getValue()).getFileName().toString())) {
                    throw new IOException("the index puts tensor " + e.getKey() + " in " + e.getValue()
                            + (p == null ? ", but no shard has it" : ", but it is in " + p));
                }
            }
            return new SafetensorsReader(arena, tensors, metadata, paths);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /**
     * The safetensors library cannot store one buffer under two names, so when saving tied weights
     * it drops all but one and records {@code dropped -> kept} in {@code __metadata__}; restoring
     * the dropped names lets callers look tensors up by the names the model uses.
     */
    private static void addAliases(Map<String, SafetensorsTensor> tensors, Map<String, String> metadata) {
        for (Map.Entry<String, String> e : metadata.entrySet()) {
            SafetensorsTensor kept = tensors.get(e.getValue());
            if (kept != null && !tensors.containsKey(e.getKey())) {
                tensors.put(e.getKey(), kept.withName(e.getKey()));
            }
        }
    }

    private static List<SafetensorsTensor> readFile(Path path, Arena arena, Map<String, String> metadata) throws IOException {
        MemorySegment file;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            file = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
        }
        if (file.byteSize() < 8) {
            throw new IOException(path + ": too short for a safetensors file");
        }
        long headerLen = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (headerLen < 2 || headerLen > MAX_HEADER_BYTES || headerLen > file.byteSize() - 8) {
            throw new IOException(path + ": implausible safetensors header length " + headerLen);
        }
        String headerText = new String(file.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
        Object header;
        try {
            header = Json.parse(headerText.strip());
        } catch (IllegalArgumentException e) {
            throw new IOException(path + ": bad safetensors header: " + e.getMessage(), e);
        }
        if (!(header instanceof Map<?, ?> entries)) {
            throw new IOException(path + ": safetensors header is not a JSON object");
        }
        MemorySegment data = file.asSlice(8 + headerLen);
        List<SafetensorsTensor> out = new ArrayList<>();
        for (Map.Entry<?, ?> e : entries.entrySet()) {
            String name = (String) e.getKey();
            if (name.equals("__metadata__")) {
                if (e.getValue() instanceof Map<?, ?> m) {
                    m.forEach((k, v) -> metadata.putIfAbsent(String.valueOf(k), String.valueOf(v)));
                }
                continue;
            }
            out.add(tensor(path, name, e.getValue(), data));
        }
        return out;
    }

    private static SafetensorsTensor tensor(Path path, String name, Object entry, MemorySegment data) throws IOException {
        String where = path + ": tensor " + name;
        if (!(entry instanceof Map<?, ?> m)
                || !(m.get("dtype") instanceof String dtypeName)
                || !(m.get("shape") instanceof List<?> shapeList)
                || !(m.get("data_offsets") instanceof List<?> offsets) || offsets.size() != 2) {
            throw new IOException(where + ": needs dtype, shape and two data_offsets");
        }
        SafetensorsDtype dtype = SafetensorsDtype.fromName(dtypeName)
                .orElseThrow(() -> new IOException(where + ": unknown dtype " + dtypeName));
        long[] shape = new long[shapeList.size()];
        long count = 1;
        for (int i = 0; i < shape.length; i++) {
            if (!(shapeList.get(i) instanceof Long d) || d < 0) {
                throw new IOException(where + ": bad shape " + shapeList);
            }
            shape[i] = d;
            count = Math.multiplyExact(count, d);
        }
        if (!(offsets.get(0) instanceof Long begin) || !(offsets.get(1) instanceof Long end)
                || begin < 0 || end < begin || end > data.byteSize()) {
            throw new IOException(where + ": data_offsets " + offsets + " outside the " + data.byteSize() + " data bytes");
        }
        if (end - begin != Math.multiplyExact(count, (long) dtype.size())) {
            throw new IOException(where + ": " + (end - begin) + " bytes for " + count + " " + dtype + " elements");
        }
        return new SafetensorsTensor(name, dtype, shape, data.asSlice(begin, end - begin));
    }

    /**
     * All tensors by name: file by file (in the order the index first names the files), header
     * order within a file, then the aliases of tied weights.
     *
     * @return an unmodifiable map from tensor name to tensor
     */
    public Map<String, SafetensorsTensor> tensors() {
        return tensors;
    }

    /**
     * The tensor with the given name, if present.
     *
     * @param name the exact tensor name, such as {@code model.norm.weight}
     * @return the tensor, or empty if the checkpoint has none of that name
     */
    public Optional<SafetensorsTensor> find(String name) {
        return Optional.ofNullable(tensors.get(name));
    }

    /**
     * The tensor with the given name.
     *
     * @param name the exact tensor name, such as {@code model.norm.weight}
     * @return the tensor
     * @throws NoSuchElementException if absent
     */
    public SafetensorsTensor tensor(String name) {
        SafetensorsTensor t = tensors.get(name);
        if (t == null) {
            throw new NoSuchElementException("no tensor " + name + " in the checkpoint");
        }
        return t;
    }

    /** {@return the {@code __metadata__} strings, aliases included (the first shard's where shards disagree)} */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** {@return the files read} */
    public List<Path> files() {
        return files;
    }

    /** Unmaps the files; the tensors cannot be read afterwards. */
    @Override
    public void close() {
        arena.close();
    }
}
