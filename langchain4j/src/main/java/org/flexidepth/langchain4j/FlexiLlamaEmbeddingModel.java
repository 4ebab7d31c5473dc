package org.flexidepth.langchain4j;

import dev.langchain4j.data.embedding.Embedding;
import dev.langchain4j.data.segment.TextSegment;
import dev.langchain4j.model.embedding.EmbeddingModel;
import dev.langchain4j.model.output.Response;
import org.flexidepth.llama.Session;

import java.util.ArrayList;
import java.util.List;

/**
 * LangChain4j's {@link EmbeddingModel} in process on an embedding session
 * ({@code SessionOptions.builder().embeddings(Pooling.MEAN, 8)}): unit-length vectors, several texts
 * per decode. A session serves one caller at a time, so calls queue on it. The session belongs
 * to the caller, who closes it.
 */
public final class FlexiLlamaEmbeddingModel implements EmbeddingModel {
    private final Session session;

    /**
     * @param session an embedding session
     */
    public FlexiLlamaEmbeddingModel(Session session) {
        if (session == null || session.options().embeddings().isEmpty()) {
            throw new IllegalArgumentException("an embedding session is required (SessionOptions.embeddings)");
        }
        this.session = session;
    }

    @Override
    public Response<List<Embedding>> embedAll(List<TextSegment> segments) {
        List<float[]> vectors;
        synchronized (session) {
            vectors = session.embed(segments.stream().map(TextSegment::text).toList());
        }
        List<Embedding> out = new ArrayList<>(vectors.size());
        vectors.forEach(v -> out.add(Embedding.from(v)));
        return Response.from(out);
    }

    @Override
    public int dimension() {
        return session.model().info().embeddingSize();
    }

    @Override
    public String modelName() {
        return session.model().path().getFileName().toString();
    }
}
