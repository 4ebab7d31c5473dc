package org.flexidepth.server;

import io.javalin.http.Context;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * A streamed response (server-sent events, as OpenAI streams): the engine's thread puts events in
 * a queue and never waits on the network, nor formats them; the request's thread makes each
 * event's JSON and writes it. A write that fails (the client went away) cancels the generation.
 */
final class EventStream {
    private static final Supplier<String> END = () -> "[DONE]";
    private final BlockingQueue<Supplier<String>> events = new LinkedBlockingQueue<>();
    private final Context ctx;

    EventStream(Context ctx) {
        this.ctx = ctx;
        ctx.status(200).contentType("text/event-stream").header("Cache-Control", "no-cache");
    }

    /** Queues an event's data (JSON); called from any thread. */
    void send(String data) {
        events.add(() -> data);
    }

    /**
     * Queues an event whose data (JSON, or null for no event) the request's thread makes, in
     * queue order: state the events share needs no lock.
     */
    void send(Supplier<String> data) {
        events.add(data);
    }

    /** Queues the end of the stream. */
    void end() {
        events.add(END);
    }

    /**
     * Writes events until the end or until the client disconnects or {@code deadline} passes; the
     * generation is cancelled in the two last cases.
     */
    void pump(CompletableFuture<?> generation, long deadlineNanos) {
        try {
            OutputStream out = ctx.outputStream();
            while (true) {
                long left = deadlineNanos - System.nanoTime();
                Supplier<String> e = events.poll(Math.max(left, 0), TimeUnit.NANOSECONDS);
                if (e == null) {
                    generation.cancel(true); // past the time limit
                    write(out, "{\"error\":{\"message\":\"the request ran past the server's time limit\",\"type\":\"timeout\"}}");
                    write(out, "[DONE]");
                    out.flush();
                    return;
                }
                // what else is queued goes out with it, in one flush: a slow client costs fewer writes
                for (; e != null; e = events.poll()) {
                    if (e == END) {
                        write(out, "[DONE]");
                        out.flush();
                        return;
                    }
                    String data = e.get();
                    if (data != null) {
                        write(out, data);
                    }
                }
                out.flush();
            }
        } catch (IOException e) {
            generation.cancel(true); // the client disconnected
        } catch (InterruptedException e) {
            generation.cancel(true);
            Thread.currentThread().interrupt();
        }
    }

    private static void write(OutputStream out, String data) throws IOException {
        out.write(("data: " + data + "\n\n").getBytes(StandardCharsets.UTF_8));
    }
}
