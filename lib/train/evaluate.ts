/**
 * Using a finished run: its accuracy on a split with per-class figures
 * (`deno task evaluate`), and class probabilities for images
 * (`deno task predict`).
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import { tf } from "../backend/tf.ts";
import { checkGpu } from "../backend/webgpu/device.ts";
import type { Dataset } from "../data/dataset.ts";
import { decodeImage } from "../data/image.ts";
import { BatchLoader } from "../data/loader.ts";
import { medmnistClasses } from "../data/medmnist.ts";
import { testTransform } from "../data/transforms.ts";
import { type CheckpointTag, loadCheckpoint } from "./checkpoint.ts";
import type { TrainConfig } from "./config.ts";
import { openDatasets } from "./data.ts";
import { type Learner, type ModuleName, PREDICTOR } from "./learner.ts";
import {
  argmaxRows,
  type EvaluationSummary,
  evaluationSummary,
} from "./metrics.ts";
import { readRunRecord, type RunRecord } from "./run_dir.ts";
import { buildLearner, loadLearnerParams } from "./trainer.ts";

/** A run's learner with a checkpoint's parameters loaded. */
export interface LoadedRun {
  record: RunRecord;
  config: TrainConfig;
  learner: Learner;
  /** Frees the learner and its backbone. */
  dispose(): void;
}

/** Options of {@linkcode loadRun}. */
export interface LoadRunOptions {
  /** Which checkpoint. @default "best" */
  checkpoint?: CheckpointTag;
}

/** Loads a run folder's config, backbone and checkpoint. */
export async function loadRun(
  dir: string,
  options: LoadRunOptions = {},
): Promise<LoadedRun> {
  const record = await readRunRecord(dir).catch((e) => {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`"${dir}" is not a run folder: it has no config.json`);
    }
    throw e;
  });
  const resolve = (p: string) => (isAbsolute(p) ? p : join(record.cwd, p));
  const config = { ...record.config, init: null };
  config.dataset = { ...config.dataset, root: resolve(config.dataset.root) };
  const weights = record.digests.weights?.path ?? config.weights;
  if (!weights) throw new Error(`Run "${dir}" records no weights file`);
  const { learner, backbone } = await buildLearner(config, {
    weightsFile: resolve(weights),
  });
  try {
    const ckpt = await loadCheckpoint(dir, options.checkpoint ?? "best");
    loadLearnerParams(learner, ckpt.params);
  } catch (e) {
    learner.dispose();
    backbone.dispose();
    throw e;
  }
  return {
    record,
    config,
    learner,
    dispose() {
      learner.dispose();
      backbone.dispose();
    },
  };
}

/** A run's figures on one split. */
export interface RunEvaluation {
  split: "train" | "test";
  /** The module the method reports (`lpm`, `rein` or `lam`). */
  predictor: ModuleName;
  /** Accuracy, confusion matrix and per-class precision/recall of the predictor. */
  summary: EvaluationSummary;
  /** Accuracy of every module (CUFIT: LPM, IAM and LAM). */
  modules: Partial<Record<ModuleName, number>>;
}

/** Evaluates a loaded run on a split (clean labels, center crop). */
export async function evaluateRun(
  run: LoadedRun,
  options: { split?: "train" | "test"; dataset?: Dataset } = {},
): Promise<RunEvaluation> {
  const split = options.split ?? "test";
  const dataset = options.dataset ?? (await openDatasets(run.config))[split];
  const { config, learner } = run;
  const loader = new BatchLoader(dataset, {
    batchSize: config.batchSize,
    transform: { resize: config.resize, crop: config.crop },
  });
  const k = learner.numClasses;
  const predictor = PREDICTOR[config.method];
  const predictions: Partial<Record<ModuleName, Int32Array>> = {};
  const labels = new Int32Array(dataset.length);
  let n = 0;
  for await (const batch of loader.epoch(0)) {
    const x = tf.tensor4d(batch.images, [
      batch.size,
      config.crop,
      config.crop,
      3,
    ]);
    const logits = await learner.predict(x);
    x.dispose();
    // webgpu reports a buffer it could not make out of band (zeros here).
    checkGpu({ batchSize: batch.size, batchFlag: null, where: "evaluation" });
    for (
      const [m, values] of Object.entries(logits) as [
        ModuleName,
        Float32Array,
      ][]
    ) {
      predictions[m] ??= new Int32Array(dataset.length);
      predictions[m]!.set(argmaxRows(values, k), n);
    }
    labels.set(batch.labels, n);
    n += batch.size;
  }
  const modules: Partial<Record<ModuleName, number>> = {};
  for (
    const [m, pred] of Object.entries(predictions) as [ModuleName, Int32Array][]
  ) {
    let c = 0;
    for (let i = 0; i < n; i++) if (pred[i] === labels[i]) c++;
    modules[m] = n ? c / n : 0;
  }
  const summary = evaluationSummary(
    predictions[predictor]!.subarray(0, n),
    labels.subarray(0, n),
    {
      numClasses: k,
      classNames: dataset.classes.length === k ? dataset.classes : null,
    },
  );
  return { split, predictor, summary, modules };
}

/** One image's prediction. */
export interface Prediction {
  image: string;
  /** Class name (or index) of the largest probability. */
  predicted: string;
  /** Softmax probabilities by class name. */
  probabilities: Record<string, number>;
}

/**
 * Class names of a run's dataset without reading its images: MedMNIST's
 * published names, an ImageFolder's sorted class folders, else indices.
 */
export async function classNamesOf(config: TrainConfig): Promise<string[]> {
  const k = config.dataset.numClasses;
  const fallback = Array.from({ length: k }, (_, i) => String(i));
  const known = medmnistClasses[config.dataset.name];
  if (known?.length === k) return known;
  if (config.dataset.kind === "synthetic") {
    // Generated data names its classes; generating the test split is cheap.
    const { test } = await openDatasets(config);
    if (test.classes.length === k) return test.classes;
  }
  if (config.dataset.kind === "image_folder") {
    try {
      const names: string[] = [];
      for await (const e of Deno.readDir(join(config.dataset.root, "train"))) {
        if (e.isDirectory) names.push(e.name);
      }
      names.sort();
      if (names.length === k) return names;
    } catch {
      // No train folder here: indices will do.
    }
  }
  return fallback;
}

/** Class probabilities of image files under a loaded run (test transform). */
export async function predictImages(
  run: LoadedRun,
  images: string[],
  options: { classes?: string[] } = {},
): Promise<Prediction[]> {
  const { config, learner } = run;
  const k = learner.numClasses;
  const classes = options.classes ??
    Array.from({ length: k }, (_, i) => String(i));
  const per = config.crop * config.crop * 3;
  const out: Prediction[] = [];
  for (const image of images) {
    const pixels = new Float32Array(per);
    await testTransform(await decodeImage(image), pixels, 0, {
      resize: config.resize,
      crop: config.crop,
    });
    const x = tf.tensor4d(pixels, [1, config.crop, config.crop, 3]);
    const logits = (await learner.predict(x))[PREDICTOR[config.method]]!;
    x.dispose();
    checkGpu({ batchSize: 1, where: `prediction of "${image}"` });
    const max = Math.max(...logits);
    const exp = Array.from(logits, (v) => Math.exp(v - max));
    const sum = exp.reduce((a, b) => a + b, 0);
    const probabilities: Record<string, number> = {};
    exp.forEach((e, i) => (probabilities[classes[i] ?? String(i)] = e / sum));
    const best = exp.indexOf(Math.max(...exp));
    out.push({
      image,
      predicted: classes[best] ?? String(best),
      probabilities,
    });
  }
  return out;
}
