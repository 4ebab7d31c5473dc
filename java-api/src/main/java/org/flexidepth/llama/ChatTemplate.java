package org.flexidepth.llama;

import org.flexidepth.llama.bindings.llama_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A model's chat template as llama-server uses it: its Jinja template (or one given instead)
 * run by upstream's template engine, with llama.cpp's built-in fallbacks, rendering requests
 * with tools, and the matching parser that reads tool calls and reasoning out of a reply.
 * Obtain one with {@link LlamaModel#chatTemplate()}; thread-safe; close it before its model.
 */
public final class ChatTemplate implements AutoCloseable {
    private final LlamaModel model;
    private final MemorySegment handle;
    private boolean closed;

    ChatTemplate(LlamaModel model, MemorySegment handle) {
        this.model = model;
        this.handle = handle;
    }

    static ChatTemplate create(LlamaModel model, String override) {
        if (override != null) {
            TextChecks.requireWellFormed(override, "the chat template");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment h = llama_h.llama_fork_common_chat_templates_init(model.handle(),
                    override == null ? MemorySegment.NULL : arena.allocateFrom(override));
            if (h.equals(MemorySegment.NULL)) {
                throw new InvalidArgumentException("the chat template cannot be used: " + NativeStrings.lastError());
            }
            return new ChatTemplate(model, h);
        }
    }

    /** {@return the model whose vocabulary (BOS and EOS text) the template renders with} */
    public LlamaModel model() {
        return model;
    }

    /** {@return the template's source (Jinja, or the name of a built-in template)} */
    public synchronized String source() {
        check();
        return NativeStrings.take(llama_h.llama_fork_common_chat_templates_source(handle), "reading the template");
    }

    /**
     * Renders a request as upstream's {@code common_chat_templates_apply} renders it for llama-server.
     *
     * @param request the messages, tools and format
     * @return the prompt and what generating its reply needs
     * @throws InvalidArgumentException if the template cannot render the request (the template's own error)
     */
    public ChatPrompt render(ChatRequest request) {
        return render(request, java.time.Instant.now().getEpochSecond());
    }

    /**
     * As {@link #render(ChatRequest)}, with the date that templates printing today's date print.
     *
     * @param request        the messages, tools and format
     * @param epochSeconds   the date and time, in seconds since 1970-01-01 UTC
     * @return the prompt and what generating its reply needs
     * @throws InvalidArgumentException if the template cannot render the request
     */
    public synchronized ChatPrompt render(ChatRequest request, long epochSeconds) {
        ChatPrompt p = apply(request, epochSeconds);
        p.tokens(ChatTokenizer.tokenize(model, request.messages(), p.text(),
                messages -> apply(new ChatRequest(messages, request.tools(), request.toolChoice(), request.parallelToolCalls(),
                        request.addGenerationPrompt(), request.enableThinking(), request.parseReasoning(), request.jsonSchema()),
                        epochSeconds).text()));
        return p;
    }

    private synchronized ChatPrompt apply(ChatRequest request, long epochSeconds) {
        check();
        try (Arena arena = Arena.ofConfined()) {
            String applied = NativeStrings.take(llama_h.llama_fork_common_chat_apply(handle,
                    arena.allocateFrom(ChatJson.request(request, epochSeconds))), "rendering the chat");
            return ChatJson.prompt(this, request, applied);
        }
    }

    /**
     * Reads a finished reply: content, reasoning and tool calls, by the parser of the template's format.
     *
     * @param prompt the rendering the reply answers
     * @param text   the generated text, special tokens included
     * @return the parsed reply
     * @throws InvalidArgumentException if the text does not parse in the template's format
     */
    public ChatReply parse(ChatPrompt prompt, String text) {
        return parse(prompt, text, false);
    }

    /**
     * Reads a finished generation leniently, as a server answers with it: as far as it parses when
     * it was cut short ({@link StopReason#MAX_TOKENS}, {@link StopReason#CONTEXT_FULL}), and as plain
     * content when it does not parse at all (a model that does not follow its template's format).
     *
     * @param prompt the rendering the reply answers
     * @param result the generation
     * @return the parsed reply
     */
    public ChatReply parse(ChatPrompt prompt, GenerationResult result) {
        boolean cut = result.stopReason() == StopReason.MAX_TOKENS || result.stopReason() == StopReason.CONTEXT_FULL;
        try {
            return parse(prompt, result.text(), cut);
        } catch (InvalidArgumentException e) {
            return new ChatReply(result.text(), java.util.Optional.empty(), java.util.List.of());
        }
    }

    /**
     * Reads a reply that may stop mid-message (while it streams).
     *
     * @param prompt  the rendering the reply answers
     * @param text    the text generated so far
     * @param partial whether more text may follow
     * @return what parses so far
     * @throws InvalidArgumentException if the text does not parse
     */
    public synchronized ChatReply parse(ChatPrompt prompt, String text, boolean partial) {
        check();
        TextChecks.requireWellFormed(text, "the reply text");
        try (Arena arena = Arena.ofConfined()) {
            return ChatJson.reply(NativeStrings.take(llama_h.llama_fork_common_chat_parse(
                    arena.allocateFrom(prompt.parserParams()), arena.allocateFrom(text), partial), "parsing the reply"));
        }
    }

    private void check() {
        if (closed) {
            throw new ResourceClosedException("the chat template is closed");
        }
    }

    /** Frees the template; idempotent. The template keeps no reference to the model's memory. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            llama_h.llama_fork_common_chat_templates_free(handle);
        }
    }
}
