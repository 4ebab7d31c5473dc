package org.flexidepth.llama;

import java.nio.file.Path;

/** Training was cancelled; the checkpoint written at that moment resumes it. */
public final class TrainingCancelledException extends FlexiDepthException {
    private static final long serialVersionUID = 1L;

    private final transient Path checkpoint;

    /**
     * Creates an exception.
     *
     * @param message    why training stopped, usually the native trainer's last error
     * @param checkpoint the checkpoint written when training stopped
     */
    public TrainingCancelledException(String message, Path checkpoint) {
        super(Reason.CANCELLED, message);
        this.checkpoint = checkpoint;
    }

    /** {@return the checkpoint to resume from with {@link TrainingOptions.Builder#resume(boolean)}} */
    public Path checkpoint() {
        return checkpoint;
    }
}
