package org.flexidepth.examples.chat;

import org.flexidepth.tools.DefaultModel;
import org.flexidepth.llama.ChatMessage;
import org.flexidepth.llama.Conversation;
import org.flexidepth.llama.ConversationOptions;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.Generation;
import org.flexidepth.llama.GenerationStats;
import org.flexidepth.llama.LlamaException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Session;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A chat program: one-shot with {@code --prompt}, otherwise a REPL. Models with a chat template
 * chat (multi-turn, the cache carries the history); models without one, like the default story
 * model, continue each line as a text prompt.
 */
public final class Chat {
    private final PrintStream out;
    private final boolean colour;

    Chat(PrintStream out, boolean colour) {
        this.out = out;
        this.colour = colour;
    }

    public static void main(String[] args) {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        int rc;
        try {
            java.io.Console console = System.console();
            rc = new Chat(out, console != null && console.isTerminal()).run(args, new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)));
        } catch (IllegalArgumentException e) {
            if (!e.getMessage().isEmpty()) {
                System.err.println("error: " + e.getMessage());
            }
            System.err.print(ChatOptions.USAGE);
            rc = 2;
        } catch (IOException | LlamaException e) {
            System.err.println("error: " + e.getMessage());
            rc = 1;
        }
        System.exit(rc);
    }

    int run(String[] args, BufferedReader in) throws IOException {
        ChatOptions o = ChatOptions.parse(args);
        Path modelPath = o.model().isPresent() ? o.model().get() : DefaultModel.stories260K();
        try (LlamaModel model = LlamaModel.load(modelPath);
             FlexiDepthPlugin plugin = o.flexidepth().map(model::loadFlexiDepth).orElse(null);
             Session session = model.newSession(o.session())) {
            boolean chatMode = o.template().isPresent() || model.info().chatTemplate().isPresent();
            System.err.println("model: " + modelPath + " (" + model.info().description() + ", "
                    + (chatMode ? "chat" : "no chat template: each line is continued as a story") + ")");
            LayerDisplay display = new LayerDisplay(out, colour);
            if (plugin != null) {
                float tau = o.tau().orElse(plugin.defaultThreshold());
                session.attach(plugin, tau);
                System.err.println("FlexiDepth: " + plugin.path().getFileName() + ", routed layers " + plugin.routedLayers() + ", tau " + tau);
                display.legend(model.info().layers() - plugin.routedLayers().size(), model.info().layers());
            }
            o.session().dmtd().ifPresent(d -> System.err.println("DMTD: cycles of " + d.cycle() + " tokens" + (d.refill() ? "" : ", no refill")));
            List<ChatMessage> history = new ArrayList<>();
            o.system().ifPresent(s -> history.add(ChatMessage.system(s)));
            ConversationOptions.Builder co = ConversationOptions.builder().history(history).dropOldestTurns(true);
            o.template().ifPresent(co::template);
            Conversation conversation = chatMode ? session.conversation(co.build()) : null;
            if (o.prompt().isPresent()) {
                reply(session, conversation, o, o.prompt().get(), display);
                return 0;
            }
            System.err.println("type a message and press enter; /exit or end of input quits");
            while (true) {
                out.print("> ");
                out.flush();
                String line = in.readLine();
                if (line == null || line.strip().equals("/exit")) {
                    return 0;
                }
                if (!line.isBlank()) {
                    reply(session, conversation, o, line, display);
                }
            }
        }
    }

    private void reply(Session session, Conversation conversation, ChatOptions o, String text, LayerDisplay display) {
        try (Generation g = conversation != null ? conversation.send(text, o.generation()) : session.generate(text, o.generation())) {
            if (conversation == null) {
                out.print(text);
            }
            g.forEachRemaining(t -> {
                display.token(t);
                out.flush();
            });
            display.endOfReply();
            GenerationStats s = g.stats();
            out.println();
            out.printf("[%d tokens, %.1f tokens/s; prompt %d tokens (%d cached), %.1f tokens/s; %s%s]%n",
                    s.generatedTokens(), s.generationTokensPerSecond(), s.promptTokens(), s.reusedTokens(),
                    s.promptTokensPerSecond(), g.stopReason().map(Enum::name).orElse("?").toLowerCase(),
                    s.layers().map(l -> String.format("; %.1f layers/token (min %d, max %d)", l.meanLayers(), l.minLayers(), l.maxLayers())).orElse(""));
        }
    }
}
