package org.flexidepth.examples.eval;

import org.flexidepth.tools.DefaultModel;
import org.flexidepth.tools.JsonFiles;

import org.flexidepth.llama.Dmtd;
import org.flexidepth.llama.DmtdTrainer;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.LlamaException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.ModelOptions;
import org.flexidepth.llama.Sampling;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.llama.Token;
import org.flexidepth.llama.TrainingData;
import org.flexidepth.llama.TrainingOptions;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * The DMTD demonstration: fine-tunes a base model for direct multi-token decoding at several
 * cycles (cached), then measures, next to the base model, perplexity under DMTD's schedule with
 * teacher forcing (cyclical masking, {@code Session.score} in a DMTD session), the share of
 * greedy tokens that equal the base model's, and the layers a token uses, each with heads that refill
 * and without refill; with a model fine-tuned elsewhere beside them. Writes {@code dmtd-results.json}.
 *
 * <pre>DmtdEvaluation [--out build/dmtd-demo] [--cycles 2,3,4] [--thinking 8] [--tokens 200000] [--lr 0.0003]
 *     [--windows 400] [--prompts 20] [--threads N] [--retrain | --elsewhere-only]</pre>
 */
public final class DmtdEvaluation {
    /**
     * What to run: the base model and the cycles to train it for with its first {@code thinking}
     * layers thinking (none with {@code trainHere} false); texts scored in windows; prompts for greedy
     * agreement; a model fine-tuned elsewhere (with its own split), evaluated at every cycle too.
     */
    public record Setup(Path model, List<Integer> cycles, boolean trainHere, int thinking, TrainingOptions training, List<Path> trainingFiles,
                        Map<String, String> evalTexts, int window, int maxWindows, List<String> prompts, int greedyTokens,
                        Optional<Path> trainedElsewhere, int threads, Path out) {
    }

    /** One model under one cycle, with refill or without, on one text. */
    public record Row(String model, int cycle, boolean refill, String dataset, double layersPerToken, double perplexity, double basePerplexity,
                      double greedyAgreement) {
        double perplexityRatio() {
            return basePerplexity / perplexity;
        }
    }

    private DmtdEvaluation() {
    }

    static Path modelPath(Path out, int cycle) {
        return out.resolve("dmtd-tau" + cycle + ".gguf");
    }

    /** Trains the models that are not cached in {@code setup.out()} yet. */
    static void train(Setup setup, PrintStream log) throws IOException {
        Files.createDirectories(setup.out());
        for (int cycle : setup.trainHere() ? setup.cycles() : List.<Integer>of()) {
            Path out = modelPath(setup.out(), cycle);
            if (Files.isRegularFile(out)) {
                log.printf("cached: %s%n", out);
                continue;
            }
            // every run starts from the base model's weights, loaded writable
            try (LlamaModel base = LlamaModel.load(setup.model(), ModelOptions.builder().mmap(false).repackWeights(false).build())) {
                TrainingOptions options = setup.training().toBuilder().threads(setup.threads()).resume(true).build();
                log.printf("training %s (cycle %d, %d thinking layers, %d tokens)%n", out.getFileName(), cycle, setup.thinking(), options.tokenBudget());
                long[] next = {0};
                var r = DmtdTrainer.create(base, Dmtd.cycle(cycle).withThinkingLayers(setup.thinking()), options)
                        .train(TrainingData.textFiles(setup.trainingFiles()), out, p -> {
                            if (p.step() >= next[0] || p.step() == p.totalSteps()) {
                                next[0] = p.step() + Math.max(1, p.totalSteps() / 10);
                                log.printf(Locale.ROOT, "  step %d/%d  L_lm %.3f  %.0f tok/s  ETA %ds%n", p.step(), p.totalSteps(), p.lmLoss(),
                                        p.tokensPerSecond(), p.remaining().toSeconds());
                            }
                        });
                log.printf("  done in %ds%n", r.elapsed().toSeconds());
            }
        }
    }

    public static List<Row> run(Setup setup, PrintStream log) throws IOException {
        train(setup, log);
        List<Row> rows = new ArrayList<>();
        Map<String, Double> basePpl = new LinkedHashMap<>();
        List<List<Integer>> baseGreedy;
        int nLayer;
        try (LlamaModel base = LlamaModel.load(setup.model())) {
            nLayer = base.info().layers();
            for (var e : setup.evalTexts().entrySet()) {
                double ppl = perplexity(base, Optional.empty(), e.getValue(), setup);
                basePpl.put(e.getKey(), ppl);
                rows.add(new Row("base", 1, true, e.getKey(), nLayer, ppl, ppl, 1.0));
                log.printf(Locale.ROOT, "%-22s %-28s perplexity %8.2f  layers %.2f%n", "base", e.getKey(), ppl, (double) nLayer);
            }
            baseGreedy = greedy(base, Optional.empty(), setup);
        }
        record Run(String label, Path model, List<Integer> cycles) {
        }
        List<Run> runs = new ArrayList<>();
        for (int cycle : setup.trainHere() ? setup.cycles() : List.<Integer>of()) {
            runs.add(new Run("trained here, tau " + cycle, modelPath(setup.out(), cycle), List.of(cycle)));
        }
        setup.trainedElsewhere().ifPresent(p -> runs.add(new Run(p.getFileName().toString(), p, setup.cycles())));
        for (Run run : runs) {
            try (LlamaModel m = LlamaModel.load(run.model())) {
                int thinking = org.flexidepth.gguf.GgufReader.readHeader(run.model()).require("dmtd.thinking_layers").asInt();
                for (int cycle : run.cycles()) {
                    for (boolean refill : new boolean[] {true, false}) {
                        Dmtd d = Dmtd.cycle(cycle).withRefill(refill);
                        double layers = (nLayer + (cycle - 1) * (double) (nLayer - thinking)) / cycle;
                        double agreement = agreement(baseGreedy, greedy(m, Optional.of(d), setup));
                        for (var e : setup.evalTexts().entrySet()) {
                            double ppl = perplexity(m, Optional.of(d), e.getValue(), setup);
                            rows.add(new Row(run.label(), cycle, refill, e.getKey(), layers, ppl, basePpl.get(e.getKey()), agreement));
                            log.printf(Locale.ROOT, "%-22s tau %d%s %-28s perplexity %8.2f  layers %.2f  greedy = base %.0f%%%n", run.label(),
                                    cycle, refill ? "" : " no refill", e.getKey(), ppl, layers, 100 * agreement);
                        }
                    }
                }
            }
        }
        write(setup, rows, log);
        return rows;
    }

    private static double perplexity(LlamaModel m, Optional<Dmtd> dmtd, String text, Setup setup) {
        SessionOptions.Builder so = SessionOptions.builder().contextSize(setup.window()).batchSize(setup.window())
                .threads(setup.threads()).threadsBatch(setup.threads());
        dmtd.ifPresent(so::dmtd);
        try (Session s = m.newSession(so.build())) {
            return Perplexity.measure(s, m.tokenize(text, false, false), setup.window(), setup.maxWindows()).perplexity();
        }
    }

    private static List<List<Integer>> greedy(LlamaModel m, Optional<Dmtd> dmtd, Setup setup) {
        SessionOptions.Builder so = SessionOptions.builder().contextSize(setup.window()).threads(setup.threads()).threadsBatch(setup.threads());
        dmtd.ifPresent(so::dmtd);
        List<List<Integer>> out = new ArrayList<>();
        try (Session s = m.newSession(so.build())) {
            for (String prompt : setup.prompts()) {
                s.clear();
                out.add(s.generate(prompt, GenerationOptions.builder().maxTokens(setup.greedyTokens()).sampling(Sampling.greedy()).build(), t -> { })
                        .tokens().stream().map(Token::id).toList());
            }
        }
        return out;
    }

    /** The share of generated tokens equal to the base model's, up to each continuation's first difference and after. */
    static double agreement(List<List<Integer>> base, List<List<Integer>> other) {
        long same = 0, all = 0;
        for (int i = 0; i < base.size(); i++) {
            List<Integer> a = base.get(i), b = other.get(i);
            for (int j = 0; j < Math.min(a.size(), b.size()); j++) {
                same += a.get(j).equals(b.get(j)) ? 1 : 0;
            }
            all += Math.max(a.size(), b.size());
        }
        return all == 0 ? Double.NaN : same / (double) all;
    }

    private static void write(Setup setup, List<Row> rows, PrintStream log) throws IOException {
        StringBuilder b = new StringBuilder("{\n  \"setup\": {\"model\": ").append(JsonFiles.quote(setup.model().getFileName().toString()))
                .append(", \"thinking_layers\": ").append(setup.thinking())
                .append(", \"training_tokens_per_model\": ").append(setup.training().tokenBudget())
                .append(", \"learning_rate\": ").append(EvaluationReport.num(setup.training().learningRate()))
                .append(", \"eval_window_tokens\": ").append(setup.window())
                .append(", \"eval_max_windows\": ").append(setup.maxWindows())
                .append(", \"greedy_prompts\": ").append(setup.prompts().size())
                .append(", \"greedy_tokens\": ").append(setup.greedyTokens()).append("},\n  \"rows\": [");
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            b.append(i == 0 ? "\n" : ",\n").append(String.format(Locale.ROOT,
                    "    {\"model\": %s, \"cycle\": %d, \"refill\": %b, \"dataset\": %s, \"layers_per_token\": %s, \"perplexity\": %s, "
                            + "\"base_perplexity\": %s, \"perplexity_ratio\": %s, \"greedy_agreement\": %s}",
                    JsonFiles.quote(r.model()), r.cycle(), r.refill(), JsonFiles.quote(r.dataset()), EvaluationReport.num(r.layersPerToken()),
                    EvaluationReport.num(r.perplexity()), EvaluationReport.num(r.basePerplexity()), EvaluationReport.num(r.perplexityRatio()),
                    EvaluationReport.num(r.greedyAgreement())));
        }
        b.append("\n  ]\n}\n");
        Files.writeString(setup.out().resolve("dmtd-results.json"), b.toString());
        log.printf("wrote %s%n", setup.out().resolve("dmtd-results.json"));
    }

    /** The demonstration on flexi-demo-12L, with dmtd-demo-12L beside it. */
    static Setup demoSetup(Map<String, String> o) throws IOException {
        Path out = Path.of(o.getOrDefault("--out", "build/dmtd-demo"));
        List<Integer> cycles = Arrays.stream(o.getOrDefault("--cycles", "2,3,4").split(",")).map(String::trim).map(Integer::parseInt).toList();
        int threads = Integer.parseInt(o.getOrDefault("--threads", String.valueOf(Runtime.getRuntime().availableProcessors())));
        TrainingOptions training = TrainingOptions.builder().tokenBudget(Long.parseLong(o.getOrDefault("--tokens", "200000")))
                .contextLength(256).learningRate(Float.parseFloat(o.getOrDefault("--lr", "0.0003"))).warmupSteps(30).seed(42)
                .checkpointEvery(100).build();
        List<Path> trainingFiles = new ArrayList<>(DemoCorpus.trainingBooks());
        trainingFiles.addAll(DemoCorpus.stateOfTheUnion());
        Map<String, String> eval = new LinkedHashMap<>();
        eval.put("WikiText-2 test", DemoCorpus.read(DemoCorpus.shared("data/wiki.test.raw")));
        eval.put("held-out book (" + DemoCorpus.HELD_OUT_BOOK + ")", DemoCorpus.read(DemoCorpus.heldOutBook()));
        int prompts = Integer.parseInt(o.getOrDefault("--prompts", "20"));
        List<String> starts = DemoCorpus.bookParagraphs(prompts, 200).stream().map(p -> p.substring(0, Math.min(p.length(), 120))).toList();
        if (o.containsKey("--retrain")) {
            for (int c : cycles) {
                Files.deleteIfExists(modelPath(out, c));
            }
        }
        return new Setup(DefaultModel.flexiDemo12L(), cycles, !o.containsKey("--elsewhere-only"), Integer.parseInt(o.getOrDefault("--thinking", "8")), training, trainingFiles,
                eval, 256, Integer.parseInt(o.getOrDefault("--windows", "400")), starts, 32, Optional.of(DefaultModel.dmtdDemo12L()),
                threads, out);
    }

    public static void main(String[] args) {
        Map<String, String> o = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--retrain") || args[i].equals("--elsewhere-only")) {
                o.put(args[i], "");
            } else if (i + 1 < args.length && args[i].startsWith("--")) {
                o.put(args[i], args[++i]);
            } else {
                System.err.println("usage: DmtdEvaluation [--out DIR] [--cycles 2,3,4] [--thinking 8] [--tokens N] [--lr X] [--windows N] "
                        + "[--prompts N] [--threads N] [--retrain | --elsewhere-only]");
                System.exit(2);
            }
        }
        try {
            run(demoSetup(o), System.out);
        } catch (IOException | LlamaException | NumberFormatException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(1);
        }
    }
}
