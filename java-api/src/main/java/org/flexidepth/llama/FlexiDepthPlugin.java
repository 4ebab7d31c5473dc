package org.flexidepth.llama;

import org.flexidepth.llama.bindings.llama_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.IntStream;

/**
 * A FlexiDepth plug-in (router and adapter per routed layer) loaded onto a model. Attach it to
 * sessions with {@link Session#attach(FlexiDepthPlugin, float)}. Closing it detaches it from
 * every session. Thread-safe.
 */
public final class FlexiDepthPlugin implements AutoCloseable {
    private final LlamaModel model;
    private final Path path;
    private final MemorySegment handle;
    private final List<Integer> routedLayers;
    private final int routerSize, adapterSize;
    private final float defaultThreshold;
    private final String architecture;
    private volatile boolean closed;

    private FlexiDepthPlugin(LlamaModel model, Path path, MemorySegment handle) {
        this.model = model;
        this.path = path;
        this.handle = handle;
        int n = llama_h.llama_flexidepth_n_routed(handle);
        this.routedLayers = IntStream.range(0, n).mapToObj(i -> llama_h.llama_flexidepth_routed_layer(handle, i)).toList();
        this.routerSize = llama_h.llama_flexidepth_router_size(handle);
        this.adapterSize = llama_h.llama_flexidepth_adapter_size(handle);
        this.defaultThreshold = llama_h.llama_flexidepth_default_threshold(handle);
        this.architecture = llama_h.llama_flexidepth_architecture(handle).getString(0);
    }

    /**
     * Loads a plug-in file for {@code model}.
     *
     * @throws FlexiDepthException if the file is missing, corrupt, or built for another model
     */
    static FlexiDepthPlugin load(LlamaModel model, Path path) {
        if (!Files.isRegularFile(path)) {
            throw new FlexiDepthException(FlexiDepthException.Reason.IO, "FlexiDepth plug-in not found: " + path);
        }
        return model.read(() -> {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment status = arena.allocate(ValueLayout.JAVA_INT);
                MemorySegment h = llama_h.llama_flexidepth_load(model.handle(), arena.allocateFrom(path.toString()), status);
                if (h.equals(MemorySegment.NULL)) {
                    throw new FlexiDepthException(FlexiDepthException.Reason.of(status.get(ValueLayout.JAVA_INT, 0)),
                            "cannot load FlexiDepth plug-in " + path + ": " + llama_h.llama_flexidepth_last_error().getString(0));
                }
                return new FlexiDepthPlugin(model, path, h);
            }
        });
    }

    public LlamaModel model() {
        return model;
    }

    public Path path() {
        return path;
    }

    /** Model layer indices with a router, ascending. */
    public List<Integer> routedLayers() {
        return routedLayers;
    }

    public int routerSize() {
        return routerSize;
    }

    public int adapterSize() {
        return adapterSize;
    }

    /** The threshold tau recorded in the file (0.5 for the released checkpoint). */
    public float defaultThreshold() {
        return defaultThreshold;
    }

    /** The base architecture the plug-in is for. */
    public String architecture() {
        return architecture;
    }

    public boolean isClosed() {
        return closed;
    }

    MemorySegment handle() {
        if (closed) {
            throw new ResourceClosedException("the FlexiDepth plug-in is closed");
        }
        return handle;
    }

    /** Frees the plug-in, detaching it from every session that uses it. Idempotent. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            model.read(() -> {
                llama_h.llama_flexidepth_free(handle);
                return null;
            });
        }
    }

    @Override
    public String toString() {
        return "FlexiDepthPlugin[" + path.getFileName() + ", " + architecture + ", routed layers " + routedLayers + "]";
    }
}
