package org.flexidepth.llama;

/** A session was used from a second thread while another thread was using it. */
public class ConcurrentUseException extends LlamaException {
    private static final long serialVersionUID = 1L;

    public ConcurrentUseException(String message) {
        super(message);
    }

    public ConcurrentUseException(String message, Throwable cause) {
        super(message, cause);
    }
}
