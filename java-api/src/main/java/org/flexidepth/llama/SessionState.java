package org.flexidepth.llama;

import java.util.Arrays;

/**
 * A snapshot of a session: its KV cache and the tokens in it, as returned by
 * {@link Session#saveState()}. Immutable; restore it into a session of the same model.
 */
public final class SessionState {
    private final int[] tokens;
    private final byte[] data;

    SessionState(int[] tokens, byte[] data) {
        this.tokens = tokens.clone();
        this.data = data.clone();
    }

    /** The tokens in the cache when the snapshot was taken. */
    public int[] tokens() {
        return tokens.clone();
    }

    /** Size of the native state in bytes. */
    public int sizeBytes() {
        return data.length;
    }

    byte[] data() {
        return data;
    }

    int[] tokensView() {
        return tokens;
    }

    @Override
    public String toString() {
        return "SessionState[" + tokens.length + " tokens, " + data.length + " bytes]";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SessionState s && Arrays.equals(tokens, s.tokens) && Arrays.equals(data, s.data);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(tokens) + Arrays.hashCode(data);
    }
}
