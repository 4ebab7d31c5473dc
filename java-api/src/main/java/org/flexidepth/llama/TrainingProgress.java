package org.flexidepth.llama;

import java.time.Duration;

/**
 * Where a {@link FlexiDepthTrainer} run stands after an optimizer step.
 *
 * @param step            steps done, counting those before a resume
 * @param totalSteps      steps of the whole run
 * @param tokens          training tokens seen, counting those before a resume
 * @param lmLoss          next-token cross entropy of this step, nats per token
 * @param skipLoss        L_skip of this step (mean of the squared sum of gates), before alpha
 * @param meanLayers      layers used per token in this step
 * @param learningRate    learning rate of this step
 * @param tokensPerSecond training speed since this run started
 * @param remaining       estimated time to the last step
 */
public record TrainingProgress(long step, long totalSteps, long tokens, double lmLoss, double skipLoss,
                               double meanLayers, double learningRate, double tokensPerSecond, Duration remaining) {
}
