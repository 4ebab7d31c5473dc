package org.flexidepth.llama;

/** A {@link BatchEngine}'s queue is full: every slot is busy and as many requests wait as it takes. */
public class QueueFullException extends LlamaException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates an exception.
     *
     * @param message how many requests wait
     */
    public QueueFullException(String message) {
        super(message);
    }
}
