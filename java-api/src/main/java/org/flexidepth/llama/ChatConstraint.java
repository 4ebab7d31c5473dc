package org.flexidepth.llama;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * What a chat template asks of the sampler and the detokenizer for one reply, resolved against the
 * model's vocabulary as llama-server resolves a chat request: the grammar (tool calls or a JSON
 * schema) and its kind, lazy triggers (a trigger word that is one token becomes a token trigger),
 * and the special tokens the reply parser must see as text.
 */
record ChatConstraint(Optional<String> grammar, int grammarType, boolean lazy, List<ChatPrompt.Trigger> triggers,
                      String generationPrompt, Set<Integer> visibleTokens) {
    static final int TRIGGER_TOKEN = 0;
    static final int TRIGGER_WORD = 1;
    static final int GRAMMAR_OUTPUT_FORMAT = 1;
    static final int GRAMMAR_TOOL_CALLS = 2;

    static final ChatConstraint NONE = new ChatConstraint(Optional.empty(), 0, false, List.of(), "", Set.of());

    static ChatConstraint of(ChatPrompt p, LlamaModel model) {
        Set<Integer> visible = new HashSet<>();
        for (String t : p.preservedTokens()) {
            int[] ids = model.tokenize(t, false, true);
            if (ids.length == 1) {
                visible.add(ids[0]);
            }
        }
        List<ChatPrompt.Trigger> triggers = new ArrayList<>();
        for (ChatPrompt.Trigger t : p.triggers()) {
            int[] ids = t.type() == TRIGGER_WORD ? model.tokenize(t.value(), false, true) : new int[0];
            triggers.add(ids.length == 1 ? new ChatPrompt.Trigger(TRIGGER_TOKEN, t.value(), ids[0]) : t);
        }
        ChatRequest r = p.request();
        int type = !r.tools().isEmpty() && r.toolChoice() != ChatRequest.ToolChoice.NONE ? GRAMMAR_TOOL_CALLS : GRAMMAR_OUTPUT_FORMAT;
        return new ChatConstraint(p.grammar(), type, p.grammarLazy(), triggers, p.generationPrompt(), Set.copyOf(visible));
    }
}
