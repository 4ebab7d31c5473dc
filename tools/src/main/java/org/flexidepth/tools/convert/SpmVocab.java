package org.flexidepth.tools.convert;

import org.flexidepth.gguf.GgufWriter;
import org.flexidepth.tools.JsonFiles;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * A Hugging Face BPE {@code tokenizer.json} of the SentencePiece kind (spaces written as
 * {@code ▁}, no byte-level pre-tokenizer) recast as a llama.cpp SPM vocabulary
 * ({@code tokenizer.ggml.model = "llama"}).
 *
 * <p>llama.cpp's SPM tokenizer repeatedly merges the adjacent pair whose concatenation is the
 * vocabulary entry with the highest score (leftmost on ties); HF's BPE repeatedly applies the
 * lowest-ranked merge rule (leftmost on ties). Scoring each token {@code -rank} of the merge that
 * produces it makes the first imitate the second. They can only part ways when a concatenation is
 * in the vocabulary although no merge rule joins that particular pair, which BPE vocabularies
 * rarely allow.
 *
 * @param tokens         token texts by id
 * @param scores         merge priorities by id, see above
 * @param types          llama.cpp token types by id ({@code llama_token_type})
 * @param addSpacePrefix whether a {@code ▁} is put before the text (the normalizer's Prepend)
 * @param warnings       things that will make llama.cpp tokenize differently from HF
 */
record SpmVocab(List<String> tokens, float[] scores, int[] types, Optional<Integer> bos, Optional<Integer> eos,
                Optional<Integer> unk, Optional<Integer> pad, Optional<Boolean> addBos, Optional<Boolean> addEos,
                boolean addSpacePrefix, Optional<String> chatTemplate, List<String> warnings) {

    // llama_token_type
    static final int NORMAL = 1;
    static final int UNKNOWN = 2;
    static final int CONTROL = 3;
    static final int USER_DEFINED = 4;
    static final int UNUSED = 5;
    static final int BYTE = 6;

    /** SentencePiece's whitespace marker. */
    static final String SPACE = "\u2581";
    /**
     * The score of multi-character tokens that no merge produces (specials, added tokens): BPE never
     * builds them from pieces, so SPM should do so only when nothing else is left to merge.
     */
    static final float UNMERGED_SCORE = -1e9f;
    /** What upstream's converter gives the padding entries of a vocabulary smaller than the embedding. */
    static final float PADDING_SCORE = -10000f;

    private static final Pattern BYTE_TOKEN = Pattern.compile("<0x[0-9A-Fa-f]{2}>");

    /**
     * Reads {@code tokenizer.json} and {@code tokenizer_config.json} from {@code dir}.
     *
     * @param nVocab the number of rows of the embedding, which the vocabulary must match
     * @param config for the fallback bos/eos ids
     */
    static SpmVocab read(Path dir, int nVocab, HfLlamaConfig config) throws IOException {
        Map<String, Object> tok = JsonFiles.readObject(dir.resolve("tokenizer.json"));
        Map<String, Object> tokConfig = Files.isRegularFile(dir.resolve("tokenizer_config.json"))
                ? JsonFiles.readObject(dir.resolve("tokenizer_config.json")) : Map.of();
        List<String> warnings = new ArrayList<>();

        Map<?, ?> model = map(tok.get("model"), "model");
        if (!"BPE".equals(model.get("type"))) {
            throw new IOException("tokenizer.json: model type " + model.get("type") + " is not supported, only BPE");
        }
        if (Boolean.TRUE.equals(model.get("ignore_merges"))) {
            throw new IOException("tokenizer.json: ignore_merges is set (a Llama 3 style byte-level BPE); "
                    + "that needs llama.cpp's BPE tokenizer, which this converter does not write");
        }
        boolean addSpacePrefix = spaceHandling(tok);

        String[] tokens = new String[nVocab];
        Map<?, ?> vocab = map(model.get("vocab"), "model.vocab");
        for (Map.Entry<?, ?> e : vocab.entrySet()) {
            tokens[checkId(Math.toIntExact((Long) e.getValue()), e.getKey(), nVocab)] = (String) e.getKey();
        }
        // added tokens may reuse ids of the model vocabulary (tinystories' <unk>, bos, eos do)
        Boolean[] addedSpecial = new Boolean[nVocab];
        for (Object o : tok.get("added_tokens") instanceof List<?> a ? a : List.of()) {
            Map<?, ?> t = map(o, "added_tokens entry");
            int id = checkId(Math.toIntExact((Long) t.get("id")), t.get("content"), nVocab);
            tokens[id] = (String) t.get("content");
            addedSpecial[id] = Boolean.TRUE.equals(t.get("special"));
        }
        Map<String, Integer> idOf = new HashMap<>();
        for (int id = nVocab - 1; id >= 0; id--) {
            if (tokens[id] != null) {
                idOf.put(tokens[id], id);
            }
        }

        float[] scores = new float[nVocab];
        boolean[] merged = new boolean[nVocab];
        int rank = 0;
        int missing = 0;
        for (Object m : model.get("merges") instanceof List<?> l ? l : List.of()) {
            String[] pair = mergePair(m);
            Integer id = idOf.get(pair[0] + pair[1]);
            if (id == null) {
                missing++;
            } else if (!merged[id]) {
                // a later rule producing the same string never fires in BPE: the earlier one already did
                merged[id] = true;
                scores[id] = -rank;
            }
            rank++;
        }
        if (missing > 0) {
            warnings.add(missing + " merge rules produce strings that are not in the vocabulary; they were ignored");
        }

        int[] types = new int[nVocab];
        int unmergedPieces = 0;
        int padding = 0;
        for (int id = 0; id < nVocab; id++) {
            if (tokens[id] == null) {
                tokens[id] = "[PAD" + id + "]";
                types[id] = UNUSED;
                scores[id] = PADDING_SCORE;
                padding++;
            } else if (addedSpecial[id] != null) {
                types[id] = addedSpecial[id] ? CONTROL : USER_DEFINED;
                if (!merged[id]) {
                    scores[id] = UNMERGED_SCORE;
                }
            } else if (BYTE_TOKEN.matcher(tokens[id]).matches()) {
                types[id] = BYTE;
                scores[id] = 0;
            } else {
                types[id] = NORMAL;
                if (!merged[id]) {
                    // single characters are never the result of a merge, so their score is never consulted
                    boolean single = tokens[id].codePointCount(0, tokens[id].length()) == 1;
                    scores[id] = single ? 0 : UNMERGED_SCORE;
                    unmergedPieces += single ? 0 : 1;
                }
            }
        }
        if (unmergedPieces > 0) {
            warnings.add(unmergedPieces + " multi-character tokens are not produced by any merge rule;"
                    + " llama.cpp may still form them where HF would not");
        }
        if (padding > 0) {
            warnings.add(padding + " embedding rows have no token; they were named [PAD<id>] and marked unused");
        }

        Optional<Integer> unk = special(tokConfig, "unk_token", idOf)
                .or(() -> model.get("unk_token") instanceof String s ? Optional.ofNullable(idOf.get(s)) : Optional.empty());
        unk.ifPresent(id -> types[id] = UNKNOWN);
        if (unk.isEmpty()) {
            warnings.add("no unknown token: characters outside the vocabulary cannot be encoded");
        }
        if (Boolean.TRUE.equals(model.get("byte_fallback")) && Arrays.stream(types).noneMatch(t -> t == BYTE)) {
            warnings.add("byte_fallback is set but there are no <0xXX> byte tokens: HF encodes characters outside"
                    + " the vocabulary as <unk>" + (Boolean.FALSE.equals(model.get("fuse_unk")) ? "" : " (one per run of them)")
                    + ", while llama.cpp's SPM tokenizer looks for byte tokens (upstream llama.cpp aborts without them)");
        }

        return new SpmVocab(List.of(tokens), scores, types,
                special(tokConfig, "bos_token", idOf).or(config::bosTokenId),
                special(tokConfig, "eos_token", idOf).or(config::eosTokenId),
                unk,
                special(tokConfig, "pad_token", idOf),
                tokConfig.get("add_bos_token") instanceof Boolean b ? Optional.of(b) : Optional.empty(),
                tokConfig.get("add_eos_token") instanceof Boolean b ? Optional.of(b) : Optional.empty(),
                addSpacePrefix, chatTemplate(tokConfig), List.copyOf(warnings));
    }

    /** Writes the {@code tokenizer.*} metadata. */
    void writeTo(GgufWriter w) {
        w.putString("tokenizer.ggml.model", "llama");
        w.putStringArray("tokenizer.ggml.tokens", tokens);
        w.putFloat32Array("tokenizer.ggml.scores", scores);
        w.putInt32Array("tokenizer.ggml.token_type", types);
        bos.ifPresent(id -> w.putUInt32("tokenizer.ggml.bos_token_id", id));
        eos.ifPresent(id -> w.putUInt32("tokenizer.ggml.eos_token_id", id));
        unk.ifPresent(id -> w.putUInt32("tokenizer.ggml.unknown_token_id", id));
        pad.ifPresent(id -> w.putUInt32("tokenizer.ggml.padding_token_id", id));
        addBos.ifPresent(b -> w.putBool("tokenizer.ggml.add_bos_token", b));
        addEos.ifPresent(b -> w.putBool("tokenizer.ggml.add_eos_token", b));
        w.putBool("tokenizer.ggml.add_space_prefix", addSpacePrefix);
        chatTemplate.ifPresent(t -> w.putString("tokenizer.chat_template", t));
    }

    /**
     * Checks that spaces become {@code ▁} as SentencePiece (and llama.cpp's SPM tokenizer) does it,
     * either through the normalizer (older HF Llama tokenizers) or a non-splitting Metaspace
     * pre-tokenizer (newer ones); returns whether a {@code ▁} is prepended.
     */
    private static boolean spaceHandling(Map<String, Object> tok) throws IOException {
        List<Map<?, ?>> normalizers = flatten(tok.get("normalizer"), "normalizers");
        List<Map<?, ?>> preTokenizers = flatten(tok.get("pre_tokenizer"), "pretokenizers");
        boolean prepend = false;
        boolean replace = false;
        for (Map<?, ?> n : normalizers) {
            if ("Prepend".equals(n.get("type")) && SPACE.equals(n.get("prepend"))) {
                prepend = true;
            } else if ("Replace".equals(n.get("type")) && SPACE.equals(n.get("content"))
                    && n.get("pattern") instanceof Map<?, ?> p && " ".equals(p.get("String"))) {
                replace = true;
            } else {
                throw new IOException("tokenizer.json: normalizer " + n.get("type") + " has no llama.cpp SPM equivalent");
            }
        }
        for (Map<?, ?> p : preTokenizers) {
            if (!"Metaspace".equals(p.get("type")) || !SPACE.equals(p.get("replacement"))
                    || Boolean.TRUE.equals(p.get("split"))) {
                throw new IOException("tokenizer.json: pre-tokenizer " + p.get("type")
                        + " is not the SentencePiece kind that llama.cpp's SPM tokenizer implements");
            }
            replace = true;
            Object scheme = p.get("prepend_scheme");
            prepend = scheme != null ? !"never".equals(scheme) : !Boolean.FALSE.equals(p.get("add_prefix_space"));
        }
        if (!replace) {
            throw new IOException("tokenizer.json: spaces are not replaced by \u2581, so this is not a"
                    + " SentencePiece-style tokenizer that llama.cpp's SPM tokenizer can reproduce");
        }
        return prepend;
    }

    private static List<Map<?, ?>> flatten(Object node, String childrenKey) throws IOException {
        List<Map<?, ?>> out = new ArrayList<>();
        if (node == null) {
            return out;
        }
        Map<?, ?> m = map(node, "normalizer/pre_tokenizer");
        if ("Sequence".equals(m.get("type")) && m.get(childrenKey) instanceof List<?> children) {
            for (Object c : children) {
                out.addAll(flatten(c, childrenKey));
            }
        } else {
            out.add(m);
        }
        return out;
    }

    /** A merge rule, written either as {@code "a b"} or, by newer tokenizers, as {@code ["a", "b"]}. */
    private static String[] mergePair(Object m) throws IOException {
        if (m instanceof String s) {
            String[] parts = s.split(" ", -1);
            if (parts.length == 2) {
                return parts;
            }
        } else if (m instanceof List<?> l && l.size() == 2 && l.get(0) instanceof String a && l.get(1) instanceof String b) {
            return new String[] {a, b};
        }
        throw new IOException("tokenizer.json: cannot read merge rule " + m);
    }

    /** A special token of tokenizer_config.json, given as a string or as an AddedToken object. */
    private static Optional<Integer> special(Map<String, Object> tokConfig, String key, Map<String, Integer> idOf) {
        Object v = tokConfig.get(key);
        if (v instanceof Map<?, ?> m) {
            v = m.get("content");
        }
        return v instanceof String s ? Optional.ofNullable(idOf.get(s)) : Optional.empty();
    }

    private static Optional<String> chatTemplate(Map<String, Object> tokConfig) {
        Object t = tokConfig.get("chat_template");
        if (t instanceof String s) {
            return Optional.of(s);
        }
        if (t instanceof List<?> named) {
            // several named templates: llama.cpp's tokenizer.chat_template is the default one
            for (Object o : named) {
                if (o instanceof Map<?, ?> m && "default".equals(m.get("name")) && m.get("template") instanceof String s) {
                    return Optional.of(s);
                }
            }
        }
        return Optional.empty();
    }

    private static int checkId(int id, Object token, int nVocab) throws IOException {
        if (id < 0 || id >= nVocab) {
            throw new IOException("tokenizer.json: token " + token + " has id " + id
                    + " but the embedding has " + nVocab + " rows");
        }
        return id;
    }

    private static Map<?, ?> map(Object o, String what) throws IOException {
        if (!(o instanceof Map<?, ?> m)) {
            throw new IOException("tokenizer.json: " + what + " is missing or not an object");
        }
        return m;
    }
}
