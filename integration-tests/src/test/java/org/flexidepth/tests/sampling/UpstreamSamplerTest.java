package org.flexidepth.tests.sampling;

import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Sampling;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.StopReason;
import org.flexidepth.llama.Token;
import org.flexidepth.tests.api.RealModels;
import org.flexidepth.tools.ProjectPaths;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every sampler of {@link Sampling} picks the same tokens as upstream's {@code common_sampler} on
 * the pristine library (native/tests/reference-common-sampling.cpp), with the same seed, on a real
 * model: the chain order, the parameters and the prompt's part in the penalties are upstream's.
 */
class UpstreamSamplerTest {
    static final int N = 40;
    static final String PROMPT = "Once upon a time";
    static LlamaModel model;
    static Session session;

    @BeforeAll
    static void load() {
        model = LlamaModel.load(RealModels.stories260K());
        session = model.newSession();
    }

    @AfterAll
    static void close() {
        if (session != null) {
            session.close();
        }
        if (model != null) {
            model.close();
        }
    }

    static Stream<Arguments> samplers() {
        Sampling base = Sampling.builder().seed(1234).build();
        return Stream.of(
                Arguments.of("defaults", base, List.of("seed=1234")),
                Arguments.of("greedy with penalties", Sampling.builder().temperature(0).repeatPenalty(1.3f)
                        .frequencyPenalty(0.4f).presencePenalty(0.3f).repeatLastN(16).build(),
                        List.of("temp=0", "penalty_repeat=1.3", "penalty_freq=0.4", "penalty_present=0.3", "penalty_last_n=16")),
                Arguments.of("hot, top-k 5", base.toBuilder().temperature(1.5f).topK(5).topP(1).minP(0).build(),
                        List.of("seed=1234", "temp=1.5", "top_k=5", "top_p=1", "min_p=0")),
                Arguments.of("typical-p", base.toBuilder().typicalP(0.7f).build(), List.of("seed=1234", "typ_p=0.7")),
                Arguments.of("top-n-sigma", base.toBuilder().topNSigma(1.0f).topK(0).build(),
                        List.of("seed=1234", "top_n_sigma=1", "top_k=0")),
                Arguments.of("XTC", base.toBuilder().xtc(0.9f, 0.05f).build(),
                        List.of("seed=1234", "xtc_probability=0.9", "xtc_threshold=0.05")),
                Arguments.of("DRY", base.toBuilder().dry(2.0f, 1.5f, 1, 32).build(),
                        List.of("seed=1234", "dry_multiplier=2", "dry_base=1.5", "dry_allowed_length=1", "dry_penalty_last_n=32")),
                Arguments.of("dynamic temperature", base.toBuilder().dynamicTemperature(0.6f, 1.5f).build(),
                        List.of("seed=1234", "dynatemp_range=0.6", "dynatemp_exponent=1.5")),
                Arguments.of("mirostat 1", base.toBuilder().mirostat(Sampling.Mirostat.V1, 3, 0.2f).build(),
                        List.of("seed=1234", "mirostat=1", "mirostat_tau=3", "mirostat_eta=0.2")),
                Arguments.of("mirostat 2", base.toBuilder().mirostat(Sampling.Mirostat.V2, 4, 0.1f).build(),
                        List.of("seed=1234", "mirostat=2", "mirostat_tau=4", "mirostat_eta=0.1")),
                Arguments.of("logit bias", base.toBuilder().logitBias(300, 4).logitBias(301, Float.NEGATIVE_INFINITY).build(),
                        List.of("seed=1234", "logit_bias=300:4", "logit_bias=301:-inf")),
                Arguments.of("min-keep and min-p", base.toBuilder().minP(0.3f).minKeep(3).build(),
                        List.of("seed=1234", "min_p=0.3", "min_keep=3")),
                Arguments.of("ignore end of generation", Sampling.builder().temperature(0).ignoreEndOfGeneration(true).build(),
                        List.of("temp=0", "ignore_eos=1")));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("samplers")
    void sameTokensAsUpstreamCommonSampler(String name, Sampling sampling, List<String> args) throws Exception {
        List<Integer> expected = reference(args);
        List<Integer> got = generate(sampling);
        assertEquals(expected, got, name);
        assertTrue(got.size() >= 8, name + ": too short to compare anything: " + got);
    }

    /** The samplers really act: the settings above do not all give the defaults' tokens. */
    @Test
    void theSettingsChangeTheOutput() {
        Set<List<Integer>> outputs = new HashSet<>();
        samplers().forEach(a -> outputs.add(generate((Sampling) a.get()[1])));
        assertTrue(outputs.size() >= 10, "only " + outputs.size() + " distinct outputs from 13 settings");
    }

    @Test
    void aGrammarConstrainsAsUpstream(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        String grammar = "root ::= (\"the\" | \"a\" | \"dog\" | \" \" | \"cat\" | \".\")+";
        Path file = dir.resolve("g.gbnf");
        Files.writeString(file, grammar);
        Sampling s = Sampling.builder().seed(7).grammar(grammar).build();
        assertEquals(reference(List.of("seed=7", "grammar_file=" + file)), generate(s));
    }

    @Test
    void aJsonSchemaConstrainsAsUpstream(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        String schema = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":8},"
                + "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":99}},\"required\":[\"name\",\"age\"]}";
        Path file = dir.resolve("s.json");
        Files.writeString(file, schema);
        Sampling s = Sampling.builder().seed(7).jsonSchema(schema).build();
        assertEquals(reference(List.of("seed=7", "json_schema_file=" + file)), generate(s));
    }

    /** Top-N alternatives per token: the same tokens and log-probabilities as the raw logits give the reference. */
    @Test
    void topLogProbabilitiesAsTheLogitsSay() throws Exception {
        int n = 5;
        Path exe = ProjectPaths.nativeBuild().resolve("pristine-tools/reference-common-sampling");
        Process p = new ProcessBuilder(List.of(exe.toString(), RealModels.stories260K().toString(), "16", PROMPT, "temp=0",
                "top_logprobs=" + n)).start();
        List<String> lines = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip().lines().toList();
        assertEquals(0, p.waitFor());
        session.clear();
        GenerationResult r = session.complete(PROMPT, GenerationOptions.builder().maxTokens(16).topLogProbabilities(n).build());
        for (int step = 0; step < r.tokens().size() && step + 1 < lines.size(); step++) {
            Token t = r.tokens().get(step);
            String[] want = lines.get(step + 1).split(" ");
            assertEquals(n, t.alternatives().size());
            for (int k = 0; k < n; k++) {
                assertEquals(Integer.parseInt(want[2 * k]), t.alternatives().get(k).id(), "step " + step + ", rank " + k);
                assertEquals(Double.parseDouble(want[2 * k + 1]), t.alternatives().get(k).logProbability(), 1e-4, "step " + step + ", rank " + k);
            }
            assertEquals(t.id(), t.alternatives().get(0).id(), "greedy takes the most likely");
            assertEquals(t.logProbability(), t.alternatives().get(0).logProbability(), 1e-6);
        }
        assertTrue(r.tokens().size() >= 8);
        assertTrue(session.complete(PROMPT, GenerationOptions.builder().maxTokens(2).build()).tokens().get(0).alternatives().isEmpty());
    }

    static List<Integer> generate(Sampling sampling) {
        session.clear();
        GenerationResult r = session.complete(PROMPT, GenerationOptions.builder().maxTokens(N).sampling(sampling).build());
        List<Token> tokens = r.tokens();
        if (r.stopReason() == StopReason.END_OF_GENERATION) {
            tokens = tokens.subList(0, tokens.size() - 1); // the reference does not print the end token
        }
        List<Integer> ids = new ArrayList<>();
        tokens.forEach(t -> ids.add(t.id()));
        return ids;
    }

    static List<Integer> reference(List<String> args) throws IOException, InterruptedException {
        Path exe = ProjectPaths.nativeBuild().resolve("pristine-tools/reference-common-sampling");
        assertTrue(Files.isExecutable(exe), exe + " missing: build the native tree (see README)");
        List<String> cmd = new ArrayList<>(List.of(exe.toString(), RealModels.stories260K().toString(), String.valueOf(N), PROMPT));
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), "reference-common-sampling failed: " + err);
        return out.isEmpty() ? List.of() : Arrays.stream(out.split(" ")).map(Integer::valueOf).toList();
    }
}
