package org.flexidepth.examples.chat;

import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.Sampling;
import org.flexidepth.llama.SessionOptions;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/** The chat program's command line. */
record ChatOptions(Optional<Path> model, Optional<String> prompt, Optional<String> template, Optional<String> system,
                   Optional<Path> flexidepth, Optional<Float> tau, SessionOptions session, GenerationOptions generation) {

    static final String USAGE = """
            usage: chat [--model FILE.gguf] [--prompt TEXT] [options]
              --model FILE        GGUF model (default: stories260K from ../shared, converted on first run)
              --prompt TEXT       answer once and exit (otherwise: interactive, one message per line, /exit to quit)
              --system TEXT       system message (chat models)
              --template T        chat template instead of the model's own: a llama.cpp name (chatml, llama3, ...) or Jinja source
              --max-tokens N      tokens per reply (default 256)
              --temp T            temperature, 0 = greedy (default 0.8)
              --top-k K  --top-p P  --min-p P  --repeat-penalty R  --seed S
              --grammar-file F    constrain replies with a GBNF grammar
              --ctx N             context size (default: the model's)
              --threads N         threads (default: all cores)
              --flexidepth FILE   attach a FlexiDepth plug-in; shows the layers each token used
              --tau T             FlexiDepth threshold (default: the plug-in's, usually 0.5)
              --dmtd TAU          direct multi-token decoding in cycles of TAU tokens (a DMTD model, e.g. dmtd-demo-12L);
                                  tokens the last layers decoded alone are underlined (or marked d below the reply)
              --dmtd-refill B     true (default): cycle heads refill the thinking layers; false: they do not (cheaper)
            """;

    /** Every option; each takes a value. */
    private static final java.util.Set<String> OPTIONS = java.util.Set.of("--model", "-m", "--prompt", "-p", "--system",
            "--template", "--max-tokens", "-n", "--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty", "--seed",
            "--grammar-file", "--ctx", "-c", "--threads", "-t", "--flexidepth", "--tau", "--dmtd", "--dmtd-refill");

    private static String readGrammar(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("grammar file not found: " + file);
        }
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read grammar file " + file + ": " + e.getMessage());
        }
    }

    static ChatOptions parse(String[] args) throws IOException {
        Path model = null, flexidepth = null;
        Float tau = null;
        Integer dmtdCycle = null;
        Boolean dmtdRefill = null;
        String prompt = null, template = null, system = null;
        SessionOptions.Builder session = SessionOptions.builder();
        GenerationOptions.Builder gen = GenerationOptions.builder();
        Sampling.Builder sampling = Sampling.builder();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("-h") || a.equals("--help")) {
                throw new IllegalArgumentException("");
            }
            if (!OPTIONS.contains(a)) {
                throw new IllegalArgumentException("unknown option " + a);
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException("missing value for " + a);
            }
            String v = args[++i];
            try {
                switch (a) {
                    case "--model", "-m" -> model = Path.of(v);
                    case "--prompt", "-p" -> prompt = v;
                    case "--system" -> system = v;
                    case "--template" -> template = v;
                    case "--max-tokens", "-n" -> gen.maxTokens(Integer.parseInt(v));
                    case "--temp" -> sampling.temperature(Float.parseFloat(v));
                    case "--top-k" -> sampling.topK(Integer.parseInt(v));
                    case "--top-p" -> sampling.topP(Float.parseFloat(v));
                    case "--min-p" -> sampling.minP(Float.parseFloat(v));
                    case "--repeat-penalty" -> sampling.repeatPenalty(Float.parseFloat(v));
                    case "--seed" -> sampling.seed(Long.parseLong(v));
                    case "--grammar-file" -> sampling.grammar(readGrammar(Path.of(v)));
                    case "--ctx", "-c" -> session.contextSize(Integer.parseInt(v));
                    case "--threads", "-t" -> session.threads(Integer.parseInt(v));
                    case "--flexidepth" -> flexidepth = Path.of(v);
                    case "--tau" -> tau = Float.parseFloat(v);
                    case "--dmtd" -> dmtdCycle = Integer.parseInt(v);
                    case "--dmtd-refill" -> dmtdRefill = switch (v) {
                        case "true" -> true;
                        case "false" -> false;
                        default -> throw new IllegalArgumentException("--dmtd-refill is true or false, not " + v);
                    };
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("not a number for " + a + ": " + v);
            }
        }
        if (tau != null && flexidepth == null) {
            throw new IllegalArgumentException("--tau needs --flexidepth");
        }
        if (dmtdRefill != null && dmtdCycle == null) {
            throw new IllegalArgumentException("--dmtd-refill needs --dmtd");
        }
        if (dmtdCycle != null) {
            session.dmtd(org.flexidepth.llama.Dmtd.cycle(dmtdCycle).withRefill(dmtdRefill == null || dmtdRefill));
        }
        return new ChatOptions(Optional.ofNullable(model), Optional.ofNullable(prompt), Optional.ofNullable(template),
                Optional.ofNullable(system), Optional.ofNullable(flexidepth), Optional.ofNullable(tau), session.build(),
                gen.sampling(sampling.build()).build());
    }
}
