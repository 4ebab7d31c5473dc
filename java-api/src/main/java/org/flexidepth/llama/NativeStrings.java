package org.flexidepth.llama;

import org.flexidepth.llama.bindings.llama_h;

import java.lang.foreign.MemorySegment;

/** Strings the common shim allocates for its caller, and its thread's last error. */
final class NativeStrings {
    private NativeStrings() {
    }

    /**
     * Reads a string the shim returned and frees it.
     *
     * @param s    the string, or NULL when the call failed
     * @param what the call, for the message when it failed
     * @throws InvalidArgumentException if {@code s} is NULL, with the shim's last error
     */
    static String take(MemorySegment s, String what) {
        if (s.equals(MemorySegment.NULL)) {
            throw new InvalidArgumentException(what + " failed: " + lastError());
        }
        try {
            return s.reinterpret(Long.MAX_VALUE).getString(0);
        } finally {
            llama_h.llama_fork_common_string_free(s);
        }
    }

    /** {@return the last error of the shim on this thread} */
    static String lastError() {
        return llama_h.llama_fork_common_last_error().reinterpret(Long.MAX_VALUE).getString(0);
    }
}
