package org.flexidepth.llama;

import java.util.List;
import java.util.Optional;

/**
 * A chat request rendered by a {@link ChatTemplate}: the prompt text and what generating its
 * reply needs (the grammar of tool calls or of a JSON schema, extra stop strings, special tokens
 * the reply's parser reads). Pass it to {@link Session#chat(ChatPrompt, GenerationOptions)}.
 */
public final class ChatPrompt {
    /** A grammar trigger of a lazy grammar: a word, a pattern or a token after which the grammar applies. */
    record Trigger(int type, String value, int token) {
    }

    private final ChatTemplate template;
    private final ChatRequest request;
    private final String text;
    private final Optional<String> grammar;
    private final boolean grammarLazy;
    private final List<Trigger> triggers;
    private final List<String> preservedTokens;
    private final List<String> stopStrings;
    private final String formatName;
    private final String generationPrompt;
    private final String parserParams;
    private int[] tokens;

    ChatPrompt(ChatTemplate template, ChatRequest request, String text, Optional<String> grammar, boolean grammarLazy,
               List<Trigger> triggers, List<String> preservedTokens, List<String> stopStrings, String formatName,
               String generationPrompt, String parserParams) {
        this.template = template;
        this.request = request;
        this.text = text;
        this.grammar = grammar;
        this.grammarLazy = grammarLazy;
        this.triggers = List.copyOf(triggers);
        this.preservedTokens = List.copyOf(preservedTokens);
        this.stopStrings = List.copyOf(stopStrings);
        this.formatName = formatName;
        this.generationPrompt = generationPrompt;
        this.parserParams = parserParams;
    }

    /** {@return the rendered prompt, special-token text included} */
    public String text() {
        return text;
    }

    /**
     * {@return the prompt's tokens: the template's special-token text as special tokens, and the text
     * of user and tool messages always as plain text, so a message cannot open a turn of its own}
     */
    public int[] tokens() {
        return tokens.clone();
    }

    void tokens(int[] tokens) {
        this.tokens = tokens;
    }

    /** {@return the request it renders} */
    public ChatRequest request() {
        return request;
    }

    /** {@return the template that rendered it} */
    public ChatTemplate template() {
        return template;
    }

    /** {@return the grammar the reply follows (tool calls or the JSON schema), if any} */
    public Optional<String> grammar() {
        return grammar;
    }

    /** {@return whether the grammar applies only from a trigger on (a tool call the model starts), not from the first token} */
    public boolean grammarLazy() {
        return grammarLazy;
    }

    /** {@return stop strings the template adds to the reply's} */
    public List<String> stopStrings() {
        return stopStrings;
    }

    /** {@return the name of upstream's chat format for the template (how replies are parsed)} */
    public String formatName() {
        return formatName;
    }

    /**
     * The options a reply to this chat generates with: {@code options} plus the template's stop strings.
     *
     * @throws InvalidArgumentException if the chat was rendered for another model than {@code model},
     *         or its grammar and one of the sampling options would both apply
     */
    GenerationOptions replyOptions(LlamaModel model, GenerationOptions options) {
        if (template.model() != model) {
            throw new InvalidArgumentException("the chat was rendered for another model (" + template.model().path().getFileName() + ")");
        }
        Sampling s = options.sampling();
        if (grammar.isPresent() && (s.grammar().isPresent() || s.jsonSchema().isPresent())) {
            throw new InvalidArgumentException("the chat's tool calls or JSON schema set a grammar; the sampling options must not set another");
        }
        GenerationOptions.Builder b = options.toBuilder();
        stopStrings.stream().filter(stop -> !options.stopStrings().contains(stop)).forEach(b::stopString);
        return b.build();
    }

    List<Trigger> triggers() {
        return triggers;
    }

    List<String> preservedTokens() {
        return preservedTokens;
    }

    String generationPrompt() {
        return generationPrompt;
    }

    String parserParams() {
        return parserParams;
    }
}
