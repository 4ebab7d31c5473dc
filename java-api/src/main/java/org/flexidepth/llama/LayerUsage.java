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
