#pragma once

// The thread-local last error of llama-fork-common.h, and the guard that turns a C++ exception
// from common into it.

#include <exception>
#include <string>

namespace fork_common {

void set_error(std::string message);
void clear_error();

// Runs f, returning its result; an exception becomes the last error and `failed` is returned.
template <typename T, typename F>
T guarded(T failed, F && f) {
    clear_error();
    try {
        return f();
    } catch (const std::exception & e) {
        set_error(e.what());
    } catch (...) {
        set_error("unknown error");
    }
    return failed;
}

char * copy_string(const std::string & s);

} // namespace fork_common
