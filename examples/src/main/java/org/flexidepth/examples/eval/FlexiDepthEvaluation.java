package org.flexidepth.examples.eval;

import org.flexidepth.tools.DefaultModel;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.FlexiDepthTrainer;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.LlamaException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Sampling;
import org.flexidepth.llama.SkipFamily;
import org.flexidepth.gguf.GgufReader;
import org.flexidepth.gguf.GgufWriter;
import org.flexidepth.tools.PluginFormat;
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
import java.util.stream.IntStream;

/**
 * The FlexiDepth demonstration: trains plug-ins for a base model at several values of alpha
 * (cached), then measures perplexity and layers used per token on evaluation texts next to the
 * base model and two static baselines at equal layers (ShortGPT layer removal, early exit), and
 * layers used per generated token on contrasting tasks. Writes results.json and report.html.
 *
 * <pre>FlexiDepthEvaluation [--out build/flexidepth-demo] [--alphas 0.001,0.003,0.01] [--tokens 200000] [--lr 0.0001]
 *     [--windows N (default: whole texts)] [--prompts 20] [--threads N] [--retrain]</pre>
 */
public final class FlexiDepthEvaluation {
    /**
     * What to run. {@code evalTexts}: name to text, scored in non-overlapping windows;
     * {@code calibration}: tokens for ShortGPT's block influence.
     */
    public record Setup(Path model, List<Integer> routedLayers, List<Float> alphas, List<SkipFamily> families, List<Float> familyAlphas,
                        TrainingOptions training,
                        List<Path> trainingFiles, Map<String, String> evalTexts, List<String> calibrationTexts,
                        int window, int maxWindows, List<TaskPrompts.Task> tasks, int maxNewTokens, int threads, Path out) {
        /** {@code families}: the skip families besides FlexiDepth's to train at each of {@code familyAlphas} and evaluate. */
        public Setup {
            families = List.copyOf(families);
            familyAlphas = List.copyOf(familyAlphas);
        }

        List<Float> alphas(SkipFamily family) {
            return family == SkipFamily.LAYER ? alphas : familyAlphas;
        }
    }

    private FlexiDepthEvaluation() {
    }

    static String label(float alpha) {
        return "alpha=" + alpha;
    }

    static Path pluginPath(Path out, float alpha) {
        return pluginPath(out, SkipFamily.LAYER, alpha);
    }

    /** FlexiDepth's plug-ins keep the names of the runs before there were families, so their caches stay valid. */
    static Path pluginPath(Path out, SkipFamily family, float alpha) {
        String prefix = family == SkipFamily.LAYER ? "plugin" : "plugin-" + family.name().toLowerCase(Locale.ROOT);
        return out.resolve(String.format(Locale.ROOT, "%s-alpha-%s.gguf", prefix, Float.toString(alpha)));
    }

    /** FlexiDepth's family first, then the others asked for. */
    static List<SkipFamily> withFlexiDepth(List<SkipFamily> families) {
        List<SkipFamily> all = new ArrayList<>(List.of(SkipFamily.LAYER));
        families.stream().filter(f -> f != SkipFamily.LAYER).forEach(all::add);
        return all;
    }

    /** Trains the plug-ins that are not cached in {@code setup.out()} yet. */
    public static void train(LlamaModel model, Setup setup, PrintStream log) {
        for (SkipFamily family : withFlexiDepth(setup.families())) {
            for (float alpha : setup.alphas(family)) {
                train(model, setup, family, alpha, log);
            }
        }
    }

    private static void train(LlamaModel model, Setup setup, SkipFamily family, float alpha, PrintStream log) {
        Path plugin = pluginPath(setup.out(), family, alpha);
        if (Files.isRegularFile(plugin)) {
            log.printf("cached: %s%n", plugin);
            return;
        }
        TrainingOptions options = setup.training().toBuilder().alpha(alpha).routedLayers(setup.routedLayers()).skipFamily(family)
                .threads(setup.threads()).resume(true).build();
        log.printf("training %s (%s, alpha %s, %d tokens, layers %s)%n", plugin.getFileName(), family, alpha, options.tokenBudget(),
                setup.routedLayers());
        long[] next = {0};
        var result = FlexiDepthTrainer.create(model, options).train(TrainingData.textFiles(setup.trainingFiles()), plugin, p -> {
            if (p.step() >= next[0] || p.step() == p.totalSteps()) {
                next[0] = p.step() + Math.max(1, p.totalSteps() / 10);
                log.printf(Locale.ROOT, "  step %d/%d  L_lm %.3f  L_skip %.2f  layers %.2f  %.0f tok/s  ETA %ds%n", p.step(), p.totalSteps(),
                        p.lmLoss(), p.skipLoss(), p.meanLayers(), p.tokensPerSecond(), p.remaining().toSeconds());
            }
        });
        log.printf("  done in %ds%n", result.elapsed().toSeconds());
    }

    public static EvaluationReport run(Setup setup, PrintStream log) throws IOException {
        EvaluationReport report = new EvaluationReport();
        try (LlamaModel model = LlamaModel.load(setup.model())) {
            int nLayer = model.info().layers();
            report.setup("model", setup.model().getFileName().toString());
            report.setup("layers", nLayer);
            report.setup("routed_layers", setup.routedLayers());
            report.setup("alphas", setup.alphas().stream().map(a -> (double) a).toList());
            report.setup("training_tokens_per_plugin", setup.training().tokenBudget());
            report.setup("training_context", setup.training().contextLength());
            report.setup("learning_rate", (double) setup.training().learningRate());
            report.setup("training_files", setup.trainingFiles().size());
            report.setup("training_folders", setup.trainingFiles().stream().map(p -> String.valueOf(p.toAbsolutePath().getParent().getFileName()))
                    .distinct().toList());
            report.setup("eval_texts", List.copyOf(setup.evalTexts().keySet()));
            report.setup("eval_window_tokens", setup.window());
            report.setup("eval_max_windows", setup.maxWindows() == Integer.MAX_VALUE ? "all" : String.valueOf(setup.maxWindows()));
            train(model, setup, log);

            Map<String, int[]> evalTokens = new LinkedHashMap<>();
            setup.evalTexts().forEach((name, text) -> evalTokens.put(name, model.tokenize(text, false, false)));
            report.setup("eval_text_tokens", evalTokens.entrySet().stream().map(e -> e.getKey() + ": " + e.getValue().length).toList());
            SessionOptions so = SessionOptions.builder().contextSize(setup.window()).batchSize(setup.window())
                    .threads(setup.threads()).threadsBatch(setup.threads()).build();
            try (Session session = model.newSession(so)) {
                for (var e : evalTokens.entrySet()) {
                    Perplexity.Result r = Perplexity.measure(session, e.getValue(), setup.window(), setup.maxWindows());
                    report.add(new EvaluationReport.Point("base", "base model", e.getKey(), nLayer, r.perplexity()));
                    log.printf(Locale.ROOT, "base            %-28s perplexity %8.2f  layers %.2f%n", e.getKey(), r.perplexity(), (double) nLayer);
                }
                for (float alpha : setup.alphas()) {
                    try (FlexiDepthPlugin plugin = model.loadFlexiDepth(pluginPath(setup.out(), alpha))) {
                        session.attach(plugin, plugin.defaultThreshold());
                        for (var e : evalTokens.entrySet()) {
                            Perplexity.Result r = Perplexity.measure(session, e.getValue(), setup.window(), setup.maxWindows());
                            report.add(new EvaluationReport.Point("flexidepth", label(alpha), e.getKey(), r.meanLayers(), r.perplexity()));
                            log.printf(Locale.ROOT, "%-15s %-28s perplexity %8.2f  layers %.2f%n", label(alpha), e.getKey(), r.perplexity(), r.meanLayers());
                        }
                        session.detach();
                    }
                }
                staticBaselines(model, session, setup, evalTokens, report, log);
                skipFamilies(model, session, setup, evalTokens, report, log);
            }
            tasks(model, setup, report, log);
        }
        report.write(setup.out());
        log.printf("wrote %s and %s%n", setup.out().resolve("results.json"), setup.out().resolve("report.html"));
        return report;
    }

    private static void staticBaselines(LlamaModel model, Session session, Setup setup, Map<String, int[]> evalTokens,
                                        EvaluationReport report, PrintStream log) throws IOException {
        int nLayer = model.info().layers();
        List<Integer> calibration = new ArrayList<>();
        for (String text : setup.calibrationTexts()) {
            int[] t = model.tokenize(text, true, false);
            int n = t.length / setup.window() * setup.window();
            Arrays.stream(t, 0, n).forEach(calibration::add);
        }
        double[] bi = model.blockInfluence(calibration.stream().mapToInt(Integer::intValue).toArray(), setup.window(), setup.threads());
        report.blockInfluence("calibration (" + calibration.size() + " tokens of the training books)", bi);
        log.printf(Locale.ROOT, "block influence: %s%n", Arrays.toString(Arrays.stream(bi).map(v -> Math.round(v * 1e4) / 1e4).toArray()));
        Path removal = setup.out().resolve("layer-removal-plugin.gguf");
        StaticBaselines.writeRemovalPlugin(removal, model.info());
        int maxRemoved = nLayer - setup.routedLayers().get(0);
        List<StaticBaselines.Config> configs = new ArrayList<>(StaticBaselines.shortGpt(bi, maxRemoved));
        configs.addAll(StaticBaselines.earlyExit(nLayer, maxRemoved));
        try (FlexiDepthPlugin plugin = model.loadFlexiDepth(removal)) {
            session.attach(plugin, 0.5f);
            for (StaticBaselines.Config c : configs) {
                session.forceRouting(c.routing(nLayer));
                for (var e : evalTokens.entrySet()) {
                    Perplexity.Result r = Perplexity.measure(session, e.getValue(), setup.window(), setup.maxWindows());
                    String label = c.method() + " without " + c.removed();
                    report.add(new EvaluationReport.Point(c.method(), label, e.getKey(), r.meanLayers(), r.perplexity()));
                    log.printf(Locale.ROOT, "%-38s %-28s perplexity %8.2f  layers %.2f%n", label, e.getKey(), r.perplexity(), r.meanLayers());
                }
            }
            session.detach();
        }
    }

    /**
     * Every family's plug-ins, FlexiDepth's among them, at layer equivalents (SkipCost), and the
     * paper's K/V ablation: FlexiDepth's plug-ins run as layer_no_kv without retraining (the
     * trained layer_no_kv plug-ins are the ablation with retraining).
     */
    private static void skipFamilies(LlamaModel model, Session session, Setup setup, Map<String, int[]> evalTokens,
                                     EvaluationReport report, PrintStream log) throws IOException {
        if (setup.families().isEmpty()) {
            return;
        }
        SkipCost cost = SkipCost.of(setup.model());
        int nLayer = model.info().layers(), embd = model.info().embeddingSize();
        for (var e : evalTokens.entrySet()) {
            double base = report.points().stream().filter(p -> p.method().equals("base") && p.dataset().equals(e.getKey()))
                    .findFirst().orElseThrow().perplexity();
            report.add(new EvaluationReport.FamilyPoint("base", "base model", e.getKey(), nLayer, nLayer, base));
        }
        record Run(String family, String label, Path plugin) {
        }
        List<Run> runs = new ArrayList<>();
        for (SkipFamily family : withFlexiDepth(setup.families())) {
            for (float alpha : setup.alphas(family)) {
                runs.add(new Run(family.name().toLowerCase(Locale.ROOT), label(alpha), pluginPath(setup.out(), family, alpha)));
            }
        }
        for (float alpha : setup.alphas()) {
            Path dropped = setup.out().resolve(String.format(Locale.ROOT, "kv-dropped-alpha-%s.gguf", Float.toString(alpha)));
            try (GgufReader r = GgufReader.open(pluginPath(setup.out(), alpha))) {
                GgufWriter.copyOf(r).putString(PluginFormat.SKIP_KEY, "layer_no_kv").write(dropped);
            }
            runs.add(new Run("kv_dropped", label(alpha), dropped));
        }
        for (Run run : runs) {
            try (FlexiDepthPlugin plugin = model.loadFlexiDepth(run.plugin())) {
                session.attach(plugin, plugin.defaultThreshold());
                for (var e : evalTokens.entrySet()) {
                    Perplexity.Result r = Perplexity.measure(session, e.getValue(), setup.window(), setup.maxWindows());
                    double equivalents = cost.layerEquivalents(r.meanLayers(), nLayer, plugin.skipFamily(), plugin.adapterSize(), embd);
                    report.add(new EvaluationReport.FamilyPoint(run.family(), run.label(), e.getKey(), r.meanLayers(), equivalents, r.perplexity()));
                    log.printf(Locale.ROOT, "%-11s %-13s %-28s perplexity %8.2f  layers %.2f  layer equivalents %.2f%n", run.family(), run.label(),
                            e.getKey(), r.perplexity(), r.meanLayers(), equivalents);
                }
                session.detach();
            }
        }
    }

    private static void tasks(LlamaModel model, Setup setup, EvaluationReport report, PrintStream log) {
        SessionOptions so = SessionOptions.builder().contextSize(512).batchSize(512).threads(setup.threads()).threadsBatch(setup.threads()).build();
        for (float alpha : setup.alphas()) {
            try (FlexiDepthPlugin plugin = model.loadFlexiDepth(pluginPath(setup.out(), alpha));
                 Session session = model.newSession(so)) {
                session.attach(plugin, plugin.defaultThreshold());
                for (TaskPrompts.Task task : setup.tasks()) {
                    double layers = 0, referenceLayers = 0;
                    long tokens = 0, referenceTokens = 0;
                    int exact = 0;
                    for (TaskPrompts.Prompt p : task.prompts()) {
                        session.clear();
                        // as many tokens as the reference answer has: what follows it is not the task
                        int answerLength = Math.max(1, Math.min(setup.maxNewTokens(), model.tokenize(p.expected(), false, false).length));
                        GenerationOptions go = GenerationOptions.builder().maxTokens(answerLength).sampling(Sampling.greedy())
                                .stopString("\n").build();
                        GenerationResult g = session.generate(p.text(), go, t -> { });
                        for (Token t : g.tokens()) {
                            if (t.layers().isPresent()) {
                                layers += t.layers().get().layersUsed();
                                tokens++;
                            }
                        }
                        if (task.checkable() && g.text().strip().equals(p.expected().strip())) {
                            exact++;
                        }
                        // the reference answer's tokens, read after the prompt
                        int promptLength = model.tokenize(p.text()).length;
                        var scores = session.score(model.tokenize(p.text() + p.expected()));
                        for (int i = promptLength; i < scores.layers().size(); i++) {
                            referenceLayers += scores.layers().get(i).layersUsed();
                            referenceTokens++;
                        }
                    }
                    double refMean = referenceTokens == 0 ? Double.NaN : referenceLayers / referenceTokens;
                    double mean = tokens == 0 ? Double.NaN : layers / tokens;
                    Optional<Double> match = task.checkable() ? Optional.of(exact / (double) task.prompts().size()) : Optional.empty();
                    report.add(new EvaluationReport.TaskResult(label(alpha), task.name(), task.description(), task.prompts().size(), tokens, mean,
                            refMean, match));
                    log.printf(Locale.ROOT, "%-15s %-18s layers/generated token %.2f over %d tokens, per reference token %.2f%s%n",
                            label(alpha), task.name(), mean, tokens, refMean,
                            match.map(m -> String.format(Locale.ROOT, ", exact %.0f%%", 100 * m)).orElse(""));
                }
            }
        }
    }

    /** The demonstration on flexi-demo-12L with the real texts. */
    static Setup demoSetup(Map<String, String> o) throws IOException {
        Path out = Path.of(o.getOrDefault("--out", "build/flexidepth-demo"));
        List<Float> alphas = Arrays.stream(o.getOrDefault("--alphas", "0.001,0.003,0.01").split(","))
                .map(String::trim).map(Float::parseFloat).toList();
        int threads = Integer.parseInt(o.getOrDefault("--threads", String.valueOf(Runtime.getRuntime().availableProcessors())));
        int windows = Integer.parseInt(o.getOrDefault("--windows", String.valueOf(Integer.MAX_VALUE)));
        int prompts = Integer.parseInt(o.getOrDefault("--prompts", "20"));
        TrainingOptions training = TrainingOptions.builder().tokenBudget(Long.parseLong(o.getOrDefault("--tokens", "200000")))
                .contextLength(256).learningRate(Float.parseFloat(o.getOrDefault("--lr", "0.0001"))).warmupSteps(30).seed(42).build();
        List<Path> books = DemoCorpus.trainingBooks();
        List<Path> trainingFiles = new ArrayList<>(books);
        trainingFiles.addAll(DemoCorpus.stateOfTheUnion());
        Map<String, String> eval = new LinkedHashMap<>();
        eval.put("WikiText-2 test", DemoCorpus.read(DemoCorpus.shared("data/wiki.test.raw")));
        eval.put("held-out book (" + DemoCorpus.HELD_OUT_BOOK + ")", DemoCorpus.read(DemoCorpus.heldOutBook()));
        List<String> calibration = new ArrayList<>();
        for (Path b : books) {
            String text = DemoCorpus.read(b);
            calibration.add(text.substring(0, Math.min(text.length(), 6000)));
        }
        List<String> xsum = DemoCorpus.xsumDocuments(prompts + 2);
        List<String> paragraphs = DemoCorpus.bookParagraphs(prompts + 2, 400);
        List<TaskPrompts.Task> tasks = new ArrayList<>();
        tasks.add(TaskPrompts.copy("copy_xsum", "XSum article", xsum, 16));
        tasks.add(TaskPrompts.continuation("continue_xsum", "XSum article", xsum, 40));
        tasks.add(TaskPrompts.copy("copy_gutenberg", "Gutenberg", paragraphs, 16));
        tasks.add(TaskPrompts.continuation("continue_gutenberg", "Gutenberg", paragraphs, 40));
        tasks.addAll(TaskPrompts.numbers(prompts, 5, 11));
        List<SkipFamily> families = o.getOrDefault("--families", "layer_no_kv,attention,ffn").isBlank() ? List.of()
                : Arrays.stream(o.getOrDefault("--families", "layer_no_kv,attention,ffn").split(","))
                        .map(f -> SkipFamily.valueOf(f.trim().toUpperCase(Locale.ROOT))).toList();
        List<Float> familyAlphas = Arrays.stream(o.getOrDefault("--family-alphas", "0.003").split(","))
                .map(String::trim).map(Float::parseFloat).toList();
        if (o.containsKey("--retrain")) {
            for (SkipFamily f : withFlexiDepth(families)) {
                for (float a : f == SkipFamily.LAYER ? alphas : familyAlphas) {
                    Files.deleteIfExists(pluginPath(out, f, a));
                }
            }
        }
        return new Setup(DefaultModel.flexiDemo12L(), IntStream.range(6, 12).boxed().toList(), alphas, families, familyAlphas, training,
                trainingFiles, eval,
                calibration, 256, windows, tasks, 48, threads, out);
    }

    public static void main(String[] args) {
        Map<String, String> o = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--retrain")) {
                o.put("--retrain", "");
            } else if (i + 1 < args.length && args[i].startsWith("--")) {
                o.put(args[i], args[++i]);
            } else {
                System.err.println("usage: FlexiDepthEvaluation [--out DIR] [--alphas A,B,C] [--families layer_no_kv,attention,ffn] "
                        + "[--family-alphas 0.003] [--tokens N] "
                        + "[--lr X] [--windows N] [--prompts N] [--threads N] [--retrain]");
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
