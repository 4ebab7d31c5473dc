package org.flexidepth.tools.convert;

import org.flexidepth.gguf.SafetensorsTensor;
import org.flexidepth.gguf.TensorData;

/**
 * HF's Llama keeps the two halves of each head's rotary pairs apart (rows {@code i} and
 * {@code i + headDim/2} rotate together, "rotate_half"), while llama.cpp's normal RoPE rotates
 * adjacent rows {@code 2i, 2i+1}. Reordering the rows of the Q and K projections within each head
 * turns one into the other; it is upstream's {@code LlamaModel.permute}:
 * {@code w.reshape(n_head, 2, headDim/2, cols).swapaxes(1, 2).reshape(w.shape)}.
 */
final class RopePermutation {
    private RopePermutation() {
    }

    /** The HF row that GGUF row {@code row} comes from. */
    static long sourceRow(long row, long headDim) {
        long head = row / headDim;
        long within = row % headDim;
        long pair = within / 2;
        long half = within % 2;
        return head * headDim + half * (headDim / 2) + pair;
    }

    /**
     * The tensor's elements with its rows (first PyTorch dimension) permuted, for a weight
     * {@code [nHeads * headDim, cols]} or a bias {@code [nHeads * headDim]}.
     */
    static TensorData permuted(SafetensorsTensor t, int nHeads) {
        long[] shape = t.shape();
        long rows = shape[0];
        if (rows % nHeads != 0 || (rows / nHeads) % 2 != 0) {
            throw new IllegalArgumentException(t.name() + ": " + rows + " rows do not split into " + nHeads + " heads of even size");
        }
        long headDim = rows / nHeads;
        long cols = t.elementCount() / Math.max(1, rows);
        if (cols > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(t.name() + ": rows of " + cols + " elements are too long");
        }
        return sink -> {
            float[] row = new float[(int) cols];
            for (long r = 0; r < rows; r++) {
                t.readFloats(sourceRow(r, headDim) * cols, row, 0, row.length);
                sink.accept(row);
            }
        };
    }
}
