package org.flexidepth.llama;

import java.nio.file.Path;

/**
 * How loading a FlexiDepth plug-in stores its adapters ({@link LlamaModel#loadFlexiDepth(Path, AdapterStorage)}).
 * A skipped layer reads its adapter instead of the FFN, so the adapter's bytes are what a skip
 * costs at decode.
 */
public enum AdapterStorage {
    /**
     * Each adapter projection in the base model's quantization class, where the file holds it as
     * F32, F16 or BF16 and the base weight it stands in for ({@code ffn_up} for the adapter's input
     * projection) is quantized: that weight's type at 6 bits or more (Q8_0, Q6_K), Q8_0 for lower
     * ones, where 4-bit adapters would change routing decisions. The default.
     */
    BASE_MODEL_TYPE,
    /** Every tensor in the type the file stores it in. */
    AS_STORED
}
