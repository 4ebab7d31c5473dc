package org.flexidepth.tests.flexidepth;

import org.flexidepth.tools.RandomFixtures;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.Generation;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.InvalidArgumentException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.ResourceClosedException;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.StopReason;
import org.flexidepth.llama.Token;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bounded stress: worker threads attach, detach, change tau, generate and cancel on their own
 * sessions while another thread closes and reloads the shared plug-ins, then the model is closed
 * under them. Nothing may crash or throw anything but the documented exceptions, everything ends
 * closed, and every generation that ran to its token budget equals its single-threaded reference
 * for the routing it ran with.
 */
class ConcurrencyStressTest {
    static final RandomFixtures.Shape SHAPE = FlexiDepthSessionTest.SHAPE;
    static final int[] PROMPT = FlexiDepthSessionTest.PROMPT;
    static final GenerationOptions EIGHT = GenerationOptions.builder().maxTokens(8).build();
    static final float[] TAUS = {0.3f, 0.5f, 0.7f};
    static final int WORKERS = 4, OPS = 40;

    @TempDir
    Path dir;

    record Routing(int plugin, float tau) { // plugin -1: the base model
    }

    @Test
    void randomLifecycleOperationsOnManyThreads() throws Exception {
        Path modelPath = dir.resolve("model.gguf");
        Path[] pluginPaths = {dir.resolve("a.gguf"), dir.resolve("b.gguf")};
        RandomFixtures.writeModel(modelPath, SHAPE, 11, GgmlType.F32);
        RandomFixtures.writePlugin(pluginPaths[0], SHAPE, 17, List.of(2, 3), 8, 16, 0.5f, null, GgmlType.F32);
        RandomFixtures.writePlugin(pluginPaths[1], SHAPE, 23, List.of(1, 3), 8, 16, 0.5f, null, GgmlType.F32);

        LlamaModel model = LlamaModel.load(modelPath);
        // single-threaded references for every routing a worker can pick
        Map<Routing, List<Integer>> reference = new ConcurrentHashMap<>();
        try (Session s = model.newSession()) {
            reference.put(new Routing(-1, 0), ids(s.generate(PROMPT, EIGHT).result()));
            for (int p = 0; p < 2; p++) {
                try (FlexiDepthPlugin plugin = model.loadFlexiDepth(pluginPaths[p])) {
                    for (float tau : TAUS) {
                        s.attach(plugin, tau);
                        reference.put(new Routing(p, tau), ids(s.generate(PROMPT, EIGHT).result()));
                    }
                }
            }
        }
        // the current instance of each plug-in; the chaos thread closes and replaces them
        List<FlexiDepthPlugin> current = new CopyOnWriteArrayList<>(List.of(model.loadFlexiDepth(pluginPaths[0]),
                model.loadFlexiDepth(pluginPaths[1])));
        List<FlexiDepthPlugin> everLoaded = new CopyOnWriteArrayList<>(current);
        List<Session> sessions = Collections.synchronizedList(new ArrayList<>());
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        AtomicInteger compared = new AtomicInteger(), workersDone = new AtomicInteger();

        List<Thread> threads = new ArrayList<>();
        for (int w = 0; w < WORKERS; w++) {
            final long seed = 1000 + w;
            threads.add(new Thread(() -> {
                SplittableRandom r = new SplittableRandom(seed);
                try (Session s = model.newSession()) {
                    sessions.add(s);
                    Routing routing = new Routing(-1, 0);
                    for (int op = 0; op < OPS; op++) {
                        try {
                            switch (r.nextInt(6)) {
                                case 0, 1 -> {
                                    int p = r.nextInt(2);
                                    float tau = TAUS[r.nextInt(TAUS.length)];
                                    s.attach(current.get(p), tau);
                                    routing = new Routing(p, tau);
                                }
                                case 2 -> {
                                    s.detach();
                                    routing = new Routing(-1, 0);
                                }
                                case 3 -> {
                                    if (routing.plugin() >= 0 && s.attachedPlugin().isPresent()) {
                                        float tau = TAUS[r.nextInt(TAUS.length)];
                                        try {
                                            s.setThreshold(tau);
                                            routing = new Routing(routing.plugin(), tau);
                                        } catch (InvalidArgumentException e) {
                                            // only if the chaos thread closed the plug-in in between
                                            assertTrue(s.attachedPlugin().isEmpty(), e.getMessage());
                                        }
                                    }
                                }
                                default -> {
                                    s.clear();
                                    boolean cancel = r.nextInt(4) == 0;
                                    try (Generation g = s.generate(PROMPT, EIGHT)) {
                                        List<Token> got = new ArrayList<>();
                                        while (g.hasNext()) {
                                            got.add(g.next());
                                            if (cancel && got.size() == 3) {
                                                g.cancel();
                                            }
                                        }
                                        GenerationResult res = g.result();
                                        if (res.stopReason() == StopReason.MAX_TOKENS) {
                                            // a plug-in closed before the prompt means the base model ran
                                            Routing ran = res.tokens().get(0).layers().isPresent() ? routing : new Routing(-1, 0);
                                            assertEquals(reference.get(ran), ids(res), "greedy output under " + ran);
                                            compared.incrementAndGet();
                                        }
                                    }
                                }
                            }
                        } catch (ResourceClosedException e) {
                            // a plug-in closed by the chaos thread, or the model closing at the end
                            if (s.isClosed()) {
                                break;
                            }
                            routing = s.attachedPlugin().isPresent() ? routing : new Routing(-1, 0);
                        }
                        if (s.attachedPlugin().isEmpty()) {
                            routing = new Routing(-1, 0);
                        }
                    }
                } catch (ResourceClosedException e) {
                    // the model closed at the end
                } catch (Throwable t) {
                    failures.add(t);
                } finally {
                    workersDone.incrementAndGet();
                }
            }, "worker-" + w));
        }
        Thread chaos = new Thread(() -> {
            SplittableRandom r = new SplittableRandom(7);
            try {
                for (int i = 0; i < 12 && workersDone.get() < WORKERS; i++) {
                    Thread.sleep(5 + r.nextInt(30));
                    int p = r.nextInt(2);
                    FlexiDepthPlugin old = current.get(p);
                    FlexiDepthPlugin fresh = model.loadFlexiDepth(pluginPaths[p]);
                    everLoaded.add(fresh);
                    current.set(p, fresh);
                    old.close(); // while workers may be decoding with it
                }
            } catch (Throwable t) {
                failures.add(t);
            }
        }, "chaos");
        threads.forEach(Thread::start);
        chaos.start();
        chaos.join();
        // close the model while the workers may still be running
        Thread.sleep(20);
        model.close();
        for (Thread t : threads) {
            t.join(120_000);
            assertTrue(!t.isAlive(), t.getName() + " is stuck");
        }
        if (!failures.isEmpty()) {
            AssertionError e = new AssertionError(failures.size() + " worker failures, the first: " + failures.get(0));
            failures.forEach(e::addSuppressed);
            throw e;
        }
        assertTrue(model.isClosed());
        assertTrue(everLoaded.stream().allMatch(FlexiDepthPlugin::isClosed), "closing the model closed every plug-in");
        assertTrue(sessions.stream().allMatch(Session::isClosed));
        System.out.println("stress: " + compared.get() + " completed generations equal their references, "
                + everLoaded.size() + " plug-in instances");
        assertTrue(compared.get() > 0, "some generations completed");
    }

    private static List<Integer> ids(GenerationResult r) {
        return r.tokens().stream().map(Token::id).toList();
    }
}
