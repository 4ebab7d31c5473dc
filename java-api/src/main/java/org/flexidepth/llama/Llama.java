package org.flexidepth.llama;

import org.flexidepth.llama.bindings.llama_h;

/** Facts about the native library itself. */
public final class Llama {
    private Llama() {
    }

    /** {@return the upstream llama.cpp commit the native library was built from} */
    public static String upstreamCommit() {
        NativeLibrary.load();
        return llama_h.llama_fork_upstream_commit().getString(0);
    }

    /** {@return llama.cpp's summary of the CPU features and backends in use} */
    public static String systemInfo() {
        NativeLibrary.load();
        return llama_h.llama_print_system_info().getString(0);
    }

    /**
     * The CPU backend library in use: the variant for this CPU's instruction-set level that the
     * loader chose at start-up, such as {@code libggml-cpu-haswell.so} (AVX2), or
     * {@code libggml-cpu.so} for a library built for one machine.
     *
     * @return the file name of the CPU backend; loads the native library first if need be
     * @throws NativeLibraryException if the native library cannot be loaded
     */
    public static String cpuBackend() {
        return NativeLibrary.cpuBackend();
    }

    /** {@return whether a GPU backend was compiled in} */
    public static boolean supportsGpuOffload() {
        NativeLibrary.load();
        return llama_h.llama_supports_gpu_offload();
    }
}
