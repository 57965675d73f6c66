/**
 * How long a set of training runs will take, measured rather than guessed:
 * a few real training steps and one evaluation batch per method, on the
 * run's own data, loader and backend, scaled by the run's epochs and batches.
 *
 * @module
 */
import { tf } from "../backend/tf.ts";
import type { TrainConfig } from "../train/config.ts";
import { noisyTrainLabels, openDatasets } from "../train/data.ts";
import { buildLearner, makeLoaders } from "../train/trainer.ts";

/** One method's estimate. */
export interface MethodEstimate {
  method: TrainConfig["method"];
  /** Measured seconds per training step (one batch). */
  stepSeconds: number;
  /** Measured seconds per evaluation batch. */
  evalSeconds: number;
  /** Training steps of the whole run. */
  steps: number;
  /** Evaluation batches of the whole run (the test set every epoch). */
  evalBatches: number;
  /** Predicted seconds of the run. */
  seconds: number;
}

/** Options of {@linkcode estimateRuns}. */
export interface EstimateOptions {
  /**
   * Timed training steps per method, after one untimed warm-up step.
   * @default 3
   */
  steps?: number;
}

async function timeBatches(
  batches: AsyncGenerator<
    { images: Float32Array; labels: Int32Array; size: number }
  >,
  count: number,
  crop: number,
  run: (x: tf.Tensor4D, labels: Int32Array) => Promise<unknown>,
): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const next = await batches.next();
    if (next.done) break;
    const b = next.value;
    const t0 = performance.now();
    const x = tf.tensor4d(b.images, [b.size, crop, crop, 3]);
    await run(x, b.labels);
    x.dispose();
    times.push((performance.now() - t0) / 1000);
  }
  await batches.return(undefined);
  return times;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : 0;
};

/**
 * Measures each config's training step and evaluation batch and predicts
 * the run's duration. Data loading is timed outside the steps (it overlaps
 * them through prefetching). The backend must be initialized.
 */
export async function estimateRuns(
  configs: TrainConfig[],
  options: EstimateOptions = {},
): Promise<{ methods: MethodEstimate[]; seconds: number }> {
  const steps = options.steps ?? 3;
  if (!Number.isInteger(steps) || steps < 1) {
    throw new RangeError(
      `Estimate option "steps" must be a positive integer, got ${steps}`,
    );
  }
  const methods: MethodEstimate[] = [];
  for (const config of configs) {
    const { train, test } = await openDatasets(config);
    const noisy = noisyTrainLabels(config, train);
    const { learner, backbone } = await buildLearner(config);
    try {
      const { trainLoader, testLoader } = makeLoaders(
        config,
        train,
        test,
        noisy,
      );
      // 1. One untimed step (kernel set-up, heap growth), then `steps` timed.
      const stepTimes = await timeBatches(
        trainLoader.epoch(0),
        steps + 1,
        config.crop,
        (x, y) => learner.step(x, y),
      );
      const evalTimes = await timeBatches(
        testLoader.epoch(0),
        2,
        config.crop,
        (x) => learner.predict(x),
      );
      const stepSeconds = median(
        stepTimes.slice(1).length ? stepTimes.slice(1) : stepTimes,
      );
      const evalSeconds = median(
        evalTimes.slice(1).length ? evalTimes.slice(1) : evalTimes,
      );
      // 2. The run: every epoch trains its batches and evaluates the test set.
      const perEpoch = config.maxBatches === null
        ? trainLoader.batchesPerEpoch()
        : Math.min(config.maxBatches, trainLoader.batchesPerEpoch());
      const stepsTotal = perEpoch * config.epochs;
      const evalBatches = testLoader.batchesPerEpoch() * config.epochs;
      methods.push({
        method: config.method,
        stepSeconds,
        evalSeconds,
        steps: stepsTotal,
        evalBatches,
        seconds: stepsTotal * stepSeconds + evalBatches * evalSeconds,
      });
    } finally {
      learner.dispose();
      backbone.dispose();
    }
  }
  return { methods, seconds: methods.reduce((s, m) => s + m.seconds, 0) };
}
