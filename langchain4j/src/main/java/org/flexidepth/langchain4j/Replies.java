package org.flexidepth.langchain4j;

import org.flexidepth.llama.ChatPrompt;
import org.flexidepth.llama.ChatReply;
import org.flexidepth.llama.ChatTemplate;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.InvalidArgumentException;
import org.flexidepth.llama.StopReason;

import java.util.List;
import java.util.Optional;

/** A finished generation read by the template's parser. */
final class Replies {
    private Replies() {
    }

    /** As far as it parses when cut short; as plain text when it does not parse at all. */
    static ChatReply parse(ChatTemplate template, ChatPrompt prompt, GenerationResult r) {
        boolean cut = r.stopReason() == StopReason.MAX_TOKENS || r.stopReason() == StopReason.CONTEXT_FULL;
        try {
            return template.parse(prompt, r.text(), cut);
        } catch (InvalidArgumentException e) {
            return new ChatReply(r.text(), Optional.empty(), List.of());
        }
    }
}
