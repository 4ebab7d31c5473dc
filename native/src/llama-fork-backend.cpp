// Run-time CPU dispatch: the jar ships one CPU backend per instruction-set level and ggml's
// registry picks the best one this CPU supports. This file adds what callers of the registry need
// beyond that: a status instead of a library that silently has no CPU device (and whose first
// model load then fails far from the cause), and the name of the variant chosen, for the log.
#include "llama-fork.h"

#include "ggml-backend.h"

#include <cstring>
#include <dlfcn.h>
#include <mutex>
#include <string>

static std::string cpu_library_name(ggml_backend_dev_t cpu) {
    // a function of the CPU backend's own module tells which file the registry loaded it from
    void * fn = ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(cpu), "ggml_backend_get_features");
    Dl_info info;
    if (fn && dladdr(fn, &info) && info.dli_fname) {
        std::string path = info.dli_fname;
        return path.substr(path.find_last_of('/') + 1);
    }
    return "built in";
}

int32_t llama_fork_backend_load(const char * dir, char * cpu_library, size_t n) {
    static std::mutex mutex;
    std::lock_guard<std::mutex> lock(mutex);
    ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (!cpu) {
        ggml_backend_load_all_from_path(dir);
        cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    }
    if (!cpu) {
        return LLAMA_FORK_BACKEND_NO_CPU_VARIANT;
    }
    if (cpu_library && n > 0) {
        const std::string name = cpu_library_name(cpu);
        strncpy(cpu_library, name.c_str(), n - 1);
        cpu_library[n - 1] = '\0';
    }
    return LLAMA_FORK_BACKEND_OK;
}
