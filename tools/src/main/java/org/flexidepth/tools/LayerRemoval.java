package org.flexidepth.tools;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.gguf.GgufReader;
import org.flexidepth.gguf.GgufTensorInfo;
import org.flexidepth.gguf.GgufValue;
import org.flexidepth.gguf.GgufWriter;
import org.flexidepth.gguf.TensorData;
import org.flexidepth.llama.ModelInfo;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.IntStream;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Writes a copy of a base model with some blocks physically removed: their tensors dropped, the
 * blocks after them renumbered and the block count (and any per-layer metadata array) shortened.
 * Removing the last k blocks is early exit. This is the independent side of the claim that a forced
 * skip of the removal plug-in ({@link #writePlugin}) is exact layer removal.
 */
public final class LayerRemoval {
    private static final Pattern BLOCK = Pattern.compile("blk\\.(\\d+)\\.(.+)");

    private LayerRemoval() {
    }

    /**
     * Writes the layer-removal plug-in for a model: every layer routed, adapters zero, routers
     * pinned to g = 1, so that a forced skip (Session.forceRouting) is exact removal of the layer
     * and a layer that runs is the base layer unchanged.
     */
    public static void writePlugin(Path out, ModelInfo info) throws IOException {
        int d = info.embeddingSize();
        List<Integer> all = IntStream.range(0, info.layers()).boxed().toList();
        List<PluginFormat.Layer> layers = new ArrayList<>();
        for (int il = 0; il < info.layers(); il++) {
            TensorData zeroD = TensorData.of(new float[d]);
            layers.add(new PluginFormat.Layer(zeroD, TensorData.of(new float[] {1f}), zeroD, zeroD,
                    // sigmoid(1e4) is exactly 1 in f32: a layer that runs is the base layer unchanged
                    1e4f, zeroD, zeroD, zeroD));
        }
        PluginFormat.write(out, new PluginFormat.Header(info.architecture(), info.layers(), d, all, 1, 1, 0.5f),
                layers, GgmlType.F32);
    }

    /** Writes {@code in} without the blocks {@code removed}. */
    public static Path write(Path in, Path out, Collection<Integer> removed) throws IOException {
        Set<Integer> gone = new TreeSet<>(removed);
        try (GgufReader r = GgufReader.open(in)) {
            String arch = r.file().metadata().get("general.architecture").asString();
            String countKey = arch + ".block_count";
            int nLayer = r.file().metadata().get(countKey).asInt();
            for (int il : gone) {
                if (il < 0 || il >= nLayer) {
                    throw new IllegalArgumentException("layer " + il + " is not in [0, " + nLayer + ")");
                }
            }
            if (gone.size() == nLayer) {
                throw new IllegalArgumentException("removing every layer leaves no model");
            }
            int[] renumber = new int[nLayer];
            for (int il = 0, next = 0; il < nLayer; il++) {
                renumber[il] = gone.contains(il) ? -1 : next++;
            }
            GgufWriter w = new GgufWriter();
            r.file().metadata().forEach((k, v) -> {
                if (k.equals("general.alignment")) {
                    return;
                }
                if (k.equals(countKey)) {
                    w.putUInt32(k, nLayer - gone.size());
                } else if (k.startsWith(arch + ".") && v.isArray() && v.asList().size() == nLayer) {
                    // per-layer hyperparameters (head counts, sliding-window patterns) follow their layers
                    List<Object> kept = new ArrayList<>();
                    for (int il = 0; il < nLayer; il++) {
                        if (!gone.contains(il)) {
                            kept.add(v.asList().get(il));
                        }
                    }
                    w.put(k, GgufValue.array(v.elementType(), kept));
                } else {
                    w.put(k, v);
                }
            });
            for (GgufTensorInfo t : r.file().tensors()) {
                String name = t.name();
                Matcher m = BLOCK.matcher(name);
                if (m.matches()) {
                    int il = Integer.parseInt(m.group(1));
                    if (renumber[il] < 0) {
                        continue;
                    }
                    name = "blk." + renumber[il] + "." + m.group(2);
                }
                ByteBuffer bytes = r.readBytes(t);
                w.addRawTensor(name, t.type(), t.shape(), ch -> ch.write(bytes.duplicate()));
            }
            w.write(out);
        }
        return out;
    }
}
