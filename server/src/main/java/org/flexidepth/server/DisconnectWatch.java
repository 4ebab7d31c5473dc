package org.flexidepth.server;

import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Notices clients that go away while a request that is not streamed runs, so that its generation
 * is cancelled as a streamed one is when a write fails. An HTTP/1 server reads nothing more from a
 * connection while it answers, so Jetty learns of a close only when it writes; llama-server peeks
 * at the socket instead. Here the kernel's table of TCP connections ({@code /proc/net/tcp},
 * Linux) tells: once the client has closed, the server's end of the connection is in CLOSE_WAIT,
 * or gone after a reset (absent from several readings in a row). One thread reads it every
 * {@value #PERIOD_MS} ms while requests wait.
 * Elsewhere than on Linux nothing is noticed and requests run to their end.
 */
final class DisconnectWatch implements AutoCloseable {
    static final int PERIOD_MS = 200;
    private static final Path[] TABLES = {Path.of("/proc/net/tcp"), Path.of("/proc/net/tcp6")};
    private static final String CLOSE_WAIT = "08";

    /** One connection, as the server sees it. */
    record Connection(InetAddress localAddress, int localPort, InetAddress remoteAddress, int remotePort) {
    }

    private static final int ABSENT_READINGS = 3;
    private final Map<Connection, Runnable> watched = new ConcurrentHashMap<>();
    private final Map<Connection, Integer> misses = new HashMap<>(); // the watch's thread only
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "flexillama-disconnect-watch");
        t.setDaemon(true);
        return t;
    });
    private final boolean available = Files.isReadable(TABLES[0]);

    DisconnectWatch() {
        if (available) {
            timer.scheduleWithFixedDelay(this::poll, PERIOD_MS, PERIOD_MS, TimeUnit.MILLISECONDS);
        }
    }

    /**
     * Calls {@code onGone} (once, on the watch's thread) if the client of {@code c} goes away
     * before the returned handle is closed.
     */
    AutoCloseable watch(Connection c, Runnable onGone) {
        if (!available) {
            return () -> { };
        }
        watched.put(c, onGone);
        return () -> watched.remove(c);
    }

    private void poll() {
        if (watched.isEmpty()) {
            return;
        }
        try {
            Map<Connection, String> states = new HashMap<>();
            for (Path table : TABLES) {
                if (Files.isReadable(table)) {
                    for (String line : Files.readAllLines(table)) {
                        parse(line, states);
                    }
                }
            }
            misses.keySet().retainAll(watched.keySet());
            for (Connection c : watched.keySet()) {
                String state = states.get(c);
                // the kernel writes the table in pieces, so a connection can be missed in one
                // reading while others come and go; only its absence from several in a row counts
                // (the count of a connection no longer watched goes at the next reading, above)
                int absent = state == null ? misses.merge(c, 1, Integer::sum) : 0;
                if (state != null) {
                    misses.remove(c);
                }
                if (CLOSE_WAIT.equals(state) || absent >= ABSENT_READINGS) {
                    Runnable gone = watched.remove(c);
                    if (gone != null) {
                        gone.run();
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            // a table that cannot be read this time: look again at the next tick
        }
    }

    // "  sl  local_address rem_address   st ...": hex addresses (as the kernel stores them) and ports
    private static void parse(String line, Map<Connection, String> states) {
        String[] f = line.trim().split("\\s+");
        if (f.length < 4 || !f[0].endsWith(":")) {
            return;
        }
        try {
            String[] local = f[1].split(":"), remote = f[2].split(":");
            states.put(new Connection(address(local[0]), Integer.parseInt(local[1], 16), address(remote[0]),
                    Integer.parseInt(remote[1], 16)), f[3]);
        } catch (RuntimeException | UnknownHostException e) {
            // not a connection line
        }
    }

    /** The kernel's hex: 32-bit words in host (little-endian) order; IPv4-mapped IPv6 as IPv4. */
    static InetAddress address(String hex) throws UnknownHostException {
        byte[] b = new byte[hex.length() / 2];
        for (int word = 0; word < b.length / 4; word++) {
            for (int i = 0; i < 4; i++) {
                b[word * 4 + i] = (byte) Integer.parseInt(hex.substring(word * 8 + (3 - i) * 2, word * 8 + (3 - i) * 2 + 2), 16);
            }
        }
        return InetAddress.getByAddress(b); // an IPv4-mapped IPv6 address comes back as its IPv4 address
    }

    @Override
    public void close() {
        timer.shutdownNow();
        watched.clear();
    }
}
