package org.flexidepth.llama;

import org.flexidepth.llama.bindings.ggml_log_callback;
import org.flexidepth.llama.bindings.llama_h;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Routes llama.cpp's and ggml's log output to SLF4J (logger {@code org.flexidepth.llama.native})
 * so that nothing native writes to stdout or stderr. Native code logs line fragments; they are
 * joined per thread until a newline.
 * <p>
 * Native warnings and errors keep their level. Everything else (a model load alone is over a
 * hundred lines of metadata keys and tensor counts) goes to TRACE: an embedded library must not
 * fill its host application's log at INFO, nor at DEBUG, which is logback's level when it has no
 * configuration. The library says what it loaded in one INFO line of its own per model
 * ({@code org.flexidepth.llama.LlamaModel}) and per session ({@code org.flexidepth.llama.Session}).
 */
final class NativeLog {
    private static final Logger LOG = LoggerFactory.getLogger("org.flexidepth.llama.native");
    private static final ThreadLocal<StringBuilder> PENDING = ThreadLocal.withInitial(StringBuilder::new);
    private static final ThreadLocal<String> FIRST_ERROR = new ThreadLocal<>();
    private static final ThreadLocal<int[]> LAST_LEVEL = ThreadLocal.withInitial(() -> new int[] {llama_h.GGML_LOG_LEVEL_INFO()});

    private NativeLog() {
    }

    static void install() {
        // The stub lives as long as the JVM: native code may log at any time.
        MemorySegment stub = ggml_log_callback.allocate(NativeLog::log, Arena.global());
        llama_h.llama_log_set(stub, MemorySegment.NULL);
    }

    private static void log(int level, MemorySegment text, MemorySegment userData) {
        try {
            String s = text.equals(MemorySegment.NULL) ? "" : text.getString(0);
            if (level == llama_h.GGML_LOG_LEVEL_CONT()) {
                level = LAST_LEVEL.get()[0];
            } else {
                LAST_LEVEL.get()[0] = level;
            }
            StringBuilder pending = PENDING.get();
            pending.append(s);
            int nl;
            while ((nl = pending.indexOf("\n")) >= 0) {
                emit(level, pending.substring(0, nl));
                pending.delete(0, nl + 1);
            }
        } catch (Throwable t) {
            // An exception must never unwind into native code: that would crash the JVM.
        }
    }

    /** Forgets this thread's last native error, before a call whose failure we want to explain. */
    static void clearNativeError() {
        FIRST_ERROR.remove();
    }

    /** ": <first native error line since the clear>" for an exception message (the root cause; later lines
     *  are consequences), or "" if native code logged none. */
    static String nativeErrorSuffix() {
        String e = FIRST_ERROR.get();
        return e == null ? "" : ": " + e.strip();
    }

    private static void emit(int level, String line) {
        if (line.isBlank()) {
            return;
        }
        if (level == llama_h.GGML_LOG_LEVEL_ERROR()) {
            if (FIRST_ERROR.get() == null) {
                FIRST_ERROR.set(line);
            }
            LOG.error(line);
        } else if (level == llama_h.GGML_LOG_LEVEL_WARN()) {
            LOG.warn(line);
        } else {
            LOG.trace(line);
        }
    }
}
