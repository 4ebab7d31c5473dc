package org.flexidepth.tools;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * The command line the converters share: {@code <in> <out.gguf>} and options that take a value.
 * Errors are IllegalArgumentExceptions with the message to print; an empty message asks for the usage.
 *
 * @param in      the input path
 * @param out     the output path
 * @param options option name to value, for the options given
 */
public record ConverterArguments(Path in, Path out, Map<String, String> options) {

    public static ConverterArguments parse(String[] args, Set<String> valuedOptions) {
        Path in = null, out = null;
        Map<String, String> options = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("-h") || a.equals("--help")) {
                throw new IllegalArgumentException("");
            } else if (valuedOptions.contains(a)) {
                if (++i == args.length) {
                    throw new IllegalArgumentException(a + " needs a value");
                }
                options.put(a, args[i]);
            } else if (a.startsWith("-")) {
                throw new IllegalArgumentException("unknown option " + a);
            } else if (in == null) {
                in = Path.of(a);
            } else if (out == null) {
                out = Path.of(a);
            } else {
                throw new IllegalArgumentException("too many arguments");
            }
        }
        if (out == null) {
            throw new IllegalArgumentException(in == null ? "" : "missing <out.gguf>");
        }
        return new ConverterArguments(in, out, Map.copyOf(options));
    }
}
