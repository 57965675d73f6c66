/**
 * The training loop shared by `train:linear`, `train:rein` and `train:cufit`:
 * epochs of {@linkcode Learner.step} over noisy labels, per-epoch test
 * accuracy and selection precision/recall, checkpoints, and resume.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type BackendInfo, initBackend } from "../backend/backend.ts";
import { tf } from "../backend/tf.ts";
import { adapterLine } from "../backend/webgpu/adapter.ts";
import {
  checkGpu,
  gpuFailure,
  GpuLostError,
} from "../backend/webgpu/device.ts";
import type { Tensor } from "../backend/tf.ts";
import type { Dataset } from "../data/dataset.ts";
import { BatchLoader } from "../data/loader.ts";
import { Progress } from "../io/progress.ts";
import { Dinov2 } from "../models/dinov2.ts";
import { initTrainable } from "../models/init.ts";
import type { NoisyLabels } from "../noise/label_noise.ts";
import { RandomState } from "../noise/random_state.ts";
import { loadDinov2Weights } from "../weights/dinov2_weights.ts";
import type { HostTensor } from "../weights/host_tensor.ts";
import { readSafetensors } from "../weights/safetensors.ts";
import {
  loadCheckpoint,
  saveCheckpoint,
  type StateValue,
} from "./checkpoint.ts";
import { lrAt, type TrainConfig } from "./config.ts";
import {
  labelListFile,
  noisyTrainLabels,
  openDatasets,
  resolveWeightsFile,
} from "./data.ts";
import {
  isTrainableName,
  Learner,
  type ModuleName,
  PREDICTOR,
  SELECTORS,
  type StepOutputs,
} from "./learner.ts";
import {
  argmaxRows,
  bestEpoch,
  confusionMatrix,
  type EpochMetrics,
  formatEpochLine,
  lastEpochsMean,
} from "./metrics.ts";
import {
  appendMetrics,
  createRunDir,
  reconcileMetrics,
  runDirOf,
  writeAvgAcc,
} from "./run_dir.ts";
import { acquireRunLock, removeStaleTemps, type RunLock } from "./run_lock.ts";
import { withPath } from "../io/atomic.ts";
import { agreementMask, SelectionAccumulator } from "./selection.ts";
import { RECORDED_MODULES, SelectionHistory } from "../label_issues/history.ts";
import {
  collectTrainProbabilities,
  TRAIN_PROBABILITIES_FILE,
  writeTrainProbabilities,
} from "../label_issues/train_probabilities.ts";

/** Raised when a loss turns NaN or infinite; the last good checkpoint is kept. */
export class NonFiniteLossError extends Error {
  override name = "NonFiniteLossError";
}

/** Options of {@linkcode train}. */
export interface TrainOptions {
  /** Called after every epoch with its metrics line. */
  onEpoch?: (metrics: EpochMetrics) => void;
  /** Called after every training step with its host outputs (logits, losses, masks). */
  onStep?: (
    outputs: StepOutputs,
    where: { epoch: number; batch: number },
  ) => void;
  /** Console lines. @default console.log */
  log?: (line: string) => void;
  /** Show an in-epoch progress bar on stderr. @default true */
  progress?: boolean;
  /** Command-line arguments to record in config.json. @default Deno.args */
  argv?: string[];
  /** An already initialized backend (else `config.backend` is initialized). */
  backend?: BackendInfo;
  /** Stops after this many epochs of this call (tests use it to simulate a kill). */
  stopAfterEpochs?: number;
  /** Prefetch depth of the loaders, in batches. @default 2 */
  prefetch?: number;
}

/** What a finished (or stopped) run reports. */
export interface TrainResult {
  runDir: string;
  metrics: EpochMetrics[];
  best: { epoch: number; value: number } | null;
  /** Mean test accuracy of the last 10 epochs (the paper's figure). */
  last10: number;
  /** Seconds of this call. */
  seconds: number;
}

/** Trainable tensors of a file written by `--init`, split into the method's groups. */
export function initGroupsFromFile(
  tensors: Map<string, HostTensor>,
  method: TrainConfig["method"],
  file: string,
): Map<string, HostTensor>[] {
  const pick = (prefix: string) =>
    new Map(
      [...tensors].filter(([k]) => k.startsWith(prefix) && isTrainableName(k))
        .map((
          [k, t],
        ) => [k.slice(prefix.length), t]),
    );
  if (method !== "cufit") {
    const g = pick("");
    if (g.size === 0) {
      throw new Error(
        `--init "${file}": no trainable (reins.*, linear*) tensors`,
      );
    }
    return [
      method === "linear"
        ? new Map([...g].filter(([k]) => k.startsWith("linear.")))
        : g,
    ];
  }
  const m1 = pick("model1.");
  const m2 = pick("model2.");
  if (m1.size === 0 || m2.size === 0) {
    throw new Error(
      `--init "${file}": a CUFIT init needs model1.* and model2.* tensors`,
    );
  }
  return [m1, m2];
}

/** The checkpoint names of a learner's parameters (`model1.` / `model2.` for CUFIT). */
function groupPrefix(learner: Learner, i: number): string {
  return learner.groups.length > 1 ? `${learner.groups[i].name}.` : "";
}

function learnerState(learner: Learner) {
  const params = new Map<string, HostTensor>();
  const moments = new Map<string, HostTensor>();
  const steps: Record<string, number> = {};
  learner.groups.forEach((g, i) => {
    const prefix = groupPrefix(learner, i);
    for (const [k, t] of g.params.toHost()) params.set(prefix + k, t);
    const s = g.optimizer.state();
    for (const [k, t] of s.moments) moments.set(prefix + k, t);
    for (const [k, n] of Object.entries(s.steps)) steps[prefix + k] = n;
  });
  return { params, moments, steps };
}

/** Sets a learner's parameters from checkpoint tensors (`model1.`/`model2.` prefixed for CUFIT). */
export function loadLearnerParams(
  learner: Learner,
  params: Map<string, HostTensor>,
): void {
  learner.groups.forEach((g, i) =>
    g.params.assign(params, { prefix: groupPrefix(learner, i) })
  );
}

function restoreLearner(
  learner: Learner,
  params: Map<string, HostTensor>,
  moments: Map<string, HostTensor>,
  steps: Record<string, number>,
  lr: number,
): void {
  learner.groups.forEach((g, i) => {
    const prefix = groupPrefix(learner, i);
    g.params.assign(params, { prefix });
    const own = (k: string) => k.startsWith(prefix);
    g.optimizer.loadState({
      lr,
      steps: Object.fromEntries(
        Object.entries(steps).filter(([k]) => own(k)).map((
          [k, n],
        ) => [k.slice(prefix.length), n]),
      ),
      // Moment keys are "<prefix><kind>.<name>" (see learnerState); keep this group's.
      moments: new Map(
        [...moments].filter(([k]) => own(k)).map((
          [k, t],
        ) => [k.slice(prefix.length), t]),
      ),
    });
  });
}

/** One training or test batch as the learner takes it. */
interface InputBatch {
  /** `[B, H, W, 3]` images, or `[B, D]` cached features. */
  x: Tensor;
  labels: Int32Array;
  indices: Int32Array;
  size: number;
}

/** Batches of a loader's epoch as image tensors (each disposed after use). */
async function* imageBatches(
  loader: BatchLoader,
  epoch: number,
): AsyncGenerator<InputBatch> {
  for await (const batch of loader.epoch(epoch)) {
    const crop = Math.round(Math.sqrt(batch.images.length / batch.size / 3));
    const x = tf.tensor4d(batch.images, [batch.size, crop, crop, 3]);
    try {
      yield {
        x,
        labels: batch.labels,
        indices: batch.indices,
        size: batch.size,
      };
    } finally {
      x.dispose();
    }
  }
}

/** Cached features of a whole split, `[N, D]` row-major, in dataset order. */
export interface FeatureCache {
  features: Float32Array;
  dim: number;
  labels: Int32Array;
}

/** Center-crop features of every sample of a loader (which must not shuffle). */
async function cacheFeatures(
  learner: Learner,
  loader: BatchLoader,
  labels: Int32Array,
  what: string,
): Promise<FeatureCache> {
  const chunks: Float32Array[] = [];
  const bar = new Progress(loader.batchesPerEpoch(), {
    label: `features (${what})`,
    unit: "batch",
  });
  for await (const b of imageBatches(loader, 0)) {
    chunks.push(await learner.features(b.x));
    bar.tick();
  }
  bar.done();
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const features = new Float32Array(total);
  let offset = 0;
  for (const c of chunks) {
    features.set(c, offset);
    offset += c.length;
  }
  return { features, dim: total / labels.length, labels };
}

/** Batches of cached features in `order`. */
function* featureBatches(
  cache: FeatureCache,
  order: Int32Array,
  batchSize: number,
): Generator<InputBatch> {
  for (let start = 0; start < order.length; start += batchSize) {
    const indices = order.subarray(
      start,
      Math.min(start + batchSize, order.length),
    );
    const rows = new Float32Array(indices.length * cache.dim);
    indices.forEach((idx, r) =>
      rows.set(
        cache.features.subarray(idx * cache.dim, (idx + 1) * cache.dim),
        r * cache.dim,
      )
    );
    const x = tf.tensor2d(rows, [indices.length, cache.dim]);
    try {
      yield {
        x,
        labels: Int32Array.from(indices, (i) => cache.labels[i]),
        indices,
        size: indices.length,
      };
    } finally {
      x.dispose();
    }
  }
}

/** Accuracy of every module of `learner` on a dataset (center crop, clean labels). */
export async function evaluateLearner(
  learner: Learner,
  loader: BatchLoader | FeatureCache,
  options: { withConfusion?: boolean; onBatch?: () => void } = {},
): Promise<
  {
    accuracy: Partial<Record<ModuleName, number>>;
    confusion?: number[][];
    total: number;
  }
> {
  const k = learner.numClasses;
  const correct: Partial<Record<ModuleName, number>> = {};
  let total = 0;
  const predictor = PREDICTOR[learner.method];
  const confusion = options.withConfusion
    ? Array.from({ length: k }, () => new Array<number>(k).fill(0))
    : undefined;
  const batches = loader instanceof BatchLoader
    ? imageBatches(loader, 0)
    : featureBatches(loader, Int32Array.from(loader.labels, (_, i) => i), 256);
  for await (const batch of batches) {
    const logits = loader instanceof BatchLoader
      ? await learner.predict(batch.x)
      : await learner.predictFromFeatures(batch.x);
    for (
      const [module, values] of Object.entries(logits) as [
        ModuleName,
        Float32Array,
      ][]
    ) {
      const pred = argmaxRows(values, k);
      let c = 0;
      for (let i = 0; i < batch.size; i++) if (pred[i] === batch.labels[i]) c++;
      correct[module] = (correct[module] ?? 0) + c;
      if (confusion && module === predictor) {
        const m = confusionMatrix(pred, batch.labels, { numClasses: k });
        for (let a = 0; a < k; a++) {
          for (let b = 0; b < k; b++) confusion[a][b] += m[a][b];
        }
      }
    }
    total += batch.size;
    options.onBatch?.();
  }
  const accuracy: Partial<Record<ModuleName, number>> = {};
  for (const [m, c] of Object.entries(correct)) {
    accuracy[m as ModuleName] = total ? c / total : 0;
  }
  return { accuracy, confusion, total };
}

/** Loads the backbone and the method's trainable parameters for a config. */
export async function buildLearner(
  config: TrainConfig,
  options: { weightsFile?: string } = {},
): Promise<{ learner: Learner; backbone: Dinov2; weightsFile: string }> {
  const weightsFile = options.weightsFile ?? resolveWeightsFile(config);
  const weights = await loadDinov2Weights(weightsFile);
  const backbone = new Dinov2(weights.variant, weights.params);
  let groups: Map<string, HostTensor>[];
  if (config.init) {
    groups = initGroupsFromFile(
      (await readSafetensors(config.init)).tensors,
      config.method,
      config.init,
    );
  } else {
    const rs = new RandomState(config.seed);
    groups = initTrainable(
      config.method,
      { ...weights.variant, numClasses: config.dataset.numClasses },
      () => rs.rand(),
    );
  }
  const learner = new Learner(config.method, backbone, groups, {
    adam: {
      lr: config.lr,
      betas: config.betas,
      eps: config.eps,
      weightDecay: config.weightDecay,
    },
  });
  if (learner.numClasses !== config.dataset.numClasses) {
    learner.dispose();
    backbone.dispose();
    throw new Error(
      `--init "${config.init}" has heads for ${learner.numClasses} classes, but the dataset has ${config.dataset.numClasses}`,
    );
  }
  return { learner, backbone, weightsFile };
}

/** The loaders of a run: training (noisy labels, shuffled, augmented) and test. */
export function makeLoaders(
  config: TrainConfig,
  train: Dataset,
  test: Dataset,
  noisy: NoisyLabels,
  options: { prefetch?: number } = {},
): { trainLoader: BatchLoader; testLoader: BatchLoader } {
  const transform = { resize: config.resize, crop: config.crop };
  const trainLoader = new BatchLoader(train, {
    batchSize: config.batchSize,
    labels: noisy.noisy,
    shuffle: config.shuffle,
    seed: config.seed,
    augment: config.augment,
    transform,
    prefetch: options.prefetch ?? 2,
    skipBad: config.skipBad,
  });
  const testLoader = new BatchLoader(test, {
    batchSize: config.batchSize,
    shuffle: false,
    augment: false,
    transform,
    prefetch: options.prefetch ?? 2,
    skipBad: config.skipBad,
  });
  return { trainLoader, testLoader };
}

/**
 * The label-issue ranking's input (lib/label_issues/train_probabilities.ts):
 * every module's probabilities on the un-augmented training set, in dataset
 * order, written into the run folder.
 */
async function keepTrainProbabilities(
  learner: Learner,
  runDir: string,
  o: {
    config: TrainConfig;
    sets: { train: Dataset; test: Dataset; noisy: NoisyLabels };
    cache: FeatureCache | null;
    prefetch?: number;
  },
): Promise<void> {
  const { config, sets, cache } = o;
  const plain = cache ? null : makeLoaders(
    { ...config, augment: false, shuffle: false },
    sets.train,
    sets.test,
    sets.noisy,
    { prefetch: o.prefetch },
  ).trainLoader;
  const probs = await collectTrainProbabilities(
    plain ? imageBatches(plain, 0) : featureBatches(
      cache!,
      Int32Array.from(cache!.labels, (_, i) => i),
      256,
    ),
    (x) => plain ? learner.predict(x) : learner.predictFromFeatures(x),
    {
      labels: sets.noisy.noisy,
      classes: config.dataset.numClasses,
      epoch: config.epochs - 1,
    },
  );
  await writeTrainProbabilities(runDir, probs);
}

/**
 * Trains a method as `config` says, writing the run folder
 * (`config.json`, `metrics.jsonl`, `best`/`last` checkpoints, `avgacc.txt`).
 */
export async function train(
  config: TrainConfig,
  options: TrainOptions = {},
): Promise<TrainResult> {
  const started = performance.now();
  const log = options.log ?? ((line: string) => console.log(line));
  const backend = options.backend ??
    await initBackend(config.backend, {
      log,
      gpu: config.gpu,
      threads: config.threads ?? undefined,
    });
  const { train: trainSet, test: testSet } = await openDatasets(config);
  const noisy = noisyTrainLabels(config, trainSet);
  log(
    `data: ${config.dataset.name}, ${trainSet.length} train / ${testSet.length} test, ` +
      `${config.dataset.numClasses} classes; noise ${config.noise.mode} ${config.noise.rate} ` +
      `(actual ${(noisy.actualRate * 100).toFixed(1)}%)`,
  );
  const { learner, backbone, weightsFile } = await buildLearner(config);
  const runDir = runDirOf(config);
  let lock: RunLock | null = null;
  let madeDir = false;
  // Where a GPU failure would name (webgpu: lost device, out of memory).
  const gpu = { batchSize: config.batchSize, runDir, where: "set-up" };
  // Set once config.json is written, cleared once an epoch is on record: a
  // failure in between leaves a folder whose error must say how to go on.
  let unstarted = false;
  try {
    // One writer per run folder; leftovers of a killed one go first.
    madeDir = await Deno.stat(runDir).then(() => false, () => true);
    if (config.resume && madeDir) {
      throw new Error(
        `Cannot resume run "${runDir}": "${runDir}/config.json" not found`,
      );
    }
    await Deno.mkdir(runDir, { recursive: true }).catch((e) => {
      throw withPath(e, runDir, "create");
    });
    lock = await acquireRunLock(runDir);
    if (lock.stalePid !== null) {
      log(
        `run folder: process ${lock.stalePid}, which held ${runDir}, is gone; took over its lock`,
      );
    }
    const temps = await removeStaleTemps(runDir);
    if (temps.length > 0) {
      log(
        `run folder: removed ${temps.length} temporary file(s) of interrupted writes (${
          temps.join(", ")
        })`,
      );
    }
    await createRunDir(config, {
      argv: options.argv ?? Deno.args,
      versions: {
        tfjs: backend.tfjsVersion,
        backend: backend.name,
        nativeKernels: backend.nativeKernels,
        cKernels: backend.cKernels ? "on" : "off",
        adapter: adapterLine(backend.adapter),
      },
      weightsFile,
      labelListFile: labelListFile(config),
      trainLabels: trainSet.labels,
      noisyLabels: noisy.noisy,
    });
    unstarted = true;
    let metrics: EpochMetrics[] = [];
    let startEpoch = 0;
    // Per epoch and sample: did LPM/IAM (or the one module) agree with the label.
    const recorded = RECORDED_MODULES[config.method];
    let history = new SelectionHistory(trainSet.length, recorded);
    if (config.resume) {
      const ckpt = await loadCheckpoint(runDir, "last").catch((e) => {
        if (e instanceof Deno.errors.NotFound) return null;
        throw e;
      });
      if (ckpt) {
        const opt = ckpt.optimizer as unknown as {
          moments: Map<string, HostTensor>;
          steps: Record<string, number>;
        };
        restoreLearner(
          learner,
          ckpt.params,
          opt.moments,
          opt.steps,
          lrAt(ckpt.epoch + 1, config),
        );
        startEpoch = ckpt.epoch + 1;
        // The selection history rides in the checkpoint's metrics, beside the
        // epoch's record (which alone goes back to metrics.jsonl).
        const { selectionHistory: saved, ...epochRecord } = (ckpt.metrics ??
          {}) as Record<string, unknown>;
        if (saved !== undefined) {
          history = SelectionHistory.fromState(saved, `${runDir}/last`, {
            samples: trainSet.length,
            modules: recorded,
          });
          history.truncate(startEpoch);
        }
        // The checkpoint is the truth: metrics.jsonl and avgacc.txt follow it.
        metrics = await reconcileMetrics(
          runDir,
          ckpt.epoch,
          epochRecord as unknown as EpochMetrics,
        );
        await writeAvgAcc(runDir, metrics.map((r) => r.testAcc));
        unstarted = metrics.length === 0;
        log(`resume: from epoch ${ckpt.epoch} of ${runDir}`);
      }
    }
    const { trainLoader, testLoader } = makeLoaders(
      config,
      trainSet,
      testSet,
      noisy,
      options,
    );
    // --cache-features (linear only): center-crop features once, then train the head on them.
    let trainCache: FeatureCache | null = null;
    let testCache: FeatureCache | null = null;
    if (config.cacheFeatures && config.method === "linear") {
      const plain = makeLoaders(
        { ...config, augment: false, shuffle: false },
        trainSet,
        testSet,
        noisy,
        options,
      );
      trainCache = await cacheFeatures(
        learner,
        plain.trainLoader,
        noisy.noisy,
        "train",
      );
      testCache = await cacheFeatures(
        learner,
        testLoader,
        testSet.labels,
        "test",
      );
    }
    const predictor = PREDICTOR[config.method];
    const selectors = SELECTORS[config.method];
    const k = config.dataset.numClasses;
    let epochsRun = 0;
    let reportedSkips = 0;
    for (let epoch = startEpoch; epoch < config.epochs; epoch++) {
      if (
        options.stopAfterEpochs !== undefined &&
        epochsRun >= options.stopAfterEpochs
      ) break;
      const epochStart = performance.now();
      const lr = lrAt(epoch, config);
      learner.setLearningRate(lr);
      const batchCount = config.maxBatches ?? trainLoader.batchesPerEpoch();
      const bar = options.progress === false
        ? null
        : new Progress(Math.min(batchCount, trainLoader.batchesPerEpoch()), {
          label: `epoch ${epoch}`,
          unit: "batch",
        });
      const selection = Object.fromEntries(
        selectors.map((m) => [m, new SelectionAccumulator()]),
      );
      const trainCorrect: Partial<Record<ModuleName, number>> = {};
      let lossSum = 0;
      let seen = 0;
      let batchIndex = 0;
      const batches = trainCache
        ? featureBatches(
          trainCache,
          trainLoader.epochOrder(epoch),
          config.batchSize,
        )
        : imageBatches(trainLoader, epoch);
      for await (const batch of batches) {
        if (config.maxBatches !== null && batchIndex >= config.maxBatches) {
          break;
        }
        gpu.where = `epoch ${epoch}, batch ${batchIndex}`;
        const out = trainCache
          ? await learner.stepOnFeatures(batch.x, batch.labels)
          : await learner.step(batch.x, batch.labels);
        checkGpu(gpu);
        options.onStep?.(out, { epoch, batch: batchIndex });
        const loss = config.method === "cufit"
          ? out.losses.linear + out.losses.rein1
          : out.losses[config.method];
        for (const [name, v] of Object.entries(out.losses)) {
          if (!Number.isFinite(v)) {
            throw new NonFiniteLossError(
              `Loss "${name}" is ${v} at epoch ${epoch}, batch ${batchIndex}; ` +
                `the last good checkpoint is kept in ${runDir}`,
            );
          }
        }
        lossSum += loss * batch.size;
        for (
          const [module, values] of Object.entries(out.logits) as [
            ModuleName,
            Float32Array,
          ][]
        ) {
          const pred = argmaxRows(values, k);
          let c = 0;
          for (let i = 0; i < batch.size; i++) {
            if (pred[i] === batch.labels[i]) c++;
          }
          trainCorrect[module] = (trainCorrect[module] ?? 0) + c;
        }
        const isNoisy = new Uint8Array(batch.size);
        batch.indices.forEach((idx, i) => (isNoisy[i] = noisy.isNoisy[idx]));
        for (const m of selectors) selection[m].add(out.masks[m]!, isNoisy);
        history.record(
          epoch,
          batch.indices,
          Object.fromEntries(recorded.map((m) => [
            m,
            out.masks[m] ??
              agreementMask(argmaxRows(out.logits[m]!, k), batch.labels),
          ])),
        );
        seen += batch.size;
        batchIndex++;
        bar?.tick(1, `loss ${loss.toFixed(4)}`);
      }
      bar?.done();
      gpu.where = `epoch ${epoch}, evaluation`;
      const evaluation = await evaluateLearner(
        learner,
        testCache ?? testLoader,
      );
      checkGpu(gpu);
      const seconds = (performance.now() - epochStart) / 1000;
      const heads: Record<string, { trainAcc?: number; testAcc?: number }> = {};
      for (const m of Object.keys(evaluation.accuracy) as ModuleName[]) {
        heads[m] = {
          trainAcc: seen ? (trainCorrect[m] ?? 0) / seen : 0,
          testAcc: evaluation.accuracy[m],
        };
      }
      const record: EpochMetrics = {
        epoch,
        lr,
        trainLoss: seen ? lossSum / seen : NaN,
        trainAcc: seen ? (trainCorrect[predictor] ?? 0) / seen : 0,
        testAcc: evaluation.accuracy[predictor] ?? 0,
        ...(config.method === "cufit" ? { heads } : {}),
        ...(selectors.length
          ? {
            selection: Object.fromEntries(
              selectors.map((m) => [m, selection[m].stats()]),
            ),
          }
          : {}),
        batches: batchIndex,
        seconds,
        imagesPerSecond: seen / seconds,
      } as EpochMetrics;
      const isBest = metrics.every((r) => record.testAcc > r.testAcc);
      metrics.push(record);
      await learner.download();
      checkGpu(gpu);
      const state = learnerState(learner);
      const checkpoint = {
        params: state.params,
        optimizer: { lr, steps: state.steps, moments: state.moments },
        epoch,
        // Shuffling and augmentation are functions of (seed, epoch): no generator state to keep.
        rngState: { seed: config.seed },
        // The selection history rides in the checkpoint it belongs to.
        metrics: {
          ...(record as unknown as Record<string, number>),
          selectionHistory: history.toState() as unknown as StateValue,
        },
      };
      if (isBest) await saveCheckpoint(runDir, "best", checkpoint);
      await saveCheckpoint(runDir, "last", checkpoint);
      await appendMetrics(runDir, record);
      unstarted = false;
      await writeAvgAcc(runDir, metrics.map((r) => r.testAcc));
      log(formatEpochLine(record, { epochs: config.epochs }));
      const skipped = trainLoader.skipped + testLoader.skipped;
      if (skipped > reportedSkips) {
        const all = [
          ...trainLoader.skippedSamples,
          ...testLoader.skippedSamples,
        ];
        log(
          `skipped ${skipped} unreadable image(s) so far (--skip-bad), e.g. ${
            all[0]
          }`,
        );
        reportedSkips = skipped;
      }
      options.onEpoch?.(record);
      epochsRun++;
    }
    // A finished run keeps its final modules' probabilities on the training set.
    if (
      metrics.length === config.epochs &&
      (epochsRun > 0 || !existsSync(join(runDir, TRAIN_PROBABILITIES_FILE)))
    ) {
      await keepTrainProbabilities(learner, runDir, {
        config,
        sets: { train: trainSet, test: testSet, noisy },
        cache: trainCache,
        prefetch: options.prefetch,
      });
    }
    const best = bestEpoch(metrics);
    const last10 = lastEpochsMean(metrics.map((r) => r.testAcc));
    return {
      runDir,
      metrics,
      best,
      last10,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (err) {
    const e = await gpuFailure(err, gpu);
    if (
      !unstarted || e instanceof NonFiniteLossError ||
      e instanceof GpuLostError || !(e instanceof Error)
    ) throw e;
    throw new Error(
      `${e.message}; the run folder "${runDir}" holds no finished epoch: start it over with --resume (add --skip-bad to skip unreadable images), or choose another save name (-s)`,
      { cause: e },
    );
  } finally {
    learner.dispose();
    backbone.dispose();
    await lock?.release();
    // A folder this call made but never wrote a run into goes again.
    if (madeDir) await Deno.remove(runDir).catch(() => {});
  }
}
