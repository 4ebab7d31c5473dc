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
    void writeTo(WritableByteChannel out) throws IOException;
}
