package org.flexidepth.llama;

import org.flexidepth.gguf.GgufFile;
import org.flexidepth.gguf.GgufReader;
import org.flexidepth.llama.bindings.llama_h;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * A LoRA adapter (llama.cpp's GGUF format) loaded onto a model, as upstream's
 * {@code llama_adapter_lora_init} loads it. Apply it to sessions with scales through
 * {@link Session#setLoras(java.util.Map)}, alone, with other adapters, and with a FlexiDepth
 * plug-in. Thread-safe; closing it detaches it from every session that uses it (emptying their
 * caches), then frees it. Closing the model closes its adapters.
 */
public final class LoraAdapter implements AutoCloseable {
    private final LlamaModel model;
    private final Path path;
    private final MemorySegment handle;
    private final float alpha;
    private final String fingerprint;
    private final Set<Session> users = new HashSet<>(); // guarded by this
    private final Object closing = new Object();        // held for the whole of close()
    private volatile boolean closed;

    private LoraAdapter(LlamaModel model, Path path, MemorySegment handle, float alpha, String fingerprint) {
        this.model = model;
        this.path = path;
        this.handle = handle;
        this.alpha = alpha;
        this.fingerprint = fingerprint;
    }

    /**
     * Loads an adapter file for {@code model}.
     *
     * @throws LoraAdapterException if the file is missing, not a LoRA adapter, or for another base model
     */
    static LoraAdapter load(LlamaModel model, Path path) {
        FilePaths.problem(path).ifPresent(problem -> {
            throw new LoraAdapterException(LoraAdapterException.Reason.IO, "LoRA adapter " + path + " " + problem);
        });
        GgufFile header;
        try {
            header = GgufReader.readHeader(path);
        } catch (IOException | RuntimeException e) {
            throw new LoraAdapterException(LoraAdapterException.Reason.FORMAT, "cannot read " + path + " as GGUF: " + e.getMessage());
        }
        String type = text(header, "general.type").orElse("model");
        String adapter = text(header, "adapter.type").orElse("");
        if (!type.equals("adapter") || !adapter.equals("lora")) {
            throw new LoraAdapterException(LoraAdapterException.Reason.FORMAT, path + " is not a LoRA adapter (general.type '"
                    + type + "'" + (adapter.isEmpty() ? "" : ", adapter.type '" + adapter + "'") + ")");
        }
        String arch = header.architecture().orElse("?");
        if (!arch.equals(model.info().architecture())) {
            throw new LoraAdapterException(LoraAdapterException.Reason.WRONG_BASE, "LoRA adapter " + path + " is for a '" + arch
                    + "' model, not for " + model.path().getFileName() + " ('" + model.info().architecture() + "')");
        }
        float alpha = header.get("adapter.lora.alpha").map(v -> ((Number) v.value()).floatValue()).orElse(0f);
        String fingerprint = Fingerprint.of(path);
        return model.read(() -> {
            try (Arena arena = Arena.ofConfined()) {
                NativeLog.clearNativeError();
                MemorySegment h = llama_h.llama_adapter_lora_init(model.handle(), arena.allocateFrom(path.toString()));
                if (h.equals(MemorySegment.NULL)) {
                    // the header is a LoRA for this architecture, so what upstream refuses is its tensors
                    throw new LoraAdapterException(LoraAdapterException.Reason.WRONG_BASE, "LoRA adapter " + path
                            + " does not fit " + model.path().getFileName() + NativeLog.nativeErrorSuffix());
                }
                LoraAdapter a = new LoraAdapter(model, path, h, alpha, fingerprint);
                model.loraLoaded(a);
                return a;
            }
        });
    }

    private static Optional<String> text(GgufFile header, String key) {
        return header.get(key).map(v -> v.value() instanceof String s ? s : "");
    }

    /** {@return the model the adapter was loaded onto} */
    public LlamaModel model() {
        return model;
    }

    /** {@return the file the adapter was loaded from} */
    public Path path() {
        return path;
    }

    /** {@return the adapter's alpha (adapter.lora.alpha; 0 when the file has none, meaning alpha = rank)} */
    public float alpha() {
        return alpha;
    }

    /** {@return whether the adapter has been closed, directly or by closing its model} */
    public boolean isClosed() {
        return closed;
    }

    MemorySegment handle() {
        if (closed) {
            throw new ResourceClosedException("the LoRA adapter " + path.getFileName() + " is closed");
        }
        return handle;
    }

    /** Identifies the file (see {@link SessionState}). */
    String fingerprint() {
        return fingerprint;
    }

    synchronized void addUser(Session session) {
        if (closed) {
            throw new ResourceClosedException("the LoRA adapter " + path.getFileName() + " is closed");
        }
        users.add(session);
    }

    synchronized void removeUser(Session session) {
        users.remove(session);
    }

    /**
     * Removes the adapter from every session that uses it, waiting for each one's decode in
     * progress, then frees it. Idempotent.
     */
    @Override
    public void close() {
        synchronized (closing) {
            List<Session> detach;
            synchronized (this) {
                if (closed) {
                    return;
                }
                closed = true;
                detach = List.copyOf(users);
                users.clear();
            }
            for (Session s : detach) {
                s.loraClosed(this);
            }
            model.loraClosed(this);
            model.read(() -> {
                llama_h.llama_adapter_lora_free(handle);
                return null;
            });
        }
    }

    @Override
    public String toString() {
        return "LoraAdapter[" + path.getFileName() + (closed ? ", closed" : "") + "]";
    }
}
