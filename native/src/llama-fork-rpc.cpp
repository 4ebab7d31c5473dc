// Remote devices through upstream's RPC backend (ggml-rpc, loaded as a backend module). Upstream's
// client aborts the process when it cannot connect to a server; a Java process must get an error
// instead, so the endpoint is parsed and connected to here first, and only a server that answers
// is handed to ggml_backend_rpc_add_server.
#include "llama-fork.h"

#include "ggml-backend.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

static void set_message(char * message, size_t n, const std::string & text) {
    if (message != nullptr && n > 0) {
        snprintf(message, n, "%s", text.c_str());
    }
}

// ggml-rpc's own endpoint syntax: host, colon, port (the last colon splits them)
static bool parse_endpoint(const std::string & endpoint, std::string & host, std::string & port) {
    const size_t colon = endpoint.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == endpoint.size()) {
        return false;
    }
    host = endpoint.substr(0, colon);
    port = endpoint.substr(colon + 1);
    if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 || std::stoi(port) == 0 || std::stoi(port) > 65535) {
        return false;
    }
    return true;
}

// A TCP connection to host:port within timeout_ms, closed again: the server's accept loop treats a
// client that says nothing as gone and goes on serving.
static std::string probe(const std::string & host, const std::string & port, int timeout_ms) {
    addrinfo hints = {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo * addrs = nullptr;
    const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &addrs);
    if (rc != 0) {
        return std::string("cannot resolve ") + host + ": " + gai_strerror(rc);
    }
    std::string error = "no address";
    for (addrinfo * a = addrs; a != nullptr; a = a->ai_next) {
        const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            error = strerror(errno);
            continue;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        int err = 0;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            err = errno;
            if (err == EINPROGRESS) {
                pollfd p = { fd, POLLOUT, 0 };
                const int ready = poll(&p, 1, timeout_ms);
                socklen_t len = sizeof(err);
                if (ready == 1) {
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                } else {
                    err = ETIMEDOUT;
                }
            }
        }
        close(fd);
        if (err == 0) {
            freeaddrinfo(addrs);
            return "";
        }
        error = strerror(err);
    }
    freeaddrinfo(addrs);
    return error;
}

int32_t llama_fork_rpc_add_server(const char * endpoint, ggml_backend_dev_t * devices, size_t capacity,
                                  size_t * n_devices, char * message, size_t n) {
    if (n_devices != nullptr) {
        *n_devices = 0;
    }
    std::string host, port;
    if (endpoint == nullptr || !parse_endpoint(endpoint, host, port)) {
        set_message(message, n, std::string("RPC endpoint '") + (endpoint ? endpoint : "") + "' is not host:port");
        return LLAMA_FORK_RPC_BAD_ENDPOINT;
    }
    ggml_backend_reg_t rpc = ggml_backend_reg_by_name("RPC");
    using add_server_fn = ggml_backend_reg_t (*)(const char *);
    add_server_fn add_server = rpc ? (add_server_fn) ggml_backend_reg_get_proc_address(rpc, "ggml_backend_rpc_add_server") : nullptr;
    if (add_server == nullptr) {
        set_message(message, n, "this build has no RPC backend (libggml-rpc is missing)");
        return LLAMA_FORK_RPC_UNAVAILABLE;
    }
    const std::string failure = probe(host, port, 5000);
    if (!failure.empty()) {
        set_message(message, n, std::string("cannot reach RPC server ") + endpoint + ": " + failure);
        return LLAMA_FORK_RPC_UNREACHABLE;
    }
    // ggml-rpc keeps one registration per endpoint: a second call returns the same devices
    ggml_backend_reg_t reg = add_server(endpoint);
    const size_t count = reg ? ggml_backend_reg_dev_count(reg) : 0;
    if (count == 0) {
        set_message(message, n, std::string("RPC server ") + endpoint + " has no devices");
        return LLAMA_FORK_RPC_NO_DEVICES;
    }
    for (size_t i = 0; i < count && i < capacity; ++i) {
        devices[i] = ggml_backend_reg_dev_get(reg, i);
    }
    if (n_devices != nullptr) {
        *n_devices = count;
    }
    return LLAMA_FORK_RPC_OK;
}
