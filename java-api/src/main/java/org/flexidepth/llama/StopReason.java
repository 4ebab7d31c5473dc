package org.flexidepth.llama;

/** Why a generation ended. */
public enum StopReason {
    /** The model produced an end-of-generation token. */
    END_OF_GENERATION,
    /** The token budget ({@link GenerationOptions#maxTokens()}) was reached. */
    MAX_TOKENS,
    /** A stop string appeared in the output. */
    STOP_STRING,
    /** The session's context window is full. */
    CONTEXT_FULL,
    /** {@link Generation#cancel()} was called, or the session or its plug-in was closed or changed. */
    CANCELLED,
    /** A token could not be computed or sampled; the call that met the failure threw its exception. */
    FAILED
}
