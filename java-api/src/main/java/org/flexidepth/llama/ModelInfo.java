package org.flexidepth.llama;

import java.util.Map;
import java.util.Optional;

/**
 * What a loaded model is.
 *
 * @param architecture   {@code general.architecture}, e.g. "llama", "qwen2"
 * @param name           {@code general.name}, if the file has one
 * @param description    llama.cpp's one-line description (type, size, quantization)
 * @param layers         transformer blocks
 * @param embeddingSize  hidden size
 * @param contextLength  context length the model was trained with
 * @param vocabularySize tokens in the vocabulary
 * @param parameterCount parameters
 * @param sizeBytes      bytes of all weights
 * @param chatTemplate   the model's own chat template, if it has one
 * @param metadata       every GGUF metadata key with its value as text
 */
public record ModelInfo(String architecture, Optional<String> name, String description, int layers, int embeddingSize,
                        int contextLength, int vocabularySize, long parameterCount, long sizeBytes,
                        Optional<String> chatTemplate, Map<String, String> metadata) {
    /** Creates the description, copying {@code metadata} into an unmodifiable map. */
    public ModelInfo {
        metadata = Map.copyOf(metadata);
    }
}
