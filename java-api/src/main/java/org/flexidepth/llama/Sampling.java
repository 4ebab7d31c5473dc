package org.flexidepth.llama;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * How the next token is chosen. Immutable; {@link #greedy()} or {@link #builder()}.
 * <p>
 * Tokens are sampled by upstream llama.cpp's own sampler ({@code common_sampler}, as llama-server
 * samples), with its parameters and its order: logit bias, repetition penalties, DRY, top-n-sigma,
 * top-k, typical-p, top-p, min-p, XTC, temperature (dynamic when a range is set), then a seeded
 * random draw; mirostat, when on, replaces every stage after the logit bias with temperature and
 * its own draw. A grammar (or a JSON schema, converted to one by upstream's
 * {@code json_schema_to_grammar}) constrains the output: a token it rejects is resampled with the
 * grammar applied first. The prompt's tokens count as recent tokens for the penalties.
 * With the same model, prompt, options and seed the output is the same as llama-server's.
 */
public final class Sampling {
    /** Mirostat, a sampler that steers the output's perplexity towards a target. */
    public enum Mirostat {
        /** The sampler chain of top-k, top-p and the others. */
        OFF,
        /** Mirostat 1 (Basu et al. 2021), over the whole vocabulary. */
        V1,
        /** Mirostat 2.0, which truncates by the running surprise value. */
        V2
    }

    private static final Sampling GREEDY = builder().temperature(0).build();

    private final float temperature;
    private final float dynamicTemperatureRange;
    private final float dynamicTemperatureExponent;
    private final int topK;
    private final float topP;
    private final float minP;
    private final float typicalP;
    private final float topNSigma;
    private final float xtcProbability;
    private final float xtcThreshold;
    private final int minKeep;
    private final float repeatPenalty;
    private final int repeatLastN;
    private final float frequencyPenalty;
    private final float presencePenalty;
    private final float dryMultiplier;
    private final float dryBase;
    private final int dryAllowedLength;
    private final int dryPenaltyLastN;
    private final List<String> drySequenceBreakers;
    private final Mirostat mirostat;
    private final float mirostatTau;
    private final float mirostatEta;
    private final long seed;
    private final Map<Integer, Float> logitBias;
    private final boolean ignoreEndOfGeneration;
    private final Optional<String> grammar;
    private final Optional<String> jsonSchema;

    private Sampling(Builder b) {
        temperature = b.temperature;
        dynamicTemperatureRange = b.dynamicTemperatureRange;
        dynamicTemperatureExponent = b.dynamicTemperatureExponent;
        topK = b.topK;
        topP = b.topP;
        minP = b.minP;
        typicalP = b.typicalP;
        topNSigma = b.topNSigma;
        xtcProbability = b.xtcProbability;
        xtcThreshold = b.xtcThreshold;
        minKeep = b.minKeep;
        repeatPenalty = b.repeatPenalty;
        repeatLastN = b.repeatLastN;
        frequencyPenalty = b.frequencyPenalty;
        presencePenalty = b.presencePenalty;
        dryMultiplier = b.dryMultiplier;
        dryBase = b.dryBase;
        dryAllowedLength = b.dryAllowedLength;
        dryPenaltyLastN = b.dryPenaltyLastN;
        drySequenceBreakers = List.copyOf(b.drySequenceBreakers);
        mirostat = b.mirostat;
        mirostatTau = b.mirostatTau;
        mirostatEta = b.mirostatEta;
        seed = b.seed;
        logitBias = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(b.logitBias));
        ignoreEndOfGeneration = b.ignoreEndOfGeneration;
        grammar = Optional.ofNullable(b.grammar);
        jsonSchema = Optional.ofNullable(b.jsonSchema);
        check();
    }

    private void check() {
        finite(temperature, "temperature");
        if (temperature < 0) {
            throw new InvalidArgumentException("temperature must be finite and >= 0, was " + temperature);
        }
        finite(dynamicTemperatureRange, "dynamicTemperatureRange");
        finite(dynamicTemperatureExponent, "dynamicTemperatureExponent");
        if (dynamicTemperatureRange < 0) {
            throw new InvalidArgumentException("dynamicTemperatureRange must be >= 0, was " + dynamicTemperatureRange);
        }
        if (topK < 0) {
            throw new InvalidArgumentException("topK must be >= 0, was " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new InvalidArgumentException("topP must be in (0, 1], was " + topP);
        }
        if (!(minP >= 0 && minP < 1)) {
            throw new InvalidArgumentException("minP must be in [0, 1), was " + minP);
        }
        if (!(typicalP > 0 && typicalP <= 1)) {
            throw new InvalidArgumentException("typicalP must be in (0, 1], was " + typicalP);
        }
        finite(topNSigma, "topNSigma");
        if (!(xtcProbability >= 0 && xtcProbability <= 1)) {
            throw new InvalidArgumentException("xtcProbability must be in [0, 1], was " + xtcProbability);
        }
        if (!(xtcThreshold >= 0 && xtcThreshold <= 1)) {
            throw new InvalidArgumentException("xtcThreshold must be in [0, 1], was " + xtcThreshold);
        }
        if (minKeep < 0) {
            throw new InvalidArgumentException("minKeep must be >= 0, was " + minKeep);
        }
        finite(repeatPenalty, "repeatPenalty");
        if (!(repeatPenalty > 0)) {
            throw new InvalidArgumentException("repeatPenalty must be finite and > 0, was " + repeatPenalty);
        }
        if (repeatLastN < 0) {
            throw new InvalidArgumentException("repeatLastN must be >= 0, was " + repeatLastN);
        }
        finite(frequencyPenalty, "frequencyPenalty");
        finite(presencePenalty, "presencePenalty");
        finite(dryMultiplier, "dryMultiplier");
        finite(dryBase, "dryBase");
        if (dryMultiplier < 0 || (dryMultiplier > 0 && dryBase < 1)) {
            throw new InvalidArgumentException("dryMultiplier must be >= 0 and dryBase >= 1 when DRY is on, were "
                    + dryMultiplier + " and " + dryBase);
        }
        if (dryAllowedLength < 0 || dryPenaltyLastN < 0) {
            throw new InvalidArgumentException("dryAllowedLength and dryPenaltyLastN must be >= 0, were "
                    + dryAllowedLength + " and " + dryPenaltyLastN);
        }
        for (String s : drySequenceBreakers) {
            if (s.isEmpty()) {
                throw new InvalidArgumentException("a DRY sequence breaker must not be empty");
            }
            TextChecks.requireWellFormed(s, "a DRY sequence breaker");
        }
        finite(mirostatTau, "mirostatTau");
        finite(mirostatEta, "mirostatEta");
        if (seed < 0 || seed > 0xFFFFFFFFL) {
            throw new InvalidArgumentException("seed must fit in 32 unsigned bits, was " + seed);
        }
        for (Map.Entry<Integer, Float> e : logitBias.entrySet()) {
            if (e.getKey() < 0) {
                throw new InvalidArgumentException("a logit bias names token " + e.getKey() + "; token ids are >= 0");
            }
            if (Float.isNaN(e.getValue()) || e.getValue() == Float.POSITIVE_INFINITY) {
                throw new InvalidArgumentException("the logit bias of token " + e.getKey() + " must be finite or -infinity (a ban), was " + e.getValue());
            }
        }
        // llama.cpp treats an empty grammar as none at all, which would silently drop a constraint
        // the caller asked for (a grammar file that came out empty, say)
        if (grammar.isPresent() && grammar.get().isBlank()) {
            throw new InvalidArgumentException("the grammar is empty; a GBNF grammar needs at least a root rule (leave it unset for none)");
        }
        grammar.ifPresent(g -> TextChecks.requireWellFormed(g, "the grammar"));
        if (jsonSchema.isPresent() && jsonSchema.get().isBlank()) {
            throw new InvalidArgumentException("the JSON schema is empty (leave it unset for none; {} admits any JSON value)");
        }
        jsonSchema.ifPresent(s -> TextChecks.requireWellFormed(s, "the JSON schema"));
        if (grammar.isPresent() && jsonSchema.isPresent()) {
            throw new InvalidArgumentException("set a grammar or a JSON schema, not both (the schema becomes a grammar)");
        }
    }

    private static void finite(float v, String name) {
        if (!Float.isFinite(v)) {
            throw new InvalidArgumentException(name + " must be finite, was " + v);
        }
    }

    /** {@return always the most likely token: deterministic} */
    public static Sampling greedy() {
        return GREEDY;
    }

    /**
     * {@return a builder with llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05,
     * no penalties, DRY, XTC, typical-p, top-n-sigma or mirostat, seed 42}
     */
    public static Builder builder() {
        return new Builder();
    }

    /** {@return whether the temperature is 0 and mirostat off, so that the most likely token is always chosen} */
    public boolean isGreedy() {
        return temperature == 0 && mirostat == Mirostat.OFF;
    }

    /** {@return the softmax temperature; 0 for greedy} */
    public float temperature() { return temperature; }

    /** {@return the dynamic temperature range: the temperature moves within temperature ± range by the entropy; 0 for off} */
    public float dynamicTemperatureRange() { return dynamicTemperatureRange; }

    /** {@return the exponent mapping entropy to the dynamic temperature} */
    public float dynamicTemperatureExponent() { return dynamicTemperatureExponent; }

    /** {@return top-k: keep the k most likely tokens; 0 for off} */
    public int topK() { return topK; }

    /** {@return top-p: keep the smallest set of this cumulative probability; 1 for off} */
    public float topP() { return topP; }

    /** {@return min-p: drop tokens below this fraction of the top probability; 0 for off} */
    public float minP() { return minP; }

    /** {@return typical-p (locally typical sampling); 1 for off} */
    public float typicalP() { return typicalP; }

    /** {@return top-n-sigma: keep tokens within n standard deviations of the top logit; negative for off} */
    public float topNSigma() { return topNSigma; }

    /** {@return the probability that XTC removes the most likely tokens above its threshold; 0 for off} */
    public float xtcProbability() { return xtcProbability; }

    /** {@return the probability a token needs for XTC to count it as a top choice} */
    public float xtcThreshold() { return xtcThreshold; }

    /** {@return the fewest tokens the truncating samplers keep; 0 for their own minimum} */
    public int minKeep() { return minKeep; }

    /** {@return the repetition penalty dividing positive logits of recent tokens; 1 for off} */
    public float repeatPenalty() { return repeatPenalty; }

    /** {@return how many recent tokens the penalties look at; 0 for off} */
    public int repeatLastN() { return repeatLastN; }

    /** {@return the frequency penalty, subtracted per occurrence of a recent token; 0 for off} */
    public float frequencyPenalty() { return frequencyPenalty; }

    /** {@return the presence penalty, subtracted once for any recent token; 0 for off} */
    public float presencePenalty() { return presencePenalty; }

    /** {@return the DRY (don't repeat yourself) multiplier; 0 for off} */
    public float dryMultiplier() { return dryMultiplier; }

    /** {@return the DRY base: the penalty grows as base to the power of the repeated length beyond the allowed one} */
    public float dryBase() { return dryBase; }

    /** {@return the longest repetition DRY leaves unpenalised} */
    public int dryAllowedLength() { return dryAllowedLength; }

    /** {@return how many recent tokens DRY scans; 0 for off} */
    public int dryPenaltyLastN() { return dryPenaltyLastN; }

    /** {@return the texts at which DRY stops matching a repetition} */
    public List<String> drySequenceBreakers() { return drySequenceBreakers; }

    /** {@return the mirostat version, or {@link Mirostat#OFF}} */
    public Mirostat mirostat() { return mirostat; }

    /** {@return mirostat's target surprise (entropy) per token} */
    public float mirostatTau() { return mirostatTau; }

    /** {@return mirostat's learning rate} */
    public float mirostatEta() { return mirostatEta; }

    /** {@return the seed of the random draw} */
    public long seed() { return seed; }

    /** {@return the biases added to the logits of tokens by id; -infinity bans a token} */
    public Map<Integer, Float> logitBias() { return logitBias; }

    /** {@return whether end-of-generation tokens are banned, so generation runs to its token limit} */
    public boolean ignoreEndOfGeneration() { return ignoreEndOfGeneration; }

    /** {@return the GBNF grammar the output must follow (root rule {@code root}), if any} */
    public Optional<String> grammar() { return grammar; }

    /** {@return the JSON schema the output must be valid against, if any} */
    public Optional<String> jsonSchema() { return jsonSchema; }

    /** {@return a builder starting from these options} */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.temperature = temperature;
        b.dynamicTemperatureRange = dynamicTemperatureRange;
        b.dynamicTemperatureExponent = dynamicTemperatureExponent;
        b.topK = topK;
        b.topP = topP;
        b.minP = minP;
        b.typicalP = typicalP;
        b.topNSigma = topNSigma;
        b.xtcProbability = xtcProbability;
        b.xtcThreshold = xtcThreshold;
        b.minKeep = minKeep;
        b.repeatPenalty = repeatPenalty;
        b.repeatLastN = repeatLastN;
        b.frequencyPenalty = frequencyPenalty;
        b.presencePenalty = presencePenalty;
        b.dryMultiplier = dryMultiplier;
        b.dryBase = dryBase;
        b.dryAllowedLength = dryAllowedLength;
        b.dryPenaltyLastN = dryPenaltyLastN;
        b.drySequenceBreakers = drySequenceBreakers;
        b.mirostat = mirostat;
        b.mirostatTau = mirostatTau;
        b.mirostatEta = mirostatEta;
        b.seed = seed;
        b.logitBias.putAll(logitBias);
        b.ignoreEndOfGeneration = ignoreEndOfGeneration;
        b.grammar = grammar.orElse(null);
        b.jsonSchema = jsonSchema.orElse(null);
        return b;
    }

    private Object[] values() {
        return new Object[] {temperature, dynamicTemperatureRange, dynamicTemperatureExponent, topK, topP, minP, typicalP,
            topNSigma, xtcProbability, xtcThreshold, minKeep, repeatPenalty, repeatLastN, frequencyPenalty, presencePenalty,
            dryMultiplier, dryBase, dryAllowedLength, dryPenaltyLastN, drySequenceBreakers, mirostat, mirostatTau,
            mirostatEta, seed, logitBias, ignoreEndOfGeneration, grammar, jsonSchema};
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Sampling s && Arrays.equals(values(), s.values());
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(values());
    }

    @Override
    public String toString() {
        return "Sampling[temperature=" + temperature + ", topK=" + topK + ", topP=" + topP + ", minP=" + minP
                + ", typicalP=" + typicalP + ", topNSigma=" + topNSigma + ", xtc=" + xtcProbability + "/" + xtcThreshold
                + ", dynamicTemperature=" + dynamicTemperatureRange + "^" + dynamicTemperatureExponent
                + ", penalties=" + repeatPenalty + "/" + frequencyPenalty + "/" + presencePenalty + " over " + repeatLastN
                + ", dry=" + dryMultiplier + ", mirostat=" + mirostat + ", seed=" + seed + ", logitBias=" + logitBias
                + ", ignoreEndOfGeneration=" + ignoreEndOfGeneration + ", grammar=" + grammar.isPresent()
                + ", jsonSchema=" + jsonSchema.isPresent() + "]";
    }

    /** Builds {@link Sampling}; each setter says its default (llama.cpp's). Not thread-safe. */
    public static final class Builder {
        private float temperature = 0.8f;
        private float dynamicTemperatureRange = 0;
        private float dynamicTemperatureExponent = 1;
        private int topK = 40;
        private float topP = 0.95f;
        private float minP = 0.05f;
        private float typicalP = 1;
        private float topNSigma = -1;
        private float xtcProbability = 0;
        private float xtcThreshold = 0.1f;
        private int minKeep = 0;
        private float repeatPenalty = 1.0f;
        private int repeatLastN = 64;
        private float frequencyPenalty = 0;
        private float presencePenalty = 0;
        private float dryMultiplier = 0;
        private float dryBase = 1.75f;
        private int dryAllowedLength = 2;
        private int dryPenaltyLastN = 64;
        private List<String> drySequenceBreakers = List.of("\n", ":", "\"", "*");
        private Mirostat mirostat = Mirostat.OFF;
        private float mirostatTau = 5;
        private float mirostatEta = 0.1f;
        private long seed = 42;
        private final Map<Integer, Float> logitBias = new LinkedHashMap<>();
        private boolean ignoreEndOfGeneration;
        private String grammar;
        private String jsonSchema;

        private Builder() {
        }

        /**
         * Sets the softmax temperature; 0 chooses the most likely token.
         *
         * @param v the temperature, finite and {@code >= 0}; above 1 flattens the distribution; default 0.8
         * @return this builder
         */
        public Builder temperature(float v) { temperature = v; return this; }

        /**
         * Sets dynamic temperature: the temperature moves within {@code temperature ± range}, higher where
         * the distribution's entropy is higher.
         *
         * @param range    the range, {@code >= 0}; 0 to disable; default 0
         * @param exponent how entropy maps to temperature; default 1
         * @return this builder
         */
        public Builder dynamicTemperature(float range, float exponent) {
            dynamicTemperatureRange = range;
            dynamicTemperatureExponent = exponent;
            return this;
        }

        /**
         * Sets top-k: keep only the {@code v} most likely tokens.
         *
         * @param v the number of tokens, {@code >= 0}; 0 to disable; default 40
         * @return this builder
         */
        public Builder topK(int v) { topK = v; return this; }

        /**
         * Sets top-p (nucleus): keep the smallest set of tokens whose probabilities add up to {@code v}.
         *
         * @param v the cumulative probability in (0, 1]; 1 to disable; default 0.95
         * @return this builder
         */
        public Builder topP(float v) { topP = v; return this; }

        /**
         * Sets min-p: drop tokens less likely than {@code v} times the most likely one.
         *
         * @param v the fraction in [0, 1); 0 to disable; default 0.05
         * @return this builder
         */
        public Builder minP(float v) { minP = v; return this; }

        /**
         * Sets typical-p (locally typical sampling): keep the tokens whose surprise is closest to the
         * distribution's entropy, up to this cumulative probability.
         *
         * @param v the cumulative probability in (0, 1]; 1 to disable; default 1
         * @return this builder
         */
        public Builder typicalP(float v) { typicalP = v; return this; }

        /**
         * Sets top-n-sigma: keep the tokens whose logit is within {@code v} standard deviations of the top one.
         *
         * @param v the number of standard deviations; negative to disable; default -1
         * @return this builder
         */
        public Builder topNSigma(float v) { topNSigma = v; return this; }

        /**
         * Sets XTC (exclude top choices): with {@code probability}, the tokens above {@code threshold}
         * except the least likely of them are removed.
         *
         * @param probability in [0, 1]; 0 to disable; default 0
         * @param threshold   in [0, 1]; above 0.5 XTC never applies; default 0.1
         * @return this builder
         */
        public Builder xtc(float probability, float threshold) {
            xtcProbability = probability;
            xtcThreshold = threshold;
            return this;
        }

        /**
         * Sets the fewest tokens that top-p, min-p, typical-p and XTC keep.
         *
         * @param v the number of tokens, {@code >= 0}; default 0 (each sampler's own minimum)
         * @return this builder
         */
        public Builder minKeep(int v) { minKeep = v; return this; }

        /**
         * Sets the repetition penalty: positive logits of recently seen tokens are divided by it, negative ones multiplied.
         *
         * @param v the penalty, finite and {@code > 0}; 1 to disable; default 1
         * @return this builder
         */
        public Builder repeatPenalty(float v) { repeatPenalty = v; return this; }

        /**
         * Sets how many recent tokens (prompt tokens included) the penalties look at.
         *
         * @param v the number of tokens, {@code >= 0}; 0 disables the penalties; default 64
         * @return this builder
         */
        public Builder repeatLastN(int v) { repeatLastN = v; return this; }

        /**
         * Sets the frequency penalty: subtracted from a token's logit once per time it was seen recently.
         *
         * @param v the penalty, finite; 0 to disable; default 0
         * @return this builder
         */
        public Builder frequencyPenalty(float v) { frequencyPenalty = v; return this; }

        /**
         * Sets the presence penalty: subtracted once from the logit of any recently seen token.
         *
         * @param v the penalty, finite; 0 to disable; default 0
         * @return this builder
         */
        public Builder presencePenalty(float v) { presencePenalty = v; return this; }

        /**
         * Sets DRY (don't repeat yourself): a token that would extend a repetition longer than
         * {@code allowedLength} gets {@code multiplier * base^(length - allowedLength)} subtracted.
         *
         * @param multiplier    {@code >= 0}; 0 to disable; default 0
         * @param base          {@code >= 1}; default 1.75
         * @param allowedLength {@code >= 0}; default 2
         * @param penaltyLastN  how many recent tokens are scanned, {@code >= 0}; 0 disables DRY; default 64
         * @return this builder
         */
        public Builder dry(float multiplier, float base, int allowedLength, int penaltyLastN) {
            dryMultiplier = multiplier;
            dryBase = base;
            dryAllowedLength = allowedLength;
            dryPenaltyLastN = penaltyLastN;
            return this;
        }

        /**
         * Sets the texts at which DRY stops matching a repetition.
         *
         * @param breakers non-empty strings; default newline, colon, double quote and asterisk
         * @return this builder
         */
        public Builder drySequenceBreakers(List<String> breakers) {
            if (breakers == null || breakers.stream().anyMatch(java.util.Objects::isNull)) {
                throw new InvalidArgumentException("DRY sequence breakers must not be null");
            }
            drySequenceBreakers = List.copyOf(breakers);
            return this;
        }

        /**
         * Sets mirostat, which replaces the penalties, DRY, top-k, top-p and the other stages.
         *
         * @param version the version, or {@link Mirostat#OFF}; default off
         * @param tau     the target surprise per token; default 5
         * @param eta     the learning rate; default 0.1
         * @return this builder
         */
        public Builder mirostat(Mirostat version, float tau, float eta) {
            if (version == null) {
                throw new InvalidArgumentException("the mirostat version must not be null (Mirostat.OFF for none)");
            }
            mirostat = version;
            mirostatTau = tau;
            mirostatEta = eta;
            return this;
        }

        /**
         * Sets the seed of the random draw; the same seed, prompt and options give the same output.
         *
         * @param v the seed, 0 to 2<sup>32</sup>-1; default 42
         * @return this builder
         */
        public Builder seed(long v) { seed = v; return this; }

        /**
         * Adds {@code bias} to the logit of {@code token} before any sampler runs; setting a token again replaces its bias.
         *
         * @param token the token id, inside the model's vocabulary (checked when a generation starts)
         * @param bias  finite, or {@link Float#NEGATIVE_INFINITY} to ban the token
         * @return this builder
         */
        public Builder logitBias(int token, float bias) { logitBias.put(token, bias); return this; }

        /**
         * Bans end-of-generation tokens, so that a generation runs to its token limit or a stop string.
         *
         * @param v whether to ban them; default false
         * @return this builder
         */
        public Builder ignoreEndOfGeneration(boolean v) { ignoreEndOfGeneration = v; return this; }

        /**
         * Sets a GBNF grammar that the output must follow, starting from its rule {@code root}.
         *
         * @param gbnf the grammar text, not blank; {@code null} for none; default none
         * @return this builder
         */
        public Builder grammar(String gbnf) { grammar = gbnf; return this; }

        /**
         * Sets a JSON schema that the output must be valid against: upstream's
         * {@code json_schema_to_grammar} turns it into a grammar when a generation starts (objects,
         * arrays with item bounds, enums, constants, required and optional properties, string
         * patterns and formats, numeric bounds, references). The output is JSON text.
         *
         * @param schema the schema as JSON text; {@code null} for none; default none
         * @return this builder
         */
        public Builder jsonSchema(String schema) { jsonSchema = schema; return this; }

        /**
         * Creates the options.
         *
         * @return the sampling options
         * @throws InvalidArgumentException if a value is out of range, or both a grammar and a JSON schema are set
         */
        public Sampling build() {
            return new Sampling(this);
        }
    }
}
