package org.flexidepth.gguf;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Optional;

/**
 * The header of a GGUF file: what {@link GgufReader} reads before the tensor data.
 *
 * @param version    the GGUF version (2 or 3; they share a layout)
 * @param metadata   the key/value pairs in file order
 * @param tensors    the tensor infos in file order
 * @param alignment  the data alignment ({@code general.alignment}, default 32)
 * @param dataOffset where the data section starts in the file; tensor offsets are relative to it
 */
public record GgufFile(int version, Map<String, GgufValue> metadata, List<GgufTensorInfo> tensors,
                       int alignment, long dataOffset) {
    /** The metadata key that sets the alignment. */
    public static final String ALIGNMENT_KEY = "general.alignment";
    /** {@code GGUF_DEFAULT_ALIGNMENT}. */
    public static final int DEFAULT_ALIGNMENT = 32;

    /** Creates a header, copying {@code metadata} and {@code tensors} into unmodifiable collections. */
    public GgufFile {
        metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
        tensors = List.copyOf(tensors);
    }

    /**
     * The value of a key, if present.
     *
     * @param key a metadata key such as {@code general.name}
     * @return the value, or empty if the file has no such key
     */
    public Optional<GgufValue> get(String key) {
        return Optional.ofNullable(metadata.get(key));
    }

    /**
     * The value of a key that must be present.
     *
     * @param key a metadata key such as {@code general.name}
     * @return the value
     * @throws NoSuchElementException if the file has no such key
     */
    public GgufValue require(String key) {
        GgufValue v = metadata.get(key);
        if (v == null) {
            throw new NoSuchElementException("no metadata key " + key);
        }
        return v;
    }

    /** {@return {@code general.architecture}, e.g. {@code llama}} */
    public Optional<String> architecture() {
        return get("general.architecture").map(GgufValue::asString);
    }

    /**
     * The tensor with the given name, if present.
     *
     * @param name the exact tensor name, such as {@code output_norm.weight}
     * @return the tensor's info, or empty if the file has no such tensor
     */
    public Optional<GgufTensorInfo> tensor(String name) {
        for (GgufTensorInfo t : tensors) {
            if (t.name().equals(name)) {
                return Optional.of(t);
            }
        }
        return Optional.empty();
    }
}
