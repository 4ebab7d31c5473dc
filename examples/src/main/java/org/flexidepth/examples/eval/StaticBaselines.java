package org.flexidepth.examples.eval;

import org.flexidepth.tools.LayerRemoval;
import org.flexidepth.llama.ModelInfo;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * The static baselines, computed with the FlexiDepth runtime itself: a plug-in that routes every
 * layer with zero adapters and routers pinned to g = 1 turns a forced skip into exact layer
 * removal, so ShortGPT (remove the layers of lowest block influence) and early exit (skip every
 * layer from some depth on; final norm and output head then read that depth's hidden state) are
 * forced-routing patterns on one plug-in.
 */
public final class StaticBaselines {
    private StaticBaselines() {
    }

    /** One static configuration: the layers it removes, and its name. */
    public record Config(String method, int layersKept, List<Integer> removed) {
        /** The forced decisions for {@code Session.forceRouting}: every layer, run unless removed. */
        public Map<Integer, Boolean> routing(int nLayer) {
            Map<Integer, Boolean> m = new LinkedHashMap<>();
            for (int il = 0; il < nLayer; il++) {
                m.put(il, !removed.contains(il));
            }
            return m;
        }
    }

    /** Writes the layer-removal plug-in for a model ({@link LayerRemoval#writePlugin}). */
    public static void writeRemovalPlugin(Path out, ModelInfo info) throws IOException {
        LayerRemoval.writePlugin(out, info);
    }

    /** ShortGPT: remove the {@code k} layers of lowest block influence, for k = 1..maxRemoved. */
    public static List<Config> shortGpt(double[] blockInfluence, int maxRemoved) {
        List<Integer> order = IntStream.range(0, blockInfluence.length).boxed()
                .sorted(Comparator.comparingDouble(l -> blockInfluence[l])).toList();
        List<Config> out = new ArrayList<>();
        for (int k = 1; k <= maxRemoved; k++) {
            List<Integer> removed = order.subList(0, k).stream().sorted().toList();
            out.add(new Config("shortgpt", blockInfluence.length - k, removed));
        }
        return out;
    }

    /** Early exit after {@code m} layers, for m = nLayer - 1 down to nLayer - maxRemoved. */
    public static List<Config> earlyExit(int nLayer, int maxRemoved) {
        List<Config> out = new ArrayList<>();
        for (int k = 1; k <= maxRemoved; k++) {
            int kept = nLayer - k;
            out.add(new Config("early_exit", kept, IntStream.range(kept, nLayer).boxed().toList()));
        }
        return out;
    }
}
