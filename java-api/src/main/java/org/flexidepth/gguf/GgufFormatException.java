package org.flexidepth.gguf;

import java.io.IOException;

/** A file that is not GGUF, or is GGUF that this reader cannot accept (truncated, corrupt, unknown version). */
public class GgufFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    public GgufFormatException(String message) {
        super(message);
    }
}
