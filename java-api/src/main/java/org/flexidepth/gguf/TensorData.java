package org.flexidepth.gguf;

import java.io.IOException;

/**
 * A tensor's elements as floats, produced on demand while a {@link GgufWriter} writes the file, so
 * that only a chunk of a large tensor need be in memory at a time.
 *
 * <p>The elements go in ggml order ({@code ne0} fastest, i.e. row-major for a PyTorch
 * {@code [rows, cols]} matrix) in any number of chunks; the writer converts them to the tensor's
 * type and checks that exactly the declared number arrived. {@link #writeTo} is called once per
 * write.
 */
@FunctionalInterface
public interface TensorData {

    /**
     * Passes all the tensor's elements to {@code sink}, in order.
     *
     * @param sink receives the elements, in one or more chunks
     * @throws IOException if producing the elements or writing them fails
     */
    void writeTo(Sink sink) throws IOException;

    /** Receives elements; the writer owns it, the array may be reused once {@code accept} returns. */
    @FunctionalInterface
    interface Sink {
        /**
         * Takes the next {@code length} elements.
         *
         * @param values holds the elements; read before this method returns
         * @param offset index in {@code values} of the first element
         * @param length number of elements, may be 0
         * @throws IOException if writing the converted elements fails
         */
        void accept(float[] values, int offset, int length) throws IOException;

        /**
         * Takes all of {@code values} as the next elements.
         *
         * @param values the elements
         * @throws IOException if writing the converted elements fails
         */
        default void accept(float[] values) throws IOException {
            accept(values, 0, values.length);
        }
    }

    /**
     * Data already in memory.
     *
     * @param values the elements in ggml order; not copied, so they must not change before the write
     * @return data that passes {@code values} in one chunk
     */
    static TensorData of(float[] values) {
        return sink -> sink.accept(values);
    }
}
