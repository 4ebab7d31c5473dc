package org.flexidepth.llama;

import java.util.List;

/**
 * Finds stop strings in streamed text and holds back any tail that could still become one, so
 * that the caller never sees text that a later token turns into a stop string.
 */
final class StopStringMatcher {
    private final List<String> stops;
    private final StringBuilder held = new StringBuilder();
    private boolean stopped;

    StopStringMatcher(List<String> stops) {
        this.stops = stops;
    }

    /** Adds text; returns what can be released now. After a stop string, {@link #stopped()} is true. */
    String append(String text) {
        held.append(text);
        int first = -1;
        for (String s : stops) {
            int i = held.indexOf(s);
            if (i >= 0 && (first < 0 || i < first)) {
                first = i;
            }
        }
        if (first >= 0) {
            stopped = true;
            String out = held.substring(0, first);
            held.setLength(0);
            return out;
        }
        int keep = 0;
        for (String s : stops) {
            for (int k = Math.min(s.length() - 1, held.length()); k > keep; k--) {
                if (held.substring(held.length() - k).equals(s.substring(0, k))) {
                    keep = k;
                    break;
                }
            }
        }
        String out = held.substring(0, held.length() - keep);
        held.delete(0, held.length() - keep);
        return out;
    }

    boolean stopped() {
        return stopped;
    }

    /** Releases held text at the end of a generation that did not stop on a string. */
    String flush() {
        String out = held.toString();
        held.setLength(0);
        return out;
    }
}
