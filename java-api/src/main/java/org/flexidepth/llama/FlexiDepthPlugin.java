package org.flexidepth.llama;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.llama.bindings.llama_flexidepth_load_params;
import org.flexidepth.llama.bindings.llama_flexidepth_params;
import org.flexidepth.llama.bindings.llama_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * A FlexiDepth plug-in (router and adapter per routed layer) loaded onto a model. Attach it to
 * sessions with {@link Session#attach(FlexiDepthPlugin, float)}. Thread-safe; closing it from any
 * thread is safe: it waits for the current decode of every session that uses it, detaches it
 * from them (which empties their caches and ends their generations, see {@link CachePolicy}),
 * then frees it. Closing the model closes its plug-ins.
 */
public final class FlexiDepthPlugin implements AutoCloseable {
    private final LlamaModel model;
    private final Path path;
    private final MemorySegment handle;
    private final List<Integer> routedLayers;
    private final int routerSize, adapterSize;
    private final float defaultThreshold;
    private final String architecture;
    private final SkipFamily skipFamily;
    private final Optional<GgmlType> adapterType;
    private final String fingerprint;
    private final Set<Session> users = new HashSet<>(); // guarded by this
    private final Set<BatchEngine> engines = new HashSet<>(); // guarded by this
    private final Object closing = new Object();        // held for the whole of close()
    private volatile boolean closed;

    private FlexiDepthPlugin(LlamaModel model, Path path, MemorySegment handle, String fingerprint) {
        this.model = model;
        this.path = path;
        this.handle = handle;
        this.fingerprint = fingerprint;
        int n = llama_h.llama_adapter_flexidepth_n_routed(handle);
        this.routedLayers = IntStream.range(0, n).mapToObj(i -> llama_h.llama_adapter_flexidepth_routed_layer(handle, i)).toList();
        this.routerSize = llama_h.llama_adapter_flexidepth_router_size(handle);
        this.adapterSize = llama_h.llama_adapter_flexidepth_adapter_size(handle);
        this.defaultThreshold = llama_h.llama_adapter_flexidepth_threshold(handle);
        this.architecture = llama_h.llama_adapter_flexidepth_arch(handle).getString(0);
        this.skipFamily = SkipFamily.ofNative(llama_h.llama_adapter_flexidepth_skip(handle));
        this.adapterType = GgmlType.fromId(llama_h.llama_adapter_flexidepth_adapter_type(handle, routedLayers.getFirst()));
    }

    /**
     * Loads a plug-in file for {@code model}.
     *
     * @throws FlexiDepthException if the file is missing, corrupt, or built for another model
     */
    static FlexiDepthPlugin load(LlamaModel model, Path path, AdapterStorage storage) {
        FilePaths.problem(path).ifPresent(problem -> {
            throw new FlexiDepthException(FlexiDepthException.Reason.IO, "FlexiDepth plug-in " + path + " " + problem
                    + (problem.equals("not found") ? "" : "; expected a plug-in file (.gguf)"));
        });
        String fingerprint = Fingerprint.of(path);
        return model.read(() -> {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment status = arena.allocate(ValueLayout.JAVA_INT);
                MemorySegment params = llama_h.llama_flexidepth_load_default_params(arena);
                llama_flexidepth_load_params.adapters_in_base_type(params, storage == AdapterStorage.BASE_MODEL_TYPE);
                MemorySegment h = llama_h.llama_adapter_flexidepth_load(model.handle(), arena.allocateFrom(path.toString()), params, status);
                if (h.equals(MemorySegment.NULL)) {
                    throw new FlexiDepthException(FlexiDepthException.Reason.of(status.get(ValueLayout.JAVA_INT, 0)),
                            "cannot load FlexiDepth plug-in " + path + ": " + llama_h.llama_flexidepth_last_error().getString(0));
                }
                FlexiDepthPlugin plugin = new FlexiDepthPlugin(model, path, h, fingerprint);
                model.pluginLoaded(plugin);
                return plugin;
            }
        });
    }

    /** {@return the model the plug-in was loaded onto} */
    public LlamaModel model() {
        return model;
    }

    /** {@return the file the plug-in was loaded from} */
    public Path path() {
        return path;
    }

    /** {@return model layer indices with a router, ascending} */
    public List<Integer> routedLayers() {
        return routedLayers;
    }

    /** {@return the width of each router's hidden layer} */
    public int routerSize() {
        return routerSize;
    }

    /** {@return the width of each adapter, which runs for the tokens that skip a layer; 0 for {@link SkipFamily#ATTENTION}} */
    public int adapterSize() {
        return adapterSize;
    }

    /** {@return the threshold tau recorded in the file (0.5 for the released checkpoint)} */
    public float defaultThreshold() {
        return defaultThreshold;
    }

    /** {@return the base architecture the plug-in is for} */
    public String architecture() {
        return architecture;
    }

    /** {@return what a token that skips a routed layer leaves out} */
    public SkipFamily skipFamily() {
        return skipFamily;
    }

    /**
     * {@return the type the adapters' input projections are kept in once loaded (see
     * {@link AdapterStorage}); empty for {@link SkipFamily#ATTENTION}, which has no adapter}
     */
    public Optional<GgmlType> adapterType() {
        return adapterType;
    }

    /** {@return whether the plug-in has been closed, directly or by closing its model} */
    public boolean isClosed() {
        return closed;
    }

    MemorySegment handle() {
        if (closed) {
            throw new ResourceClosedException("the FlexiDepth plug-in is closed");
        }
        return handle;
    }

    /** Identifies the file the plug-in was loaded from (see {@link SessionState}). */
    String fingerprint() {
        return fingerprint;
    }

    /** Called by a session that is about to attach this plug-in; refused once closing has begun. */
    synchronized void addUser(Session session) {
        if (closed) {
            throw new ResourceClosedException("the FlexiDepth plug-in is closed");
        }
        users.add(session);
    }

    synchronized void removeUser(Session session) {
        users.remove(session);
    }

    synchronized void engineOpened(BatchEngine engine) {
        if (closed) {
            throw new ResourceClosedException("the FlexiDepth plug-in is closed");
        }
        engines.add(engine);
    }

    synchronized void engineClosed(BatchEngine engine) {
        engines.remove(engine);
    }

    /**
     * Detaches the plug-in from every session that uses it, waiting for each one's decode in
     * progress, then frees it. Idempotent; a second caller returns once the first has finished.
     */
    @Override
    public void close() {
        synchronized (closing) {
            List<Session> detach;
            List<BatchEngine> using;
            synchronized (this) {
                if (closed) {
                    return;
                }
                closed = true; // no session can attach it from here on
                detach = List.copyOf(users);
                users.clear();
                using = List.copyOf(engines);
            }
            for (BatchEngine e : using) {
                e.close(); // its requests finish first: an engine's plug-in cannot be taken from under them
            }
            for (Session s : detach) {
                s.pluginClosed(this);
            }
            model.pluginClosed(this);
            model.read(() -> {
                llama_h.llama_adapter_flexidepth_free(handle);
                return null;
            });
        }
    }

    /**
     * Sets {@code plugin} on a native context ({@code llama_set_adapter_flexidepth}) with threshold
     * tau and the routers of the layers in {@code forced} overridden; a null plug-in computes the
     * base model again. Throws what the native call reports; the context then keeps what it had.
     */
    /** Refuses a threshold outside [0, 1] (NaN included), wherever one is given. */
    static void checkThreshold(float tau) {
        if (!(tau >= 0 && tau <= 1)) {
            throw new InvalidArgumentException("the FlexiDepth threshold must be in [0, 1], was " + tau);
        }
    }

    static void setOn(MemorySegment ctx, FlexiDepthPlugin plugin, float tau, Map<Integer, Boolean> forced) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment params = llama_h.llama_flexidepth_default_params(a);
            if (plugin != null) {
                llama_flexidepth_params.threshold(params, tau);
                if (!forced.isEmpty()) {
                    List<Integer> routed = plugin.routedLayers();
                    MemorySegment d = a.allocate(ValueLayout.JAVA_BYTE, routed.size());
                    for (int r = 0; r < routed.size(); r++) {
                        Boolean run = forced.get(routed.get(r));
                        d.set(ValueLayout.JAVA_BYTE, r, (byte) (run == null ? -1 : run ? 1 : 0));
                    }
                    llama_flexidepth_params.forced(params, d);
                    llama_flexidepth_params.n_forced(params, routed.size());
                }
            }
            FlexiDepthException.throwIfFailed(llama_h.llama_set_adapter_flexidepth(ctx, plugin == null ? MemorySegment.NULL : plugin.handle, params));
        }
    }

    @Override
    public String toString() {
        return "FlexiDepthPlugin[" + path.getFileName() + ", " + architecture + ", routed layers " + routedLayers + "]";
    }
}
