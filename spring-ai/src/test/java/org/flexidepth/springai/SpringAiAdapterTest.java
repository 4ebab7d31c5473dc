package org.flexidepth.springai;

import org.flexidepth.llama.BatchEngine;
import org.flexidepth.llama.BatchEngineOptions;
import org.flexidepth.llama.ChatMessage;
import org.flexidepth.llama.ChatRequest;
import org.flexidepth.llama.ChatTemplate;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Pooling;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.SessionOptions;
import org.flexidepth.tools.DefaultModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.ai.chat.client.ChatClient;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * The adapters through Spring AI's own high-level API: a {@code ChatClient} call and stream, with
 * a system and a user message, give what the library gives directly; the embedding model gives
 * the library's vectors.
 */
class SpringAiAdapterTest {
    static final int N = 24;
    static LlamaModel model;
    static BatchEngine engine;
    static ChatTemplate template;
    static ChatClient client;

    @BeforeAll
    static void load() throws Exception {
        model = LlamaModel.load(DefaultModel.stories260K());
        engine = model.newBatchEngine(BatchEngineOptions.builder().slots(2).contextPerSlot(1024).build());
        template = model.chatTemplate();
        client = ChatClient.create(new FlexiLlamaSpringChatModel(engine, template, GenerationOptions.builder().maxTokens(N).build()));
    }

    @AfterAll
    static void close() {
        if (model != null) {
            template.close();
            model.close();
        }
    }

    static String direct(String system, String user) {
        try (Session s = model.newSession(SessionOptions.builder().contextSize(1024).build())) {
            return s.chat(template.render(ChatRequest.of(List.of(ChatMessage.system(system), ChatMessage.user(user)))),
                    GenerationOptions.builder().maxTokens(N).build()).reply().content();
        }
    }

    @Test
    void aChatClientCallGivesTheLibrarysReply() {
        String expected = direct("You tell stories.", "Tell me about a cat.");
        assertFalse(expected.isBlank());
        assertEquals(expected, client.prompt().system("You tell stories.").user("Tell me about a cat.").call().content());
    }

    @Test
    void aChatClientStreamGivesTheSameText() {
        String expected = direct("You tell stories.", "Tell me about a dog.");
        List<String> parts = client.prompt().system("You tell stories.").user("Tell me about a dog.").stream().content().collectList().block();
        assertEquals(expected, String.join("", parts));
    }

    @Test
    void theEmbeddingModelGivesTheLibrarysVectors() {
        try (Session s = model.newSession(SessionOptions.builder().embeddings(Pooling.MEAN, 4).build())) {
            FlexiLlamaSpringEmbeddingModel embeddings = new FlexiLlamaSpringEmbeddingModel(s);
            List<float[]> got = embeddings.embed(List.of("The little dog was happy.", "Tom had a ball."));
            List<float[]> expected = s.embed(List.of("The little dog was happy.", "Tom had a ball."));
            assertArrayEquals(expected.get(0), got.get(0));
            assertArrayEquals(expected.get(1), got.get(1));
            assertEquals(model.info().embeddingSize(), embeddings.dimensions());
        }
    }
}
