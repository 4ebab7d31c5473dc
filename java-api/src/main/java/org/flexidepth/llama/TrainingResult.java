package org.flexidepth.llama;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * A finished {@link FlexiDepthTrainer} run.
 *
 * @param plugin   the trained plug-in file; load it with {@link LlamaModel#loadFlexiDepth(Path)}
 * @param last     the progress of the last step (empty when a resumed run had nothing left to do)
 * @param elapsed  wall-clock time of this run
 */
public record TrainingResult(Path plugin, Optional<TrainingProgress> last, Duration elapsed) {
}
