package org.flexidepth.gguf;

import java.io.IOException;
import java.nio.channels.WritableByteChannel;

/**
 * A tensor's data already encoded in its ggml type, for types that {@link GgufWriter} cannot encode
 * itself (k-quants, ...) or for copying tensors between files. It must write exactly
 * {@link GgmlType#byteSize} bytes; the writer checks.
 */
@FunctionalInterface
public interface RawTensorData {
    /**
     * Writes the tensor's encoded bytes; called once per {@link GgufWriter#write}.
     *
     * @param out where to write; do not close it, and write exactly the tensor's byte size
     * @throws IOException if reading the source or writing to {@code out} fails
     */
    void writeTo(WritableByteChannel out) throws IOException;
}
