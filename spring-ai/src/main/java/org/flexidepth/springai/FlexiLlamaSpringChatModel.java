package org.flexidepth.springai;

import org.flexidepth.llama.BatchEngine;
import org.flexidepth.llama.ChatPrompt;
import org.flexidepth.llama.ChatReply;
import org.flexidepth.llama.ChatRequest;
import org.flexidepth.llama.ChatTemplate;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.chat.prompt.Prompt;
import reactor.core.publisher.Flux;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/**
 * Spring AI's {@link ChatModel} in process: {@code call} and {@code stream} on a shared
 * {@link BatchEngine}, rendering with a {@link ChatTemplate} (the model's Jinja template through
 * upstream's engine) and parsing replies with it. The engine and the template belong to the
 * caller (a Spring bean's destroy method closes them).
 */
public final class FlexiLlamaSpringChatModel implements ChatModel {
    private final BatchEngine engine;
    private final ChatTemplate template;
    private final GenerationOptions defaults;

    /**
     * @param engine   decodes the requests
     * @param template renders and parses them (the engine's model's)
     * @param defaults limits and sampling a prompt's own options override
     */
    public FlexiLlamaSpringChatModel(BatchEngine engine, ChatTemplate template, GenerationOptions defaults) {
        if (engine == null || template == null || defaults == null || template.model() != engine.model()) {
            throw new IllegalArgumentException("an engine, its model's template and default options are required");
        }
        this.engine = engine;
        this.template = template;
        this.defaults = defaults;
    }

    /**
     * {@return empty {@link FlexiLlamaChatOptions}: a prompt's options override the default
     * generation options only where set; ChatClient adds its tools to them}
     */
    @Override
    public ChatOptions getOptions() {
        return FlexiLlamaChatOptions.builder().build();
    }

    @Override
    public ChatResponse call(Prompt prompt) {
        ChatPrompt rendered = template.render(SpringMessages.request(prompt));
        try {
            GenerationResult r = engine.submit(rendered, SpringMessages.options(prompt, defaults), t -> { }).join();
            return SpringMessages.response(template.parse(rendered, r), r);
        } catch (CompletionException e) {
            throw e.getCause() instanceof RuntimeException x ? x : e;
        }
    }

    /**
     * Streams the text as it is generated, then a last response with the finish reason; with tools
     * only that one, parsed, since the text holds the calls. Cancelling the subscription cancels
     * the generation.
     */
    @Override
    public Flux<ChatResponse> stream(Prompt prompt) {
        return Flux.create(sink -> {
            ChatRequest request = SpringMessages.request(prompt);
            ChatPrompt rendered = template.render(request);
            boolean tools = !request.tools().isEmpty();
            CompletableFuture<GenerationResult> f = engine.submit(rendered, SpringMessages.options(prompt, defaults), t -> {
                if (!tools && !t.text().isEmpty()) {
                    sink.next(SpringMessages.chunk(t.text())); // buffered by the sink: never blocks the engine
                }
            });
            sink.onDispose(() -> f.cancel(true));
            f.whenComplete((r, e) -> {
                if (e != null) {
                    sink.error(e instanceof CompletionException c && c.getCause() != null ? c.getCause() : e);
                    return;
                }
                ChatReply reply = template.parse(rendered, r);
                sink.next(tools ? SpringMessages.response(reply, r) : SpringMessages.last(reply, r));
                sink.complete();
            });
        });
    }
}
