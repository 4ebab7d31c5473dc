package org.flexidepth.server;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * The server's command line.
 *
 * @param model          the GGUF model; stories260K from ../shared, converted on first use, when empty
 * @param host           the address to listen on
 * @param port           the port; 0 picks a free one
 * @param slots          requests decoded together
 * @param contextPerSlot tokens each request may hold
 * @param queue          requests that may wait for a slot before the server answers 429
 * @param threads        CPU threads per decode; 0 for all
 * @param apiKey         when set, requests to /v1 need {@code Authorization: Bearer KEY}
 * @param flexiDepth     a FlexiDepth plug-in applied to every request
 * @param tau            its threshold (the plug-in's own when empty)
 * @param maxBodyBytes   the largest request body taken
 * @param maxSeconds     the longest a request may run before it is cut off
 * @param chatTemplate   a Jinja chat template file used instead of the model's own
 * @param rpcServers     {@code host:port} of ggml-rpc-server processes that hold the model's layers
 */
record ServerOptions(Optional<Path> model, String host, int port, int slots, int contextPerSlot, int queue, int threads,
                     Optional<String> apiKey, Optional<Path> flexiDepth, Optional<Float> tau, long maxBodyBytes, int maxSeconds,
                     Optional<Path> chatTemplate, List<String> rpcServers) {
    static final String USAGE = """
            usage: flexillama-server [--model FILE.gguf] [options]
              --model FILE        GGUF model (default: stories260K from ../shared, converted on first run)
              --host H            address to listen on (default 127.0.0.1)
              --port P            port (default 8080; 0 picks a free one)
              --slots N           requests decoded together (default 4)
              --ctx N             tokens per request, prompt and reply (default 2048)
              --queue N           requests that may wait for a slot; more get 429 (default 64)
              --threads N         CPU threads per decode (default: all cores)
              --api-key KEY       require Authorization: Bearer KEY (default: the FLEXILLAMA_API_KEY variable, else none)
              --flexidepth FILE   a FlexiDepth plug-in for every request; --tau T its threshold
              --max-body BYTES    largest request body (default 4194304)
              --timeout SECONDS   longest a request may run (default 600)
              --chat-template-file F  a Jinja chat template instead of the model's own
              --rpc H:P,H:P       run the layers on these ggml-rpc-server processes (other machines)
            """;

    static ServerOptions parse(String[] args) {
        Path model = null, flexiDepth = null, chatTemplate = null;
        String host = "127.0.0.1", apiKey = System.getenv("FLEXILLAMA_API_KEY");
        int port = 8080, slots = 4, ctx = 2048, queue = 64, threads = 0, timeout = 600;
        long maxBody = 4L << 20;
        Float tau = null;
        List<String> rpc = List.of();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("-h") || a.equals("--help")) {
                throw new IllegalArgumentException("");
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException(a + " needs a value");
            }
            String v = args[++i];
            try {
                switch (a) {
                    case "--model", "-m" -> model = Path.of(v);
                    case "--host" -> host = v;
                    case "--port" -> port = Integer.parseInt(v);
                    case "--slots" -> slots = Integer.parseInt(v);
                    case "--ctx", "-c" -> ctx = Integer.parseInt(v);
                    case "--queue" -> queue = Integer.parseInt(v);
                    case "--threads", "-t" -> threads = Integer.parseInt(v);
                    case "--api-key" -> apiKey = v;
                    case "--flexidepth" -> flexiDepth = Path.of(v);
                    case "--tau" -> tau = Float.parseFloat(v);
                    case "--max-body" -> maxBody = Long.parseLong(v);
                    case "--timeout" -> timeout = Integer.parseInt(v);
                    case "--chat-template-file" -> chatTemplate = Path.of(v);
                    case "--rpc" -> rpc = List.of(v.split(","));
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(a + " takes a number, not '" + v + "'");
            }
        }
        if (port < 0 || port > 65535 || maxBody < 1024 || timeout < 1) {
            throw new IllegalArgumentException("--port must be 0..65535, --max-body at least 1024, --timeout at least 1");
        }
        return new ServerOptions(Optional.ofNullable(model), host, port, slots, ctx, queue, threads,
                Optional.ofNullable(apiKey).filter(k -> !k.isBlank()), Optional.ofNullable(flexiDepth), Optional.ofNullable(tau),
                maxBody, timeout, Optional.ofNullable(chatTemplate), rpc);
    }
}
