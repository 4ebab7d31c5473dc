package org.flexidepth.tests.rpc;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.llama.FlexiDepthPlugin;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.InvalidArgumentException;
import org.flexidepth.llama.LayerUsage;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.ModelLoadException;
import org.flexidepth.llama.ModelOptions;
import org.flexidepth.llama.Session;
import org.flexidepth.tests.Prerequisites;
import org.flexidepth.tests.api.RealModels;
import org.flexidepth.tools.ProjectPaths;
import org.flexidepth.tools.RandomFixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A model split over two of upstream's {@code ggml-rpc-server} processes on loopback (built from
 * the fork): its greedy output equals the pristine library's local run, and a FlexiDepth plug-in
 * routes every token as it does locally. Endpoints that answer nothing are errors, not aborts.
 */
class RpcServersTest {
    static final RandomFixtures.Shape STORIES = new RandomFixtures.Shape(5, 64, 8, 4, 172, 512, 512);
    static final String PROMPT = "Once upon a time, there was a little dog";
    static final int N = 24;
    static final GenerationOptions GREEDY = GenerationOptions.builder().maxTokens(N).build();
    static final List<Process> servers = new ArrayList<>();
    static final List<String> endpoints = new ArrayList<>();
    @TempDir
    static Path dir;
    static Path modelFile;

    @BeforeAll
    static void startServers() throws Exception {
        Path exe = ProjectPaths.nativeBuild().resolve("bin/ggml-rpc-server");
        Prerequisites.require(Files.isExecutable(exe), exe + " (the native build makes it)");
        modelFile = RealModels.stories260K();
        for (int i = 0; i < 2; i++) {
            int port = freePort();
            servers.add(new ProcessBuilder(exe.toString(), "-H", "127.0.0.1", "-p", String.valueOf(port), "-t", "1")
                    .redirectErrorStream(true).redirectOutput(dir.resolve("rpc-server-" + i + ".log").toFile()).start());
            endpoints.add("127.0.0.1:" + port);
        }
        for (int i = 0; i < 2; i++) {
            awaitListening(servers.get(i), Integer.parseInt(endpoints.get(i).split(":")[1]), dir.resolve("rpc-server-" + i + ".log"));
        }
    }

    @AfterAll
    static void stopServers() {
        servers.forEach(Process::destroy);
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    static void awaitListening(Process server, int port, Path log) throws Exception {
        for (int attempt = 0; attempt < 300; attempt++) {
            if (!server.isAlive()) {
                throw new AssertionError("ggml-rpc-server exited: " + Files.readString(log));
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 200);
                return;
            } catch (IOException notYet) {
                Thread.sleep(100);
            }
        }
        throw new AssertionError("ggml-rpc-server did not listen on " + port + ": " + Files.readString(log));
    }

    static LlamaModel loadRemote(Path file) {
        return LlamaModel.load(file, ModelOptions.builder().rpcServers(endpoints).build());
    }

    static int[] ids(GenerationResult r) {
        return r.tokens().stream().mapToInt(t -> t.id()).toArray();
    }

    @Test
    void greedyOutputOverTwoServersEqualsThePristineLocalRun() throws Exception {
        try (LlamaModel model = loadRemote(modelFile); Session s = model.newSession()) {
            List<String> devices = model.layerDevices();
            assertEquals(STORIES.layers() + 1, devices.size());
            Set<String> used = devices.stream().filter(d -> d.startsWith("RPC")).collect(Collectors.toSet());
            assertEquals(2, used.size(), "the layers are split over both servers: " + devices);
            assertArrayEquals(RealModels.referenceGreedy(modelFile, N, PROMPT), ids(s.complete(PROMPT, GREEDY)));
        }
    }

    @Test
    void flexiDepthRoutesAsItDoesLocally() throws Exception {
        Path pluginFile = dir.resolve("plugin.gguf");
        RandomFixtures.writePlugin(pluginFile, STORIES, 17, List.of(1, 2, 3), 8, 16, 0.5f, null, GgmlType.F32);
        GenerationResult local, remote;
        try (LlamaModel model = LlamaModel.load(modelFile); FlexiDepthPlugin p = model.loadFlexiDepth(pluginFile);
             Session s = model.newSession()) {
            assertTrue(model.layerDevices().stream().allMatch("CPU"::equals), model.layerDevices().toString());
            s.attach(p, 0.5f);
            local = s.complete(PROMPT, GREEDY);
        }
        try (LlamaModel model = loadRemote(modelFile); FlexiDepthPlugin p = model.loadFlexiDepth(pluginFile);
             Session s = model.newSession()) {
            s.attach(p, 0.5f);
            remote = s.complete(PROMPT, GREEDY);
        }
        assertArrayEquals(ids(local), ids(remote));
        int skips = 0;
        for (int t = 0; t < local.tokens().size(); t++) {
            LayerUsage l = local.tokens().get(t).layers().orElseThrow(), r = remote.tokens().get(t).layers().orElseThrow();
            assertEquals(l.skippedLayers(), r.skippedLayers(), "token " + t);
            for (int i = 0; i < l.routedLayers().size(); i++) {
                assertEquals(l.gate(i), r.gate(i), 1e-4, "gate " + i + " of token " + t);
            }
            skips += l.skippedLayers().size();
        }
        assertTrue(skips > 0 && skips < N * 3, "some but not all layers skipped (" + skips + "): the routing decides something");
    }

    @Test
    void endpointsThatAnswerNothingAreErrors() throws Exception {
        int closed = freePort();
        var e = assertThrows(ModelLoadException.class,
                () -> LlamaModel.load(modelFile, ModelOptions.builder().rpcServers(List.of("127.0.0.1:" + closed)).build()));
        assertTrue(e.getMessage().contains("cannot reach RPC server 127.0.0.1:" + closed), e.getMessage());
        var host = assertThrows(ModelLoadException.class,
                () -> LlamaModel.load(modelFile, ModelOptions.builder().rpcServers(List.of("no-such-host.invalid:50052")).build()));
        assertTrue(host.getMessage().contains("cannot resolve"), host.getMessage());
        for (String bad : List.of("localhost", ":50052", "localhost:0", "localhost:99999", "localhost:x")) {
            assertThrows(InvalidArgumentException.class, () -> ModelOptions.builder().rpcServers(List.of(bad)).build(), bad);
        }
        try (LlamaModel model = loadRemote(modelFile)) {
            assertEquals(STORIES.layers() + 1, model.layerDevices().size(), "the servers still serve after the failures");
        }
    }
}
