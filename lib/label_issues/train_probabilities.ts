/**
 * The final modules' class probabilities on the training set, kept at the end
 * of training for the label-issue ranking: one inference pass over the
 * training images without augmentation (center crop, dataset order), softmax
 * of each module's logits.
 *
 * Stored in the run folder as `train_probabilities.safetensors`:
 * `probs.<module>` F32 `[N, K]` per module (LPM, IAM, LAM for CUFIT; the one
 * module of linear probing and Rein), and `labels` I32 `[N]`, the given
 * (noisy) labels the run trained on, so that a reader can check that it pairs
 * the probabilities with the same labels. Rows of samples that could not be
 * read (`--skip-bad`) are NaN. The full rows are kept, not only the given
 * label's probability and the argmax, because the confident-learning
 * baseline needs every class's probability. The file is written to a
 * temporary name and renamed.
 *
 * @module
 */
import { join } from "node:path";
import type { Tensor } from "../backend/tf.ts";
import type { ModuleName } from "../train/learner.ts";
import type { HostTensor } from "../weights/host_tensor.ts";
import { readSafetensors, writeSafetensors } from "../weights/safetensors.ts";

/** The file name inside a run folder. */
export const TRAIN_PROBABILITIES_FILE = "train_probabilities.safetensors";

/** The `format` metadata of the file. */
export const TRAIN_PROBABILITIES_FORMAT = "cufit-ts-train-probabilities/1";

/** Class probabilities of every training sample, per module. */
export interface TrainProbabilities {
  /** Samples N. */
  samples: number;
  /** Classes K. */
  classes: number;
  /** `[N, K]` row-major per module; NaN rows for samples never read. */
  probs: Partial<Record<ModuleName, Float32Array>>;
  /** The given (noisy) labels. */
  labels: Int32Array;
  /** The epoch whose parameters made them (0-based). */
  epoch: number;
}

/** One batch of the pass: inputs and their dataset indices. */
export interface IndexedBatch {
  x: Tensor;
  indices: Int32Array;
}

/**
 * Runs `predict` over `batches` and turns each module's logits into
 * probabilities, placed at the batches' dataset indices.
 */
export async function collectTrainProbabilities(
  batches: AsyncIterable<IndexedBatch> | Iterable<IndexedBatch>,
  predict: (
    x: Tensor,
  ) =>
    | Partial<Record<ModuleName, Float32Array>>
    | Promise<Partial<Record<ModuleName, Float32Array>>>,
  options: { labels: Int32Array; classes: number; epoch: number },
): Promise<TrainProbabilities> {
  const n = options.labels.length;
  const k = options.classes;
  const probs: Partial<Record<ModuleName, Float32Array>> = {};
  for await (const batch of batches) {
    const logits = await predict(batch.x);
    for (
      const [m, values] of Object.entries(logits) as [
        ModuleName,
        Float32Array,
      ][]
    ) {
      const out = probs[m] ??= new Float32Array(n * k).fill(NaN);
      const p = softmaxRows(values, k);
      batch.indices.forEach((idx, r) =>
        out.set(p.subarray(r * k, (r + 1) * k), idx * k)
      );
    }
  }
  return {
    samples: n,
    classes: k,
    probs,
    labels: Int32Array.from(options.labels),
    epoch: options.epoch,
  };
}

/** Row-wise softmax of `[B, K]` logits (max-shifted, in float64). */
export function softmaxRows(
  logits: ArrayLike<number>,
  k: number,
): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r * k < logits.length; r++) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, logits[r * k + c]);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += Math.exp(logits[r * k + c] - max);
    for (let c = 0; c < k; c++) {
      out[r * k + c] = Math.exp(logits[r * k + c] - max) / sum;
    }
  }
  return out;
}

/** Writes `train_probabilities.safetensors` into a run folder (temporary file, then rename). */
export async function writeTrainProbabilities(
  runDir: string,
  tp: TrainProbabilities,
): Promise<string> {
  const tensors = new Map<string, HostTensor>();
  for (const [m, p] of Object.entries(tp.probs)) {
    tensors.set(`probs.${m}`, {
      dtype: "F32",
      shape: [tp.samples, tp.classes],
      data: p,
    });
  }
  tensors.set("labels", { dtype: "I32", shape: [tp.samples], data: tp.labels });
  const path = join(runDir, TRAIN_PROBABILITIES_FILE);
  await writeSafetensors(path, tensors, {
    metadata: {
      format: TRAIN_PROBABILITIES_FORMAT,
      epoch: String(tp.epoch),
    },
  });
  return path;
}

/**
 * Reads a run folder's `train_probabilities.safetensors`; throws
 * `Deno.errors.NotFound` (with a hint) when the run has none.
 */
export async function readTrainProbabilities(
  runDir: string,
): Promise<TrainProbabilities> {
  const path = join(runDir, TRAIN_PROBABILITIES_FILE);
  let file;
  try {
    file = await readSafetensors(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(
        `Run "${runDir}" has no ${TRAIN_PROBABILITIES_FILE}: training writes it after its last epoch (finish the run with --resume)`,
      );
    }
    throw e;
  }
  const { tensors, metadata } = file;
  if (metadata?.format !== TRAIN_PROBABILITIES_FORMAT) {
    throw new Error(
      `"${path}": metadata format is ${
        JSON.stringify(metadata?.format)
      }, expected "${TRAIN_PROBABILITIES_FORMAT}"`,
    );
  }
  const labels = tensors.get("labels");
  if (!labels || labels.dtype !== "I32" || labels.shape.length !== 1) {
    throw new Error(`"${path}": expected an I32 [N] tensor "labels"`);
  }
  const n = labels.shape[0];
  const probs: Partial<Record<ModuleName, Float32Array>> = {};
  let classes = 0;
  for (const [name, t] of tensors) {
    if (!name.startsWith("probs.")) continue;
    const m = name.slice("probs.".length) as ModuleName;
    if (
      !["lpm", "iam", "lam", "rein"].includes(m) || t.dtype !== "F32" ||
      t.shape.length !== 2 || t.shape[0] !== n ||
      (classes && t.shape[1] !== classes)
    ) {
      throw new Error(
        `"${path}": tensor "${name}" is ${t.dtype} ${
          JSON.stringify(t.shape)
        }, expected F32 [${n}, K] for a module lpm, iam, lam or rein`,
      );
    }
    classes = t.shape[1];
    probs[m] = t.data as Float32Array;
  }
  if (classes === 0) {
    throw new Error(`"${path}": no "probs.<module>" tensor`);
  }
  return {
    samples: n,
    classes,
    probs,
    labels: labels.data as Int32Array,
    epoch: Number(metadata.epoch ?? NaN),
  };
}
