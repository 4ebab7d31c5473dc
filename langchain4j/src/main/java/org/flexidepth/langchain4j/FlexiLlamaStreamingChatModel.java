package org.flexidepth.langchain4j;

import dev.langchain4j.model.chat.Capability;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import org.flexidepth.llama.BatchEngine;
import org.flexidepth.llama.ChatPrompt;
import org.flexidepth.llama.ChatReply;
import org.flexidepth.llama.ChatTemplate;
import org.flexidepth.llama.GenerationOptions;

import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * LangChain4j's {@link StreamingChatModel} in process, on a shared {@link BatchEngine}: text is
 * passed on as it is generated (for requests without tools; with tools the reply is parsed first,
 * since its text holds the calls), on a thread of the handler's own so that a slow handler never
 * holds the engine.
 */
public final class FlexiLlamaStreamingChatModel implements StreamingChatModel {
    private final BatchEngine engine;
    private final ChatTemplate template;
    private final GenerationOptions defaults;
    private final String modelName;

    /**
     * @param engine   decodes the requests
     * @param template renders and parses them (the engine's model's)
     * @param defaults limits and sampling a request's own parameters override
     */
    public FlexiLlamaStreamingChatModel(BatchEngine engine, ChatTemplate template, GenerationOptions defaults) {
        if (engine == null || template == null || defaults == null || template.model() != engine.model()) {
            throw new IllegalArgumentException("an engine, its model's template and default options are required");
        }
        this.engine = engine;
        this.template = template;
        this.defaults = defaults;
        this.modelName = engine.model().path().getFileName().toString();
    }

    @Override
    public void doChat(ChatRequest request, StreamingChatResponseHandler handler) {
        org.flexidepth.llama.ChatRequest ours = Messages.request(request);
        ChatPrompt prompt = template.render(ours);
        boolean stream = ours.tools().isEmpty();
        // one thread per request delivers its events in order, off the engine's thread
        ExecutorService events = Executors.newSingleThreadExecutor(Thread.ofVirtual().name("flexillama-langchain4j").factory());
        engine.submit(prompt, Messages.options(request, defaults), t -> {
            if (stream && !t.text().isEmpty()) {
                events.execute(() -> handler.onPartialResponse(t.text()));
            }
        }).whenComplete((r, e) -> events.execute(() -> {
            if (e != null) {
                handler.onError(e instanceof java.util.concurrent.CompletionException c && c.getCause() != null ? c.getCause() : e);
                return;
            }
            ChatReply reply = template.parse(prompt, r);
            handler.onCompleteResponse(ChatResponse.builder().aiMessage(Messages.aiMessage(reply)).modelName(modelName)
                    .tokenUsage(Messages.usage(r)).finishReason(Messages.finishReason(r, reply)).build());
        })).whenComplete((r, e) -> events.shutdown()); // after the last event, which it still runs
    }

    @Override
    public Set<Capability> supportedCapabilities() {
        return Set.of(Capability.RESPONSE_FORMAT_JSON_SCHEMA);
    }
}
