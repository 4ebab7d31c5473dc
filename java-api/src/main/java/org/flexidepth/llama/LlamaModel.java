package org.flexidepth.llama;

import org.flexidepth.gguf.GgufFile;
import org.flexidepth.gguf.GgufReader;
import org.flexidepth.llama.bindings.llama_chat_message;
import org.flexidepth.llama.bindings.llama_h;
import org.flexidepth.llama.bindings.llama_model_params;
import org.flexidepth.llama.bindings.llama_progress_callback;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A GGUF model loaded into memory. Thread-safe: any number of threads may tokenize and open
 * sessions at once. Closing it, from any thread, closes its sessions and plug-ins first.
 *
 * <pre>{@code
 * try (LlamaModel model = LlamaModel.load(Path.of("model.gguf"));
 *      Session session = model.newSession()) {
 *     System.out.println(session.complete("Once upon a time", GenerationOptions.DEFAULT).text());
 * }
 * }</pre>
 */
public final class LlamaModel implements AutoCloseable {
    private final Path path;
    private final MemorySegment model;
    private final MemorySegment vocab;
    private final ModelInfo info;
    private final Set<Session> sessions = ConcurrentHashMap.newKeySet();
    private final Set<FlexiDepthPlugin> plugins = ConcurrentHashMap.newKeySet();
    private final Set<LoraAdapter> loras = ConcurrentHashMap.newKeySet();
    private final Set<BatchEngine> engines = ConcurrentHashMap.newKeySet();
    private final String fingerprint;
    // the templates conversations render with, by Jinja source ("" for the model's own); freed with the model
    private final Map<String, ChatTemplate> sharedTemplates = new ConcurrentHashMap<>();
    // Readers are calls that use the native model; close() takes the write lock so none is in flight.
    private final ReentrantReadWriteLock lifecycle = new ReentrantReadWriteLock();
    private volatile boolean closed;

    private LlamaModel(Path path, MemorySegment model, String fingerprint) {
        this.path = path;
        this.model = model;
        this.fingerprint = fingerprint;
        this.vocab = llama_h.llama_model_get_vocab(model);
        this.info = readInfo();
    }

    /**
     * Loads a model with default options (mmap, CPU only).
     *
     * @param path the GGUF model file
     * @return the loaded model; close it to free its memory
     * @throws ModelLoadException if the file is missing, not GGUF, corrupt or of an unsupported architecture
     * @throws NativeLibraryException if the native library cannot be loaded
     */
    public static LlamaModel load(Path path) {
        return load(path, ModelOptions.DEFAULT);
    }

    /**
     * Loads a model.
     *
     * @param path    the GGUF model file; a LoRA adapter or FlexiDepth plug-in is refused with a
     *                message saying so
     * @param options how to load it: GPU offload, mmap, mlock, vocabulary only
     * @return the loaded model; close it to free its memory
     * @throws NativeLibraryException if the native library cannot be loaded
     * @throws ModelLoadException if the file is missing, not GGUF, corrupt or of an unsupported architecture
     * @throws ModelLoadCancelledException if the progress listener cancelled the load or the thread was interrupted
     */
    public static LlamaModel load(Path path, ModelOptions options) {
        checkReadableGguf(path);
        String fingerprint;
        try {
            fingerprint = Fingerprint.of(path);
        } catch (LlamaException e) {
            if (e.getCause() instanceof java.nio.channels.ClosedByInterruptException) {
                throw new ModelLoadCancelledException("loading " + path + " was cancelled (the thread was interrupted)");
            }
            throw e;
        }
        NativeLibrary.load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = llama_h.llama_model_default_params(arena);
            llama_model_params.n_gpu_layers(params, options.gpuLayers() < 0 ? Integer.MAX_VALUE : options.gpuLayers());
            llama_model_params.use_extra_bufts(params, options.repackWeights());
            int mode = options.mmap()
                    ? (options.mlock() ? llama_h.LLAMA_LOAD_MODE_MMAP_MLOCK() : llama_h.LLAMA_LOAD_MODE_MMAP())
                    : (options.mlock() ? llama_h.LLAMA_LOAD_MODE_MLOCK() : llama_h.LLAMA_LOAD_MODE_NONE());
            llama_model_params.load_mode(params, mode);
            llama_model_params.vocab_only(params, options.vocabOnly());
            if (!options.rpcServers().isEmpty()) {
                llama_model_params.devices(params, rpcDevices(options.rpcServers(), arena));
            }
            // always ours: the thread's interrupt cancels, and upstream's default prints dots to the log
            LoadProgress progress = new LoadProgress(options.progress());
            llama_model_params.progress_callback(params, llama_progress_callback.allocate(progress::report, arena));
            NativeLog.clearNativeError();
            MemorySegment m = llama_h.llama_model_load_from_file(arena.allocateFrom(path.toString()), params);
            progress.rethrow();
            if (m.equals(MemorySegment.NULL) && progress.cancelled) {
                throw new ModelLoadCancelledException("loading " + path + " was cancelled"
                        + (Thread.currentThread().isInterrupted() ? " (the thread was interrupted)" : ""));
            }
            if (m.equals(MemorySegment.NULL)) {
                String suffix = NativeLog.nativeErrorSuffix();
                throw new ModelLoadException(adapterInsteadOfModel(path).orElse("cannot load model " + path + suffix));
            }
            LlamaModel loaded = new LlamaModel(path, m, fingerprint);
            loaded.logLoaded();
            return loaded;
        }
    }

    private void logLoaded() {
        org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(LlamaModel.class);
        if (!log.isInfoEnabled()) {
            return;
        }
        // the layers' devices, counted in order of first use: "CPU (libggml-cpu-zen4.so)" or "CUDA0 x16, CPU x1"
        Map<String, Integer> devices = new java.util.LinkedHashMap<>();
        layerDevices().forEach(d -> devices.merge(d, 1, Integer::sum));
        String where = devices.size() == 1 && devices.containsKey("CPU") || devices.isEmpty()
                ? "CPU (" + NativeLibrary.cpuBackend() + ")"
                : devices.entrySet().stream().map(e -> e.getKey() + " x" + e.getValue()).collect(java.util.stream.Collectors.joining(", "))
                        + ", CPU backend " + NativeLibrary.cpuBackend();
        log.info("loaded {}: {} ({}), {} layers, {} parameters, {} MiB, trained context {}, on {}", path, info.architecture(),
                info.description(), info.layers(), info.parameterCount(), info.sizeBytes() >> 20, info.contextLength(), where);
    }

    /**
     * The devices of the RPC servers, NULL-terminated for {@code llama_model_params.devices}. Each
     * server is connected to first, since upstream's client ends the process when it cannot connect.
     */
    private static MemorySegment rpcDevices(List<String> endpoints, Arena arena) {
        final int capacity = 16; // GGML_RPC_MAX_SERVERS devices per server at most
        List<MemorySegment> devices = new ArrayList<>();
        MemorySegment found = arena.allocate(ValueLayout.ADDRESS, capacity);
        MemorySegment count = arena.allocate(ValueLayout.JAVA_LONG);
        MemorySegment message = arena.allocate(512);
        for (String endpoint : endpoints) {
            int status = llama_h.llama_fork_rpc_add_server(arena.allocateFrom(endpoint), found, capacity, count, message, message.byteSize());
            if (status != llama_h.LLAMA_FORK_RPC_OK()) {
                throw new ModelLoadException(message.getString(0));
            }
            for (long i = 0; i < Math.min(capacity, count.get(ValueLayout.JAVA_LONG, 0)); i++) {
                devices.add(found.getAtIndex(ValueLayout.ADDRESS, i));
            }
        }
        MemorySegment list = arena.allocate(ValueLayout.ADDRESS, devices.size() + 1L);
        for (int i = 0; i < devices.size(); i++) {
            list.setAtIndex(ValueLayout.ADDRESS, i, devices.get(i));
        }
        list.setAtIndex(ValueLayout.ADDRESS, devices.size(), MemorySegment.NULL);
        return list;
    }

    /** The progress callback: never throws into native code, which would end the JVM. */
    private static final class LoadProgress {
        private final Optional<LoadProgressListener> listener;
        private Throwable thrown;
        boolean cancelled;

        LoadProgress(Optional<LoadProgressListener> listener) {
            this.listener = listener;
        }

        boolean report(float fraction, MemorySegment userData) {
            try {
                boolean go = !Thread.currentThread().isInterrupted() && listener.map(l -> l.onProgress(fraction)).orElse(true);
                cancelled |= !go;
                return go;
            } catch (Throwable t) {
                thrown = t;
                cancelled = true;
                return false;
            }
        }

        /** Throws what the listener threw, as it threw it. */
        void rethrow() {
            if (thrown instanceof RuntimeException e) {
                throw e;
            }
            if (thrown instanceof Error e) {
                throw e;
            }
        }
    }

    private static void checkReadableGguf(Path path) {
        FilePaths.problem(path).ifPresent(problem -> {
            throw new ModelLoadException(problem.equals("not found") ? "model file not found: " + path
                    : "model path " + path + " " + problem + "; expected a GGUF model file");
        });
        try (InputStream in = Files.newInputStream(path)) {
            byte[] magic = in.readNBytes(4);
            if (!Arrays.equals(magic, "GGUF".getBytes(StandardCharsets.US_ASCII))) {
                throw new ModelLoadException("not a GGUF file (bad magic): " + path);
            }
        } catch (IOException e) {
            throw new ModelLoadException("cannot read model file " + path + ": " + e.getMessage(), e);
        }
    }

    /** Says so when a file that failed to load as a model is an adapter (LoRA or FlexiDepth plug-in). */
    private static Optional<String> adapterInsteadOfModel(Path path) {
        GgufFile header;
        try {
            header = GgufReader.readHeader(path);
        } catch (IOException | RuntimeException e) {
            return Optional.empty(); // not readable as GGUF at all: llama.cpp's message says more
        }
        String type = header.get("general.type").map(v -> v.value() instanceof String str ? str : "").orElse("");
        if (!type.equals("adapter")) {
            return Optional.empty();
        }
        String adapter = header.get("adapter.type").map(v -> v.value() instanceof String str ? str : "").orElse("");
        String base = header.architecture().orElse("?");
        return Optional.of(switch (adapter) {
            case "flexidepth" -> path + " is a FlexiDepth plug-in for a '" + base + "' model, not a model: load its base model,"
                    + " then the plug-in with LlamaModel.loadFlexiDepth(path)";
            case "lora" -> path + " is a LoRA adapter for a '" + base + "' model, not a model: load its base model and"
                    + " apply the adapter to it";
            default -> path + " is an adapter (adapter.type '" + adapter + "'), not a model: load its base model instead";
        });
    }

    private ModelInfo readInfo() {
        Map<String, String> meta = new LinkedHashMap<>();
        int n = llama_h.llama_model_meta_count(model);
        try (Arena arena = Arena.ofConfined()) {
            for (int index = 0; index < n; index++) {
                final int i = index;
                String key = nativeString(size -> llama_h.llama_model_meta_key_by_index(model, i, size.buffer(), size.length()), arena);
                String value = nativeString(size -> llama_h.llama_model_meta_val_str_by_index(model, i, size.buffer(), size.length()), arena);
                meta.put(key, value);
            }
            String desc = nativeString(size -> llama_h.llama_model_desc(model, size.buffer(), size.length()), arena);
            MemorySegment tmpl = llama_h.llama_model_chat_template(model, MemorySegment.NULL);
            Optional<String> template = tmpl.equals(MemorySegment.NULL) ? Optional.empty() : Optional.of(tmpl.getString(0));
            return new ModelInfo(meta.getOrDefault("general.architecture", "unknown"),
                    Optional.ofNullable(meta.get("general.name")), desc,
                    llama_h.llama_model_n_layer(model), llama_h.llama_model_n_embd(model),
                    llama_h.llama_model_n_ctx_train(model), llama_h.llama_vocab_n_tokens(vocab),
                    llama_h.llama_model_n_params(model), llama_h.llama_model_size(model), template, meta);
        }
    }

    private record Buffer(MemorySegment buffer, long length) {
    }

    private interface SizedWrite {
        int write(Buffer buffer);
    }

    /** Calls a snprintf-style native function, growing the buffer until the string fits. */
    private static String nativeString(SizedWrite fn, Arena arena) {
        long size = 256;
        while (true) {
            MemorySegment buf = arena.allocate(size);
            int n = fn.write(new Buffer(buf, size));
            if (n < 0) {
                return "";
            }
            if (n < size) {
                return buf.getString(0);
            }
            size = n + 1L;
        }
    }

    /** {@return the file the model was loaded from, as given to {@link #load(Path, ModelOptions)}} */
    public Path path() {
        return path;
    }

    /** {@return metadata of the model} */
    public ModelInfo info() {
        return info;
    }

    /**
     * {@return the device that holds each layer, in layer order, then the output layer's: "CPU", or
     * a GPU's or RPC server's device name such as "CUDA0" or "RPC0"; empty for a vocabulary-only model}
     *
     * @throws ResourceClosedException if this model is closed
     */
    public List<String> layerDevices() {
        return read(() -> {
            List<String> names = new ArrayList<>();
            for (int il = 0; il <= info.layers(); il++) {
                MemorySegment name = llama_h.llama_fork_model_layer_device(model, il < info.layers() ? il : -1);
                if (name.equals(MemorySegment.NULL)) {
                    return List.<String>of();
                }
                names.add(name.reinterpret(Long.MAX_VALUE).getString(0));
            }
            return List.copyOf(names);
        });
    }

    /**
     * Loads a LoRA adapter (llama.cpp's GGUF format) onto this model; apply it to sessions with
     * {@link Session#setLoras(java.util.Map)}.
     *
     * @param adapter the adapter file
     * @return the adapter; close it (or the model) to free it
     * @throws LoraAdapterException if the file is missing, not a LoRA adapter, or made for another base model
     * @throws ResourceClosedException if this model is closed
     */
    public LoraAdapter loadLora(Path adapter) {
        if (adapter == null) {
            throw new InvalidArgumentException("the adapter path must not be null");
        }
        return LoraAdapter.load(this, adapter);
    }

    /**
     * Loads a FlexiDepth plug-in made for this model; attach it to sessions with
     * {@link Session#attach(FlexiDepthPlugin, float)}.
     *
     * @param plugin the plug-in file (GGUF with {@code adapter.type = flexidepth})
     * @return the loaded plug-in; closing this model closes it too
     * @throws ResourceClosedException if this model is closed
     * @throws FlexiDepthException if the file is missing, corrupt or made for another model
     */
    public FlexiDepthPlugin loadFlexiDepth(Path plugin) {
        return loadFlexiDepth(plugin, AdapterStorage.BASE_MODEL_TYPE);
    }

    /**
     * Loads a FlexiDepth plug-in made for this model, its adapters stored as {@code storage} says.
     *
     * @param plugin  the plug-in file (GGUF with {@code adapter.type = flexidepth})
     * @param storage the type the adapters are kept in ({@link AdapterStorage#BASE_MODEL_TYPE} by default)
     * @return the loaded plug-in; closing this model closes it too
     * @throws InvalidArgumentException if {@code storage} is null
     * @throws ResourceClosedException if this model is closed
     * @throws FlexiDepthException if the file is missing, corrupt or made for another model
     */
    public FlexiDepthPlugin loadFlexiDepth(Path plugin, AdapterStorage storage) {
        if (storage == null) {
            throw new InvalidArgumentException("the adapter storage must not be null");
        }
        return FlexiDepthPlugin.load(this, plugin, storage);
    }

    /**
     * ShortGPT's block influence of every layer on calibration tokens: 1 minus the mean cosine
     * similarity between a layer's input and output hidden states, read in windows of
     * {@code windowLength} tokens. Low values mark layers that change little, the first candidates
     * for static layer removal.
     *
     * @param calibrationTokens token ids of this model; only whole windows are read, the rest is ignored
     * @param windowLength      tokens per window (the context of each evaluation), at least 2 and at
     *                          most {@code calibrationTokens.length}
     * @param threads           CPU threads to evaluate with; 0 or less for all hardware threads
     * @return one value per layer, indexed by layer, {@link ModelInfo#layers()} in all; 0 for a layer
     *         that leaves its input unchanged, larger for layers that change it more
     * @throws InvalidArgumentException if a token is outside the vocabulary or there is no whole window
     * @throws FlexiDepthException if the native evaluation fails
     */
    public double[] blockInfluence(int[] calibrationTokens, int windowLength, int threads) {
        checkTokens(calibrationTokens);
        if (windowLength < 2 || calibrationTokens.length < windowLength) {
            throw new InvalidArgumentException("block influence needs at least one window of >= 2 tokens; got "
                    + calibrationTokens.length + " tokens for windows of " + windowLength);
        }
        NativeLibrary.loadTraining();
        return read(() -> {
            try (Arena arena = Arena.ofConfined()) {
                int nLayer = info.layers();
                MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, nLayer);
                int rc = llama_h.llama_flexidepth_block_influence(model, arena.allocateFrom(ValueLayout.JAVA_INT, calibrationTokens),
                        calibrationTokens.length, windowLength, threads, out, nLayer);
                FlexiDepthException.throwIfFailed(rc);
                double[] bi = new double[nLayer];
                for (int l = 0; l < nLayer; l++) {
                    bi[l] = out.getAtIndex(ValueLayout.JAVA_FLOAT, l);
                }
                return bi;
            }
        });
    }

    /** {@return opens a session with default options} */
    public Session newSession() {
        return newSession(SessionOptions.DEFAULT);
    }

    /**
     * Opens a session (a llama.cpp context): its own KV cache, confined to one thread at a time.
     *
     * @param options the context size, batch size and thread counts
     * @return a new session; close it to free its context (closing this model closes it too)
     * @throws ResourceClosedException if this model is closed
     * @throws LlamaException if llama.cpp cannot create the context (too large for memory, say)
     */
    public Session newSession(SessionOptions options) {
        return read(() -> {
            Session s = new Session(this, options);
            sessions.add(s);
            return s;
        });
    }

    void sessionClosed(Session s) {
        sessions.remove(s);
    }

    /**
     * Opens a batch engine: many requests decoded together on one context (continuous batching).
     *
     * @param options slots, context per slot, batch size, queue capacity, threads, plug-in
     * @return the engine; close it to finish its requests and free it
     * @throws InvalidArgumentException if the plug-in is another model's
     * @throws LlamaException if llama.cpp cannot create the context (memory)
     * @throws ResourceClosedException if this model is closed
     */
    public BatchEngine newBatchEngine(BatchEngineOptions options) {
        if (options == null) {
            throw new InvalidArgumentException("the engine options must not be null");
        }
        return read(() -> {
            BatchEngine e = new BatchEngine(this, options);
            engines.add(e);
            options.flexiDepth().ifPresent(f -> f.plugin().engineOpened(e));
            return e;
        });
    }

    void engineClosed(BatchEngine e) {
        engines.remove(e);
        e.options().flexiDepth().ifPresent(f -> f.plugin().engineClosed(e));
    }

    void pluginLoaded(FlexiDepthPlugin p) {
        plugins.add(p);
    }

    void pluginClosed(FlexiDepthPlugin p) {
        plugins.remove(p);
    }

    void loraLoaded(LoraAdapter a) {
        loras.add(a);
    }

    void loraClosed(LoraAdapter a) {
        loras.remove(a);
    }

    /** Identifies the file the model was loaded from (see {@link SessionState}). */
    String fingerprint() {
        return fingerprint;
    }

    /**
     * Tokens of {@code text}, with BOS if the model wants one, as plain text: special-token text
     * such as {@code <|im_start|>} in it stays text (as in what users type); use
     * {@link #tokenize(String, boolean, boolean)} to parse it.
     *
     * @param text the text; may be empty
     * @return the token ids
     * @throws InvalidArgumentException if {@code text} is null or holds an unpaired surrogate
     */
    public int[] tokenize(String text) {
        return tokenize(text, true, false);
    }

    /**
     * Tokens of {@code text}.
     *
     * @param text         the text; may be empty
     * @param addSpecial   add BOS/EOS as the model's metadata asks
     * @param parseSpecial recognise special-token text such as {@code <|im_start|>}
     * @return the token ids
     * @throws InvalidArgumentException if {@code text} is null, holds an unpaired surrogate, or cannot be
     *         tokenized with this vocabulary
     */
    public int[] tokenize(String text, boolean addSpecial, boolean parseSpecial) {
        if (text == null) {
            throw new InvalidArgumentException("the text to tokenize must not be null");
        }
        TextChecks.requireWellFormed(text, "the text");
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        return read(() -> {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment src = arena.allocate(utf8.length + 1L);
                MemorySegment.copy(utf8, 0, src, ValueLayout.JAVA_BYTE, 0, utf8.length);
                int capacity = utf8.length + 2;
                while (true) {
                    MemorySegment out = arena.allocate(ValueLayout.JAVA_INT, capacity);
                    int n = llama_h.llama_tokenize(vocab, src, utf8.length, out, capacity, addSpecial, parseSpecial);
                    if (n == Integer.MIN_VALUE) {
                        throw new InvalidArgumentException("the text cannot be tokenized with this vocabulary" + NativeLog.nativeErrorSuffix());
                    }
                    if (n >= 0) {
                        return out.asSlice(0, n * 4L).toArray(ValueLayout.JAVA_INT);
                    }
                    capacity = -n;
                }
            }
        });
    }

    /**
     * Text of a token sequence, as llama.cpp renders it (special tokens omitted).
     *
     * @param tokens token ids of this model; may be empty
     * @return the text; bytes that are not valid UTF-8 (a sequence cut inside a character) become U+FFFD
     * @throws InvalidArgumentException if a token is outside the vocabulary
     */
    public String detokenize(int[] tokens) {
        return read(() -> {
            checkTokens(tokens);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment in = arena.allocateFrom(ValueLayout.JAVA_INT, tokens);
                int capacity = tokens.length * 8 + 16;
                while (true) {
                    MemorySegment out = arena.allocate(capacity);
                    int n = llama_h.llama_detokenize(vocab, in, tokens.length, out, capacity, false, false);
                    if (n >= 0) {
                        return new String(out.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
                    }
                    capacity = -n;
                }
            }
        });
    }

    /**
     * The raw bytes of one token's text (may be part of a multi-byte character).
     *
     * @param token a token id of this model
     * @return the token's text as UTF-8 bytes; empty for control tokens such as EOS
     * @throws InvalidArgumentException if the token is outside the vocabulary
     */
    public byte[] tokenBytes(int token) {
        return read(() -> {
            checkTokens(new int[] {token});
            try (Arena arena = Arena.ofConfined()) {
                int capacity = 64;
                while (true) {
                    MemorySegment out = arena.allocate(capacity);
                    int n = llama_h.llama_token_to_piece(vocab, token, out, capacity, 0, false);
                    if (n >= 0) {
                        return out.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
                    }
                    capacity = -n;
                }
            }
        });
    }

    /**
     * The text of each token of a sequence, for showing tokens one by one: a character spread over
     * several tokens (byte tokens) belongs to the token that completes it, so no piece is broken.
     *
     * @param tokens token ids of this model
     * @return one string per token, in order; empty for a token that only starts a character; the last
     *         also holds any bytes left incomplete, malformed ones replaced by U+FFFD
     * @throws InvalidArgumentException if a token is outside the vocabulary
     */
    public List<String> tokenPieces(int[] tokens) {
        Utf8Accumulator utf8 = new Utf8Accumulator();
        List<String> pieces = new java.util.ArrayList<>(tokens.length);
        for (int i = 0; i < tokens.length; i++) {
            String piece = utf8.append(tokenBytes(tokens[i]));
            pieces.add(i == tokens.length - 1 ? piece + utf8.flush() : piece);
        }
        return pieces;
    }

    /**
     * Whether a token ends generation (EOS, EOT and the like).
     *
     * @param token a token id
     * @return {@code true} if generating the token ends a generation
     */
    public boolean isEndOfGeneration(int token) {
        return read(() -> llama_h.llama_vocab_is_eog(vocab, token));
    }

    /** {@return the beginning-of-sequence token, if the vocabulary has one} */
    public Optional<Integer> bosToken() {
        int t = read(() -> llama_h.llama_vocab_bos(vocab));
        return t < 0 ? Optional.empty() : Optional.of(t);
    }

    void checkTokens(int[] tokens) {
        int n = info.vocabularySize();
        for (int t : tokens) {
            if (t < 0 || t >= n) {
                throw new InvalidArgumentException("token id " + t + " is outside the vocabulary [0, " + n + ")");
            }
        }
    }

    /**
     * Renders messages with the model's own chat template (llama.cpp's built-in templates), or
     * with {@code templateName} (e.g. "chatml", "llama3") when given.
     *
     * @param messages           the conversation, in order
     * @param addAssistantPrefix end with the text that opens the assistant's reply
     * @param templateName       a built-in template's name, or empty for the model's own template
     * @return the prompt text; tokenize it with special tokens parsed
     * @throws InvalidArgumentException if the model has no template and none is named, or the template is unknown
     */
    public String applyChatTemplate(List<ChatMessage> messages, boolean addAssistantPrefix, Optional<String> templateName) {
        String tmpl = templateName.or(info::chatTemplate).orElseThrow(() -> new InvalidArgumentException(
                "model " + path.getFileName() + " has no chat template; name one (e.g. \"chatml\")"));
        return read(() -> {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment msgs = llama_chat_message.allocateArray(messages.size(), arena);
                int chars = 0;
                for (int i = 0; i < messages.size(); i++) {
                    MemorySegment m = llama_chat_message.asSlice(msgs, i);
                    llama_chat_message.role(m, arena.allocateFrom(messages.get(i).role()));
                    llama_chat_message.content(m, arena.allocateFrom(messages.get(i).content()));
                    chars += messages.get(i).content().length() + messages.get(i).role().length();
                }
                MemorySegment t = arena.allocateFrom(tmpl);
                int capacity = 2 * chars + 256;
                while (true) {
                    MemorySegment buf = arena.allocate(capacity);
                    int n = llama_h.llama_chat_apply_template(t, msgs, messages.size(), addAssistantPrefix, buf, capacity);
                    if (n < 0) {
                        throw new InvalidArgumentException("chat template not supported by llama.cpp: "
                                + (tmpl.length() > 60 ? tmpl.substring(0, 60) + "..." : tmpl));
                    }
                    if (n <= capacity) {
                        return new String(buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
                    }
                    capacity = n;
                }
            }
        });
    }

    /**
     * The model's chat template as llama-server runs it (its Jinja template through upstream's
     * template engine; llama.cpp's built-in template when the model has none).
     *
     * @return the template; close it when done
     * @throws ResourceClosedException if this model is closed
     * @throws InvalidArgumentException if upstream cannot build a template for this model
     */
    public ChatTemplate chatTemplate() {
        return read(() -> ChatTemplate.create(this, null));
    }

    /**
     * A chat template given instead of the model's own, rendered with this model's BOS and EOS text.
     *
     * @param template Jinja source, or the name of a built-in template ("chatml", "llama3", ...)
     * @return the template; close it when done
     * @throws ResourceClosedException if this model is closed
     * @throws InvalidArgumentException if the template does not parse
     */
    public ChatTemplate chatTemplate(String template) {
        if (template == null || template.isBlank()) {
            throw new InvalidArgumentException("the chat template must not be empty");
        }
        return read(() -> ChatTemplate.create(this, template));
    }

    /** The template conversations share for {@code source} (empty: the model's own), built once. */
    ChatTemplate sharedChatTemplate(Optional<String> source) {
        return read(() -> sharedTemplates.computeIfAbsent(source.orElse(""),
                s -> ChatTemplate.create(this, s.isEmpty() ? null : s)));
    }

    MemorySegment handle() {
        return model;
    }

    MemorySegment vocab() {
        return vocab;
    }

    /** Runs a native call under the read lock, refusing it once the model is closed. */
    <T> T read(java.util.function.Supplier<T> call) {
        lifecycle.readLock().lock();
        try {
            if (closed) {
                throw new ResourceClosedException("model " + path.getFileName() + " is closed");
            }
            return call.get();
        } finally {
            lifecycle.readLock().unlock();
        }
    }

    /**
     * Closes every open session and plug-in (each waits for its decode in progress), then frees the
     * model. Safe from any thread, in any order with closing sessions and plug-ins. Idempotent.
     */
    @Override
    public void close() {
        while (true) {
            for (BatchEngine e : List.copyOf(engines)) {
                e.close();
            }
            for (Session s : List.copyOf(sessions)) {
                s.close();
            }
            for (FlexiDepthPlugin p : List.copyOf(plugins)) {
                p.close();
            }
            for (LoraAdapter a : List.copyOf(loras)) {
                a.close();
            }
            lifecycle.writeLock().lock();
            try {
                if (closed) {
                    return;
                }
                if (sessions.isEmpty() && plugins.isEmpty() && loras.isEmpty() && engines.isEmpty()) {
                    closed = true;
                    sharedTemplates.values().forEach(ChatTemplate::close);
                    llama_h.llama_model_free(model);
                    return;
                }
                // another thread opened a session or loaded a plug-in meanwhile: close those too
            } finally {
                lifecycle.writeLock().unlock();
            }
        }
    }

    /** {@return whether the model has been closed} */
    public boolean isClosed() {
        return closed;
    }

    @Override
    public String toString() {
        return "LlamaModel[" + path + ", " + info.description() + (closed ? ", closed" : "") + "]";
    }
}
