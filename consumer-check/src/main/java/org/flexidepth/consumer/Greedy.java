package org.flexidepth.consumer;

import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.Llama;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.StopReason;
import org.flexidepth.llama.Token;

import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

/** Greedy generation printed as token ids, the way native/tests/reference-greedy.c prints them. */
public final class Greedy {
    public static void main(String[] args) {
        int n = Integer.parseInt(args[1]);
        try (LlamaModel model = LlamaModel.load(Path.of(args[0])); Session session = model.newSession()) {
            GenerationResult r = session.complete(args[2], GenerationOptions.builder().maxTokens(n).build());
            List<Token> tokens = r.tokens();
            if (r.stopReason() == StopReason.END_OF_GENERATION) {
                tokens = tokens.subList(0, tokens.size() - 1);
            }
            System.err.println("CPU backend " + Llama.cpuBackend() + "; text: " + r.text());
            System.out.println(tokens.stream().map(t -> String.valueOf(t.id())).collect(Collectors.joining(" ")));
        }
    }
}
