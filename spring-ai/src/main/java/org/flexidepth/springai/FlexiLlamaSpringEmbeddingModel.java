package org.flexidepth.springai;

import org.flexidepth.llama.Session;
import org.springframework.ai.document.Document;
import org.springframework.ai.embedding.Embedding;
import org.springframework.ai.embedding.EmbeddingModel;
import org.springframework.ai.embedding.EmbeddingRequest;
import org.springframework.ai.embedding.EmbeddingResponse;

import java.util.ArrayList;
import java.util.List;

/**
 * Spring AI's {@link EmbeddingModel} in process on an embedding session
 * ({@code SessionOptions.builder().embeddings(Pooling.MEAN, 8)}): unit-length vectors, several texts
 * per decode; calls queue on the session, which serves one at a time. The session belongs to the caller.
 */
public final class FlexiLlamaSpringEmbeddingModel implements EmbeddingModel {
    private final Session session;

    /**
     * @param session an embedding session
     */
    public FlexiLlamaSpringEmbeddingModel(Session session) {
        if (session == null || session.options().embeddings().isEmpty()) {
            throw new IllegalArgumentException("an embedding session is required (SessionOptions.embeddings)");
        }
        this.session = session;
    }

    @Override
    public EmbeddingResponse call(EmbeddingRequest request) {
        List<float[]> vectors;
        synchronized (session) {
            vectors = session.embed(request.getInstructions());
        }
        List<Embedding> out = new ArrayList<>(vectors.size());
        for (int i = 0; i < vectors.size(); i++) {
            out.add(new Embedding(vectors.get(i), i));
        }
        return new EmbeddingResponse(out);
    }

    @Override
    public float[] embed(Document document) {
        return embed(document.getText());
    }

    @Override
    public int dimensions() {
        return session.model().info().embeddingSize();
    }
}
