package org.flexidepth.llama;

/**
 * Loading a model was cancelled by its {@link LoadProgressListener} or by interrupting the loading
 * thread; nothing of it stays in memory.
 */
public class ModelLoadCancelledException extends ModelLoadException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates an exception.
     *
     * @param message what was cancelled, naming the file
     */
    public ModelLoadCancelledException(String message) {
        super(message);
    }
}
