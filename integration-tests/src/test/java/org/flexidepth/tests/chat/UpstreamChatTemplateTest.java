package org.flexidepth.tests.chat;

import org.flexidepth.llama.ChatMessage;
import org.flexidepth.llama.ChatPrompt;
import org.flexidepth.llama.ChatRequest;
import org.flexidepth.llama.ChatTemplate;
import org.flexidepth.llama.InvalidArgumentException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Tool;
import org.flexidepth.llama.ToolCall;
import org.flexidepth.tests.api.RealModels;
import org.flexidepth.tools.ProjectPaths;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every chat template of the pinned llama.cpp tree (models/templates: Llama 3.x, Qwen 2.5 and 3,
 * Mistral, Gemma, Phi, DeepSeek, ...) renders a conversation, with and without tools, byte for
 * byte as upstream's common library renders it on the pristine build
 * (native/tests/reference-chat-template.cpp); where upstream refuses a request, so do we.
 */
class UpstreamChatTemplateTest {
    static final long NOW = 1_767_225_600L; // 2026-01-01, for templates that print the date
    static final Tool WEATHER = new Tool("get_weather", "The weather in a city today",
            "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"unit\":{\"enum\":[\"C\",\"F\"]}},\"required\":[\"city\"]}");
    static LlamaModel model;
    @TempDir
    static Path dir;

    @BeforeAll
    static void load() {
        model = LlamaModel.load(RealModels.stories260K());
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    static Path templates() {
        return ProjectPaths.nativeBuild().resolve("_deps/llama.cpp-pristine/models/templates");
    }

    static Stream<Path> templateFiles() throws IOException {
        try (Stream<Path> s = Files.list(templates())) {
            return s.filter(p -> p.toString().endsWith(".jinja")).sorted().toList().stream();
        }
    }

    static List<ChatRequest> requests() {
        ToolCall call = new ToolCall("call_1", "get_weather", "{\"city\":\"Paris\"}");
        return List.of(
                ChatRequest.builder().message(ChatMessage.system("You are terse.")).message(ChatMessage.user("Hi there"))
                        .message(ChatMessage.assistant("Hello.")).message(ChatMessage.user("Tell me <|im_start|> a story")).build(),
                ChatRequest.builder().message(ChatMessage.user("Weather in Paris?")).tool(WEATHER).build(),
                ChatRequest.builder().message(ChatMessage.user("Weather in Paris?"))
                        .message(ChatMessage.assistant("", List.of(call)))
                        .message(ChatMessage.toolResult(call, "{\"temperature\":21}")).tool(WEATHER).build());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("templateFiles")
    void rendersAsUpstreamCommon(Path template) throws Exception {
        String source = Files.readString(template);
        List<ChatRequest> requests = requests();
        int rendered = 0;
        try (ChatTemplate t = model.chatTemplate(source)) {
            for (int i = 0; i < requests.size(); i++) {
                Reference ref = reference(template, requests.get(i), i, false);
                if (ref.ok) {
                    ChatPrompt p = t.render(requests.get(i), NOW);
                    assertEquals(ref.output, p.text(), template.getFileName() + ", request " + i);
                    if (!requests.get(i).tools().isEmpty()) {
                        assertEquals(reference(template, requests.get(i), i, true).output, p.grammar().orElse(""),
                                template.getFileName() + ", grammar of request " + i);
                    }
                    rendered++;
                } else {
                    int n = i;
                    assertThrows(InvalidArgumentException.class, () -> t.render(requests.get(n), NOW),
                            "upstream refused request " + i + " (" + ref.output.strip() + "); so must we");
                }
            }
        }
        assertTrue(rendered > 0, template.getFileName() + ": upstream rendered none of the requests");
    }

    @Test
    void theFamiliesTheIssueNamesAreThere() throws IOException {
        List<String> names = templateFiles().map(p -> p.getFileName().toString()).toList();
        for (String family : List.of("Llama-3.1", "Llama-3.2", "Qwen2.5", "Qwen3", "Mistral", "gemma", "Phi", "DeepSeek")) {
            assertTrue(names.stream().anyMatch(n -> n.toLowerCase().contains(family.toLowerCase())), family + " in " + names);
        }
    }

    @Test
    void aTemplateThatDoesNotParseIsATypedError() {
        assertThrows(InvalidArgumentException.class, () -> model.chatTemplate("{% for %}").render(requests().get(0), NOW));
    }

    record Reference(boolean ok, String output) {
    }

    static Reference reference(Path template, ChatRequest request, int index, boolean grammar) throws Exception {
        Path exe = ProjectPaths.nativeBuild().resolve("pristine-tools/reference-chat-template");
        assertTrue(Files.isExecutable(exe), exe + " missing: build the native tree (see README)");
        Path body = dir.resolve("request-" + index + ".json");
        Files.writeString(body, ChatRequests.json(request, NOW));
        List<String> cmd = new ArrayList<>(List.of(exe.toString(), RealModels.stories260K().toString(), template.toString(), body.toString()));
        if (grammar) {
            cmd.add("--grammar");
        }
        Process p = new ProcessBuilder(cmd).start();
        byte[] out = p.getInputStream().readAllBytes();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        int rc = p.waitFor();
        return rc == 0 ? new Reference(true, new String(out, StandardCharsets.UTF_8)) : new Reference(false, err);
    }
}
