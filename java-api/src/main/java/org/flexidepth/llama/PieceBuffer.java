package org.flexidepth.llama;

import org.flexidepth.llama.bindings.llama_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A token's text bytes through one native buffer reused from call to call, for the decode loops
 * that want the piece of every token they sample. Not thread-safe: one per loop.
 */
final class PieceBuffer {
    private final Arena arena;
    private final MemorySegment vocab;
    private MemorySegment buffer;

    /** @param arena owns the buffer (and any larger one a long piece needs); it outlives this */
    PieceBuffer(Arena arena, MemorySegment vocab) {
        this.arena = arena;
        this.vocab = vocab;
        this.buffer = arena.allocate(64);
    }

    /** {@return the token's text bytes}; {@code special}: control tokens as their text */
    byte[] bytes(int token, boolean special) {
        int n = llama_h.llama_token_to_piece(vocab, token, buffer, (int) buffer.byteSize(), 0, special);
        if (n < 0) {
            buffer = arena.allocate(-n);
            n = llama_h.llama_token_to_piece(vocab, token, buffer, (int) buffer.byteSize(), 0, special);
        }
        return buffer.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
    }
}
