package org.flexidepth.llama;

/** Checks on Java strings before they become UTF-8 for the native side. */
final class TextChecks {
    private TextChecks() {
    }

    /**
     * Refuses a string with an unpaired UTF-16 surrogate: its UTF-8 encoding would silently turn it
     * into '?', so the model would read something other than what the caller wrote.
     */
    static String requireWellFormed(String text, String what) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw new InvalidArgumentException(what + " has a lone UTF-16 surrogate U+" + Integer.toHexString(c).toUpperCase()
                        + " at index " + i + "; it has no UTF-8 encoding");
            }
        }
        return text;
    }
}
