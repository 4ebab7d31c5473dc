package org.flexidepth.llama;

import java.util.Arrays;

/**
 * A snapshot of a session: its KV cache and the tokens in it, as returned by
 * {@link Session#saveState()}, with what the cache was computed with (the model file, the
 * FlexiDepth routing or the DMTD split), so that it restores only where it means the same, and,
 * with DMTD, the session's place in its cycle. Immutable.
 */
public final class SessionState {
    private final int[] tokens;
    private final byte[] data;
    private final String model;
    private final String routing;
    private final Cycle cycle;

    /**
     * Where a DMTD session was in its cycle: how many of the last tokens only the decoding layers
     * have seen (the next full-depth step refills them), and whether the next token is a cycle head
     * because a prompt just ended, and, without refill, the positions whose tokens only the
     * decoding layers have seen (the thinking layers never attend to them; ascending). Without
     * DMTD: none pending, a cycle starts, none hidden.
     */
    record Cycle(int pending, boolean startsCycle, java.util.List<Integer> hidden) {
        static final Cycle NONE = new Cycle(0, true, java.util.List.of());

        Cycle {
            hidden = java.util.List.copyOf(hidden);
        }
    }

    SessionState(int[] tokens, byte[] data, String model, String routing, Cycle cycle) {
        this.tokens = tokens.clone();
        this.data = data.clone();
        this.model = model;
        this.routing = routing;
        this.cycle = cycle;
    }

    /** {@return the tokens in the cache when the snapshot was taken} */
    public int[] tokens() {
        return tokens.clone();
    }

    /** {@return size of the native state in bytes} */
    public int sizeBytes() {
        return data.length;
    }

    /** {@return what the cached K/V were computed with: "the base model", or the plug-in and its threshold, and the DMTD split} */
    public String routing() {
        return routing;
    }

    byte[] data() {
        return data;
    }

    int[] tokensView() {
        return tokens;
    }

    String model() {
        return model;
    }

    Cycle cycle() {
        return cycle;
    }

    @Override
    public String toString() {
        return "SessionState[" + tokens.length + " tokens, " + data.length + " bytes, " + routing + "]";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SessionState s && Arrays.equals(tokens, s.tokens) && Arrays.equals(data, s.data)
                && model.equals(s.model) && routing.equals(s.routing) && cycle.equals(s.cycle);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(tokens) + Arrays.hashCode(data);
    }
}
