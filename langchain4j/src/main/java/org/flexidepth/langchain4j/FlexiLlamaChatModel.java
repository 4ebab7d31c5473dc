package org.flexidepth.langchain4j;

import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.Capability;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import org.flexidepth.llama.BatchEngine;
import org.flexidepth.llama.ChatPrompt;
import org.flexidepth.llama.ChatReply;
import org.flexidepth.llama.ChatTemplate;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;

import java.util.Set;
import java.util.concurrent.CompletionException;

/**
 * LangChain4j's {@link ChatModel} in process: requests are rendered by the model's chat template
 * (upstream's engine, tools and JSON schemas included), decoded by a {@link BatchEngine} shared
 * with other callers, and parsed back into text and tool calls. The engine and the template
 * belong to the caller, who closes them.
 */
public final class FlexiLlamaChatModel implements ChatModel {
    private final BatchEngine engine;
    private final ChatTemplate template;
    private final GenerationOptions defaults;
    private final String modelName;

    private FlexiLlamaChatModel(Builder b) {
        this.engine = b.engine;
        this.template = b.template;
        this.defaults = b.defaults;
        this.modelName = engine.model().path().getFileName().toString();
        if (template.model() != engine.model()) {
            throw new IllegalArgumentException("the template is another model's than the engine's");
        }
    }

    /** {@return a builder; the engine and the template are required} */
    public static Builder builder() {
        return new Builder();
    }

    @Override
    public ChatResponse doChat(ChatRequest request) {
        ChatPrompt prompt = template.render(Messages.request(request));
        GenerationResult r;
        try {
            r = engine.submit(prompt, Messages.options(request, defaults), t -> { }).join();
        } catch (CompletionException e) {
            throw e.getCause() instanceof RuntimeException x ? x : e;
        }
        ChatReply reply = template.parse(prompt, r);
        return ChatResponse.builder().aiMessage(Messages.aiMessage(reply)).modelName(modelName)
                .tokenUsage(Messages.usage(r)).finishReason(Messages.finishReason(r, reply)).build();
    }

    @Override
    public Set<Capability> supportedCapabilities() {
        return Set.of(Capability.RESPONSE_FORMAT_JSON_SCHEMA);
    }

    /** Builds a {@link FlexiLlamaChatModel}. */
    public static final class Builder {
        private BatchEngine engine;
        private ChatTemplate template;
        private GenerationOptions defaults = GenerationOptions.DEFAULT;

        private Builder() {
        }

        /**
         * @param engine decodes the requests
         * @return this builder
         */
        public Builder engine(BatchEngine engine) {
            this.engine = engine;
            return this;
        }

        /**
         * @param template renders and parses them (the engine's model's)
         * @return this builder
         */
        public Builder template(ChatTemplate template) {
            this.template = template;
            return this;
        }

        /**
         * @param defaults limits and sampling a request's own parameters override; default {@link GenerationOptions#DEFAULT}
         * @return this builder
         */
        public Builder defaults(GenerationOptions defaults) {
            this.defaults = defaults;
            return this;
        }

        /** @return the model */
        public FlexiLlamaChatModel build() {
            if (engine == null || template == null || defaults == null) {
                throw new IllegalArgumentException("an engine, a template and default options are required");
            }
            return new FlexiLlamaChatModel(this);
        }
    }
}
