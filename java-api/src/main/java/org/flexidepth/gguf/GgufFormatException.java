package org.flexidepth.gguf;

import java.io.IOException;

/** A file that is not GGUF, or is GGUF that this reader cannot accept (truncated, corrupt, unknown version). */
public class GgufFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates an exception.
     *
     * @param message what is wrong with the file, and where
     */
    public GgufFormatException(String message) {
        super(message);
    }
}
