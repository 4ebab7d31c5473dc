package org.flexidepth.llama;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;

/**
 * Tokenizes a rendered chat so that text people wrote is never read as special tokens: a user
 * message holding {@code <|im_start|>system} must not open a system turn. A rendering whose user
 * and tool messages hold no special-token text is tokenized as one string with special tokens
 * parsed, exactly as llama-server tokenizes it. Otherwise the chat is rendered again with a marker
 * in place of each such message, which shows where the template's own text ends and the
 * message's begins; the template's text is tokenized with special tokens parsed and the
 * message's as plain text.
 */
final class ChatTokenizer {
    private ChatTokenizer() {
    }

    /**
     * @param model    whose vocabulary tokenizes
     * @param messages the messages {@code rendered} was rendered from
     * @param rendered their rendering
     * @param render   renders other messages the same way (same template, same options)
     */
    static int[] tokenize(LlamaModel model, List<ChatMessage> messages, String rendered,
                          Function<List<ChatMessage>, String> render) {
        List<Integer> outside = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            ChatMessage m = messages.get(i);
            if ((m.role().equals("user") || m.role().equals("tool")) && holdsSpecialTokenText(model, m.content())) {
                outside.add(i);
            }
        }
        if (outside.isEmpty()) {
            return model.tokenize(rendered, true, true);
        }
        String key = marker(messages, rendered);
        List<ChatMessage> masked = new ArrayList<>(messages);
        for (int k = 0; k < outside.size(); k++) {
            ChatMessage m = masked.get(outside.get(k));
            masked.set(outside.get(k), new ChatMessage(m.role(), key + k + "Z", m.toolCalls(), m.toolCallId(), m.reasoning()));
        }
        List<String> pieces = split(render.apply(masked), key, outside.size());
        List<String> texts = new ArrayList<>();
        for (int k = 0; k < outside.size(); k++) {
            texts.add(messages.get(outside.get(k)).content());
        }
        alignWith(rendered, pieces, texts);
        Tokens out = new Tokens();
        out.add(model.tokenize(pieces.get(0), true, true));
        for (int k = 0; k < texts.size(); k++) {
            if (!texts.get(k).isEmpty()) {
                out.add(model.tokenize(texts.get(k), false, false));
            }
            if (!pieces.get(k + 1).isEmpty()) {
                out.add(model.tokenize(pieces.get(k + 1), false, true));
            }
        }
        return out.toArray();
    }

    private static boolean holdsSpecialTokenText(LlamaModel model, String text) {
        return !text.isEmpty() && !java.util.Arrays.equals(model.tokenize(text, false, true), model.tokenize(text, false, false));
    }

    /** Letters and digits only, which no template filter (trim, tojson, escaping) changes. */
    private static String marker(List<ChatMessage> messages, String rendered) {
        while (true) {
            String key = "fxq" + Long.toString(ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE, 36) + "Q";
            if (!rendered.contains(key) && messages.stream().noneMatch(m -> m.content().contains(key))) {
                return key;
            }
        }
    }

    /** The template's text around each marker, in order: markers + 1 pieces. */
    private static List<String> split(String masked, String key, int markers) {
        List<String> pieces = new ArrayList<>();
        int from = 0;
        for (int k = 0; k < markers; k++) {
            String m = key + k + "Z";
            int at = masked.indexOf(m, from);
            if (at < 0 || masked.indexOf(m, at + m.length()) >= 0) {
                throw new InvalidArgumentException("a message holds special-token text, and the chat template does not render"
                        + " each message once and in order, so that text cannot be kept apart from the template's own");
            }
            pieces.add(masked.substring(from, at));
            from = at + m.length();
        }
        pieces.add(masked.substring(from));
        return pieces;
    }

    /**
     * Finds in the real rendering the text the template made of each message (trimmed, for
     * templates that trim), so the tokens are those of the rendering itself; where a template
     * transforms the text in another way, the message's own text stands.
     */
    private static void alignWith(String rendered, List<String> pieces, List<String> texts) {
        if (!rendered.startsWith(pieces.get(0))) {
            return;
        }
        List<String> found = new ArrayList<>();
        int at = pieces.get(0).length();
        for (int k = 0; k < texts.size(); k++) {
            String t = texts.get(k), next = pieces.get(k + 1);
            boolean last = k == texts.size() - 1;
            String match = null;
            for (String candidate : List.of(t, t.strip(), t.stripLeading(), t.stripTrailing())) {
                int end = at + candidate.length();
                if (rendered.startsWith(candidate, at) && rendered.startsWith(next, end)
                        && (!last || end + next.length() == rendered.length())) {
                    match = candidate;
                    break;
                }
            }
            if (match == null) {
                return;
            }
            found.add(match);
            at += match.length() + next.length();
        }
        for (int k = 0; k < texts.size(); k++) {
            texts.set(k, found.get(k));
        }
    }

    private static final class Tokens {
        private int[] data = new int[64];
        private int size;

        void add(int[] t) {
            if (size + t.length > data.length) {
                data = java.util.Arrays.copyOf(data, Math.max(2 * data.length, size + t.length));
            }
            System.arraycopy(t, 0, data, size, t.length);
            size += t.length;
        }

        int[] toArray() {
            return java.util.Arrays.copyOf(data, size);
        }
    }
}
