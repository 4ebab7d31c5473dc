package org.flexidepth.llama;

/** A session was used from a second thread while another thread was using it. */
public class ConcurrentUseException extends LlamaException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates an exception.
     *
     * @param message what was used concurrently
     */
    public ConcurrentUseException(String message) {
        super(message);
    }

    /**
     * Creates an exception with the failure that caused it.
     *
     * @param message what was used concurrently
     * @param cause   the underlying failure, or {@code null} if none is known
     */
    public ConcurrentUseException(String message, Throwable cause) {
        super(message, cause);
    }
}
