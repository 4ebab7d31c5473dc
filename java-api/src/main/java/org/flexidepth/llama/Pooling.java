package org.flexidepth.llama;

/** How an embedding session turns the vectors of a text's tokens into the text's vector (llama.cpp's pooling types). */
public enum Pooling {
    /** The model's own pooling (its GGUF metadata); none for most generative models. */
    MODEL(-1),
    /** No pooling: one vector per token ({@link Session#embedTokens(String)}). */
    NONE(0),
    /** The mean of the tokens' vectors. */
    MEAN(1),
    /** The first token's vector (BERT's CLS token). */
    CLS(2),
    /** The last token's vector (for causal models, the one that has read the whole text). */
    LAST(3),
    /** A reranking model's classification head: {@link Session#embed(java.util.List)} gives its scores instead of a vector. */
    RANK(4);

    final int nativeValue;

    Pooling(int nativeValue) {
        this.nativeValue = nativeValue;
    }
}
