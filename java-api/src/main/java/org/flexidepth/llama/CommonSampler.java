package org.flexidepth.llama;

import org.flexidepth.llama.bindings.llama_fork_common_grammar_trigger;
import org.flexidepth.llama.bindings.llama_fork_common_sampling_params;
import org.flexidepth.llama.bindings.llama_h;
import org.flexidepth.llama.bindings.llama_logit_bias;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Map;

/**
 * Upstream's {@code common_sampler} for a {@link Sampling}, through the fork's common shim
 * (llama-fork-common.h): the same sampler llama-server builds per request.
 */
final class CommonSampler {
    private CommonSampler() {
    }

    /**
     * Creates the native sampler and feeds it the prompt, as llama-server does, so that the
     * penalties see the prompt's tokens; a chat's grammar comes from {@code chat}. Free it with {@link #free}.
     *
     * @throws InvalidArgumentException if the grammar does not parse, the JSON schema is not
     *         supported, or a logit bias names a token outside the vocabulary
     */
    static MemorySegment create(LlamaModel model, Sampling s, int[] prompt, ChatConstraint chat) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment p = llama_h.llama_fork_common_sampling_default_params(arena);
            // Greedy: the most likely token after the penalties wins whatever top-k, top-p and min-p
            // say, so top-k is 1, which leaves the stages after it one candidate instead of the
            // whole vocabulary (a softmax over 128k tokens per step, 1-2 % of a 1B model's decode)
            boolean greedy = s.isGreedy() && s.xtcProbability() == 0 && s.typicalP() == 1;
            llama_fork_common_sampling_params.seed(p, (int) s.seed());
            llama_fork_common_sampling_params.min_keep(p, s.minKeep());
            llama_fork_common_sampling_params.top_k(p, greedy ? 1 : s.topK());
            llama_fork_common_sampling_params.top_p(p, greedy ? 1 : s.topP());
            llama_fork_common_sampling_params.min_p(p, greedy ? 0 : s.minP());
            llama_fork_common_sampling_params.typ_p(p, s.typicalP());
            llama_fork_common_sampling_params.top_n_sigma(p, s.topNSigma());
            llama_fork_common_sampling_params.xtc_probability(p, s.xtcProbability());
            llama_fork_common_sampling_params.xtc_threshold(p, s.xtcThreshold());
            llama_fork_common_sampling_params.temp(p, s.temperature());
            llama_fork_common_sampling_params.dynatemp_range(p, s.dynamicTemperatureRange());
            llama_fork_common_sampling_params.dynatemp_exponent(p, s.dynamicTemperatureExponent());
            llama_fork_common_sampling_params.penalty_last_n(p, s.repeatLastN());
            llama_fork_common_sampling_params.penalty_repeat(p, s.repeatPenalty());
            llama_fork_common_sampling_params.penalty_freq(p, s.frequencyPenalty());
            llama_fork_common_sampling_params.penalty_present(p, s.presencePenalty());
            llama_fork_common_sampling_params.dry_multiplier(p, s.dryMultiplier());
            llama_fork_common_sampling_params.dry_base(p, s.dryBase());
            llama_fork_common_sampling_params.dry_allowed_length(p, s.dryAllowedLength());
            llama_fork_common_sampling_params.dry_penalty_last_n(p, s.dryPenaltyLastN());
            llama_fork_common_sampling_params.mirostat(p, s.mirostat().ordinal());
            llama_fork_common_sampling_params.mirostat_tau(p, s.mirostatTau());
            llama_fork_common_sampling_params.mirostat_eta(p, s.mirostatEta());
            llama_fork_common_sampling_params.ignore_eos(p, s.ignoreEndOfGeneration());

            List<String> breakers = s.drySequenceBreakers();
            MemorySegment b = arena.allocate(ValueLayout.ADDRESS, Math.max(1, breakers.size()));
            for (int i = 0; i < breakers.size(); i++) {
                b.setAtIndex(ValueLayout.ADDRESS, i, arena.allocateFrom(breakers.get(i)));
            }
            llama_fork_common_sampling_params.dry_sequence_breakers(p, b);
            llama_fork_common_sampling_params.n_dry_sequence_breakers(p, breakers.size());

            int vocabulary = model.info().vocabularySize();
            Map<Integer, Float> bias = s.logitBias();
            MemorySegment lb = llama_logit_bias.allocateArray(Math.max(1, bias.size()), arena);
            int i = 0;
            for (Map.Entry<Integer, Float> e : bias.entrySet()) {
                if (e.getKey() >= vocabulary) {
                    throw new InvalidArgumentException("a logit bias names token " + e.getKey()
                            + ", outside this model's vocabulary of " + vocabulary);
                }
                MemorySegment one = llama_logit_bias.asSlice(lb, i++);
                llama_logit_bias.token(one, e.getKey());
                llama_logit_bias.bias(one, e.getValue());
            }
            llama_fork_common_sampling_params.logit_bias(p, lb);
            llama_fork_common_sampling_params.n_logit_bias(p, bias.size());

            String grammar = s.jsonSchema().isPresent() ? grammarOf(s.jsonSchema().get()) : s.grammar().orElse(null);
            if (grammar != null) {
                llama_fork_common_sampling_params.grammar(p, arena.allocateFrom(grammar));
            } else if (chat.grammar().isPresent()) {
                grammar = chat.grammar().get();
                llama_fork_common_sampling_params.grammar(p, arena.allocateFrom(grammar));
                llama_fork_common_sampling_params.grammar_type(p, chat.grammarType());
                llama_fork_common_sampling_params.grammar_lazy(p, chat.lazy());
                llama_fork_common_sampling_params.generation_prompt(p, arena.allocateFrom(chat.generationPrompt()));
                List<ChatPrompt.Trigger> triggers = chat.triggers();
                MemorySegment ts = llama_fork_common_grammar_trigger.allocateArray(Math.max(1, triggers.size()), arena);
                for (int t = 0; t < triggers.size(); t++) {
                    MemorySegment one = llama_fork_common_grammar_trigger.asSlice(ts, t);
                    llama_fork_common_grammar_trigger.type(one, triggers.get(t).type());
                    llama_fork_common_grammar_trigger.value(one, arena.allocateFrom(triggers.get(t).value()));
                    llama_fork_common_grammar_trigger.token(one, triggers.get(t).token());
                }
                llama_fork_common_sampling_params.grammar_triggers(p, ts);
                llama_fork_common_sampling_params.n_grammar_triggers(p, triggers.size());
            }

            NativeLog.clearNativeError();
            MemorySegment sampler = llama_h.llama_fork_common_sampler_init(model.handle(), p);
            if (sampler.equals(MemorySegment.NULL)) {
                throw new InvalidArgumentException("invalid sampling options: " + NativeStrings.lastError()
                        + (grammar != null ? NativeLog.nativeErrorSuffix() : ""));
            }
            for (int t : prompt) {
                llama_h.llama_fork_common_sampler_accept_prompt(sampler, t);
            }
            return sampler;
        }
    }

    static void free(MemorySegment sampler) {
        llama_h.llama_fork_common_sampler_free(sampler);
    }

    /**
     * A JSON schema as a GBNF grammar, by upstream's {@code json_schema_to_grammar}.
     *
     * @throws InvalidArgumentException if the text is not JSON or the schema is not supported
     */
    static String grammarOf(String jsonSchema) {
        try (Arena arena = Arena.ofConfined()) {
            return NativeStrings.take(llama_h.llama_fork_common_json_schema_to_grammar(arena.allocateFrom(jsonSchema)),
                    "turning the JSON schema into a grammar");
        }
    }
}
