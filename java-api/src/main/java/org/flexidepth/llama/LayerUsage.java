package org.flexidepth.llama;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * How many layers one token went through under FlexiDepth, and for each routed layer whether it
 * ran the full layer and the router's gate value g. Immutable.
 */
public final class LayerUsage {
    private final int totalLayers;
    private final List<Integer> routedLayers;
    private final boolean[] ran;
    private final float[] gates;
    private final int used;

    LayerUsage(int totalLayers, List<Integer> routedLayers, boolean[] ran, float[] gates) {
        this.totalLayers = totalLayers;
        this.routedLayers = routedLayers;
        this.ran = ran;
        this.gates = gates;
        int skipped = 0;
        for (boolean r : ran) {
            skipped += r ? 0 : 1;
        }
        this.used = totalLayers - skipped;
    }

    /**
     * The routing of the last decode of a context with a plug-in attached, one usage per token,
     * read by {@code llama_get_flexidepth_routing} into the caller's reused buffers.
     *
     * Its buffers hold at least {@code n * routedLayers.size()} floats (gates) and bytes (run).
     */
    static List<LayerUsage> ofLastDecode(java.lang.foreign.MemorySegment ctx, java.lang.foreign.MemorySegment gates,
                                         java.lang.foreign.MemorySegment run, int capacity, int n, int totalLayers,
                                         List<Integer> routedLayers) {
        int got = org.flexidepth.llama.bindings.llama_h.llama_get_flexidepth_routing(ctx, gates, run,
                java.lang.foreign.MemorySegment.NULL, java.lang.foreign.MemorySegment.NULL, capacity);
        if (got != n) {
            throw new DecodeException(got, "expected the routing of " + n + " tokens");
        }
        int r = routedLayers.size();
        List<LayerUsage> out = new ArrayList<>(n);
        for (int t = 0; t < n; t++) {
            boolean[] ran = new boolean[r];
            float[] g = new float[r];
            for (int i = 0; i < r; i++) {
                g[i] = gates.getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, (long) t * r + i);
                ran[i] = run.get(java.lang.foreign.ValueLayout.JAVA_BYTE, (long) t * r + i) != 0;
            }
            out.add(new LayerUsage(totalLayers, routedLayers, ran, g));
        }
        return out;
    }

    /** {@return layers of the model} */
    public int totalLayers() {
        return totalLayers;
    }

    /** {@return layers this token ran in full: unrouted layers plus routed layers where it was not skipped} */
    public int layersUsed() {
        return used;
    }

    /** {@return the routed layers, ascending; indices below refer to this list} */
    public List<Integer> routedLayers() {
        return routedLayers;
    }

    /**
     * Whether the token ran routed layer number {@code i} of {@link #routedLayers()}.
     *
     * @param i index into {@link #routedLayers()}, not a model layer index
     * @return {@code true} if the token ran the full layer (its gate was above tau), {@code false} if
     *         it skipped it and went through the adapter
     * @throws ArrayIndexOutOfBoundsException if {@code i} is not a valid index
     */
    public boolean ran(int i) {
        return ran[i];
    }

    /**
     * The gate g of routed layer number {@code i}.
     *
     * @param i index into {@link #routedLayers()}, not a model layer index
     * @return the router's output in [0, 1]; the layer ran in full when it is above tau
     * @throws ArrayIndexOutOfBoundsException if {@code i} is not a valid index
     */
    public float gate(int i) {
        return gates[i];
    }

    /** {@return the routed layers this token skipped, ascending} */
    public List<Integer> skippedLayers() {
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < ran.length; i++) {
            if (!ran[i]) {
                out.add(routedLayers.get(i));
            }
        }
        return out;
    }

    @Override
    public String toString() {
        return "LayerUsage[" + used + "/" + totalLayers + " layers, skipped " + skippedLayers() + ", gates " + Arrays.toString(gates) + "]";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LayerUsage u && totalLayers == u.totalLayers && routedLayers.equals(u.routedLayers)
                && Arrays.equals(ran, u.ran) && Arrays.equals(gates, u.gates);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(ran) + Arrays.hashCode(gates);
    }
}
