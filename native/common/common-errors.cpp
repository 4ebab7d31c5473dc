#include "common-errors.h"

#include "llama-fork-common.h"

#include <cstdlib>
#include <cstring>

namespace fork_common {

static thread_local std::string last_error;

void set_error(std::string message) {
    last_error = std::move(message);
}

void clear_error() {
    last_error.clear();
}

// malloc, not new: the caller frees it through llama_fork_common_string_free from another language
char * copy_string(const std::string & s) {
    char * out = static_cast<char *>(std::malloc(s.size() + 1));
    if (out == nullptr) {
        throw std::bad_alloc();
    }
    std::memcpy(out, s.data(), s.size());
    out[s.size()] = '\0';
    return out;
}

} // namespace fork_common

const char * llama_fork_common_last_error(void) {
    return fork_common::last_error.c_str();
}

void llama_fork_common_string_free(char * s) {
    std::free(s);
}
