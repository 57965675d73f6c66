/**
 * Training configuration: the reference's per-dataset `conf/<name>.json`
 * files, our defaults, and the resolved {@linkcode TrainConfig} a run is
 * made from (CLI options over the dataset file over defaults).
 *
 * A dataset file holds the reference's five keys, with `epoch` a string as the
 * reference writes it:
 *
 * ```json
 * {"epoch": "100", "id_dataset": "./data/ham10000", "batch_size": 32,
 *  "save_path": "./checkpoints/HAM10000/", "num_classes": 7}
 * ```
 *
 * and may add keys of ours: `dataset` (the loader: `image_folder`, `aptos`,
 * `medmnist` or `synthetic`; inferred from the name like the reference when
 * absent), `resize` and `image_size` (the resize and crop sizes, default 256
 * and 224), and `synthetic` (`train_per_class`, `test_per_class`, `size`,
 * `seed`, optional `difficulty` in [0, 1] and `cue`, `texture` or
 * `orientation`) for generated data. Paths stay as written: like the reference, a
 * relative path is relative to the working directory.
 *
 * @module
 */
import { multiStepLr, referenceMilestones } from "../optim/multistep_lr.ts";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BackendName } from "../backend/backend.ts";
import { SYNTHETIC_CUES, type SyntheticCue } from "../data/synthetic.ts";
import {
  boolean,
  integerAtLeast,
  nonEmptyString,
  numberIn,
  oneOf,
  positiveNumber,
  seed,
  show,
} from "./_checks.ts";
import { parseJson } from "../io/parse_json.ts";

/** The three training scripts of the reference. */
export const METHODS = ["linear", "rein", "cufit"] as const;
/** A training method: linear probe, Rein, or CUFIT. */
export type Method = typeof METHODS[number];

/** DINOv2 ViT sizes: S/14, B/14, L/14. */
export const NET_SIZES = ["s", "b", "l"] as const;
/** A DINOv2 size letter. */
export type NetSize = typeof NET_SIZES[number];

/**
 * Backends accepted by `--backend`; the same list as `BACKENDS` in
 * lib/backend/backend.ts, repeated so that reading a config does not load
 * TensorFlow.js (`satisfies` keeps the two in step).
 */
export const BACKEND_NAMES = [
  "auto",
  "webgpu",
  "tensorflow-gpu",
  "tensorflow",
  "wasm",
  "cpu",
] as const satisfies readonly BackendName[];

/** Dataset loaders. */
export const DATASET_KINDS = [
  "image_folder",
  "aptos",
  "medmnist",
  "synthetic",
] as const;
/** Which loader reads a dataset. */
export type DatasetKind = typeof DATASET_KINDS[number];

/**
 * Label-noise models: `symmetric` is the reference's "flip to another class
 * uniformly with probability rate"; `matrix` draws each noisy label from row
 * `true label` of a given K x K transition matrix.
 */
export const NOISE_MODES = ["symmetric", "pairflip", "matrix"] as const;
/** A label-noise model. */
export type NoiseMode = typeof NOISE_MODES[number];

/** The ViT patch size: crops must be a multiple of it. */
export const PATCH_SIZE = 14;

/** Generated data (conf key `synthetic`, snake_case in the file). */
export interface SyntheticSpec {
  /** Training images per class. */
  trainPerClass: number;
  /** Test images per class. */
  testPerClass: number;
  /** Side of each square image, in pixels. */
  size: number;
  /** Seed of the generator. */
  seed: number;
  /** 0 (easy) to 1 (overlapping classes); the generator's default when absent. */
  difficulty?: number;
  /** What tells classes with the same shape apart; the generator's default when absent. */
  cue?: SyntheticCue;
}

/** A dataset file, read and checked. */
export interface DatasetConfig {
  /** The name the loader dispatches on (`ham10000`, `bloodmnist`, ...): the file's base name. */
  name: string;
  /** The file it came from. */
  file: string;
  /** Which loader reads it. */
  kind: DatasetKind;
  /** `id_dataset`: the dataset's root folder. */
  root: string;
  /** `num_classes`. */
  numClasses: number;
  /** `epoch`, as a number. */
  epochs: number;
  /** `batch_size`. */
  batchSize: number;
  /** `save_path`: runs go to `<save_path>/<save name>/`. */
  savePath: string;
  /** `resize`, when the file sets it. */
  resize: number | null;
  /** `image_size` (the crop), when the file sets it. */
  crop: number | null;
  /** `synthetic`, for generated data. */
  synthetic: SyntheticSpec | null;
}

/** Label noise applied to the training labels (test labels stay clean). */
export interface NoiseConfig {
  mode: NoiseMode;
  /** Probability that a label is replaced (symmetric mode). */
  rate: number;
  /** Seed of the noise generator (NumPy's legacy `RandomState`). */
  seed: number;
  /** Row-stochastic K x K transition matrix (matrix mode only). */
  matrix: number[][] | null;
}

/**
 * Everything a training run is made from. JSON-able (absent values are
 * `null`), so it is written as is into the run folder's `config.json`.
 */
export interface TrainConfig {
  method: Method;
  dataset: {
    name: string;
    kind: DatasetKind;
    /** Root folder, after `--data-root`. */
    root: string;
    numClasses: number;
    /** The dataset file read. */
    file: string;
    synthetic: SyntheticSpec | null;
  };
  epochs: number;
  batchSize: number;
  /** Base learning rate of Adam. */
  lr: number;
  /** L2 penalty added to the gradient (torch Adam's `weight_decay`, not AdamW). */
  weightDecay: number;
  betas: [number, number];
  eps: number;
  /** MultiStepLR milestones as fractions of `epochs` (see {@linkcode milestones}). */
  milestoneFractions: number[];
  /** MultiStepLR decay factor. */
  gamma: number;
  noise: NoiseConfig;
  /** Seed of shuffling, augmentation and head/Rein initialization. */
  seed: number;
  /** Random flip + random crop on training images (else center crop). */
  augment: boolean;
  /** Reshuffle the training set every epoch. */
  shuffle: boolean;
  netsize: NetSize;
  /** Backbone weights file; `null` lets the task pick its default for `netsize`. */
  weights: string | null;
  /** Safetensors file of trainable parameters to start from, instead of a fresh init. */
  init: string | null;
  backend: BackendName;
  /** Dataset file's `save_path`. */
  savePath: string;
  /** Run name (`-s`): the run folder is `<savePath>/<saveName>/`. */
  saveName: string;
  /** Continue from the run folder's `last` checkpoint. */
  resume: boolean;
  /**
   * Compute center-crop backbone features once and train the head on them
   * (linear only; not the reference's augmented behaviour).
   */
  cacheFeatures: boolean;
  /** Square resize before cropping, in pixels. */
  resize: number;
  /** Square crop fed to the ViT, in pixels (a multiple of 14). */
  crop: number;
  /** Accelerator index (`-g`). */
  gpu: number;
  /** Skip unreadable images (counted and reported) instead of stopping. */
  skipBad: boolean;
  /** Stop each epoch after this many batches (smoke runs); `null` for all. */
  maxBatches: number | null;
  /** CPU threads of the native kernels; `null` for every core. */
  threads: number | null;
}

/** The keys {@linkcode defaults} provides. */
export type TrainDefaults = Omit<
  TrainConfig,
  "method" | "dataset" | "epochs" | "batchSize" | "savePath" | "saveName"
>;

/** Defaults of every setting a dataset file does not give (the reference's values). */
export const defaults = {
  lr: 1e-3,
  weightDecay: 1e-5,
  betas: [0.9, 0.999],
  eps: 1e-8,
  milestoneFractions: [0.5, 0.75, 0.9],
  gamma: 0.1,
  noise: { mode: "symmetric", rate: 0.2, seed: 0, matrix: null },
  seed: 0,
  augment: true,
  shuffle: true,
  netsize: "s",
  weights: null,
  init: null,
  backend: "auto",
  resume: false,
  cacheFeatures: false,
  skipBad: false,
  resize: 256,
  crop: 224,
  gpu: 0,
  maxBatches: null,
  threads: null,
} satisfies TrainDefaults;

/** Overrides from the command line (or a caller); every key optional. */
export interface TrainOverrides {
  /** Noise rate (`-n`). @default 0.2 */
  noise?: number;
  /** @default "symmetric" */
  noiseMode?: NoiseMode;
  /** @default 0 */
  noiseSeed?: number;
  /** Transition matrix for `noiseMode: "matrix"`. */
  noiseMatrix?: number[][];
  /** Run name (`-s`). @default "<method>-noise<rate>" */
  save?: string;
  /** @default 0 */
  gpu?: number;
  /** @default "s" */
  netsize?: NetSize;
  /** @default null (the task's default weights for netsize) */
  weights?: string;
  /** @default the dataset file's `epoch` */
  epochs?: number;
  /** @default the dataset file's `batch_size` */
  batchSize?: number;
  /** @default 1e-3 */
  lr?: number;
  /** @default 0 */
  seed?: number;
  /** @default "auto" */
  backend?: BackendName;
  /** @default null */
  init?: string;
  /** @default true */
  augment?: boolean;
  /** @default true */
  shuffle?: boolean;
  /** @default false */
  resume?: boolean;
  /** @default false */
  cacheFeatures?: boolean;
  /** @default false */
  skipBad?: boolean;
  /** @default the dataset file's `id_dataset` */
  dataRoot?: string;
  /** Folder of the run folders. @default the dataset file's `save_path` */
  savePath?: string;
  /** @default null (every batch) */
  maxBatches?: number;
  /** @default null (every core) */
  threads?: number;
}

const REQUIRED_KEYS = {
  epoch: "a positive integer or a string of one",
  id_dataset: "a non-empty string",
  batch_size: "a positive integer",
  save_path: "a non-empty string",
  num_classes: "an integer >= 2",
} as const;
const OPTIONAL_KEYS = ["dataset", "resize", "image_size", "synthetic"] as const;
const SYNTHETIC_KEYS = [
  "train_per_class",
  "test_per_class",
  "size",
  "seed",
] as const;
const SYNTHETIC_OPTIONAL = ["difficulty", "cue"] as const;

/** Options of {@linkcode loadDatasetConfig}. */
export interface LoadDatasetConfigOptions {
  /**
   * Folder where a bare name `x` is looked up as `x.json`.
   * @default this project's conf/ folder
   */
  confDir?: string;
}

/** This project's conf/ folder. */
export function projectConfDir(): string {
  return fileURLToPath(new URL("../../conf/", import.meta.url));
}

/**
 * Reads a dataset file: a bare name (`ham10000`) means `conf/ham10000.json`,
 * anything with a slash or ending in `.json` is a path. Unknown keys, missing
 * keys and wrong types are errors naming the file and the key.
 */
export function loadDatasetConfig(
  nameOrPath: string,
  options: LoadDatasetConfigOptions = {},
): DatasetConfig {
  const confDir = options.confDir ?? projectConfDir();
  const isPath = /[\\/]/.test(nameOrPath) || nameOrPath.endsWith(".json");
  if (!isPath && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(nameOrPath)) {
    throw new TypeError(
      `Dataset ${
        show(nameOrPath)
      } is neither a name (letters, digits, "_", "-", ".") nor a path to a .json file`,
    );
  }
  const file = isPath ? nameOrPath : join(confDir, `${nameOrPath}.json`);
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      const known = isPath ? "" : `; known datasets: ${knownNames(confDir)}`;
      throw new Error(
        `Dataset config ${
          show(nameOrPath)
        } not found: no file "${file}"${known}`,
      );
    }
    throw e;
  }
  return checkDatasetConfig(
    parseJson(text, `dataset config "${file}"`),
    file,
  );
}

function knownNames(confDir: string): string {
  try {
    const names = [...Deno.readDirSync(confDir)]
      .filter((e) => e.isFile && e.name.endsWith(".json"))
      .map((e) => e.name.slice(0, -5))
      .sort();
    return names.length > 0 ? names.join(", ") : `none in "${confDir}"`;
  } catch {
    return `none ("${confDir}" cannot be listed)`;
  }
}

function checkDatasetConfig(raw: unknown, file: string): DatasetConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new TypeError(
      `Dataset config "${file}" must hold a JSON object, got ${show(raw)}`,
    );
  }
  const obj = raw as Record<string, unknown>;
  const allowed = [...Object.keys(REQUIRED_KEYS), ...OPTIONAL_KEYS];
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new TypeError(
        `Dataset config "${file}" has unknown key "${key}": expected ${
          allowed.join(", ")
        }`,
      );
    }
  }
  for (const [key, expected] of Object.entries(REQUIRED_KEYS)) {
    if (!(key in obj)) {
      throw new TypeError(
        `Dataset config "${file}" lacks key "${key}" (${expected})`,
      );
    }
  }
  const at = (key: string) => `Dataset config "${file}" key "${key}"`;

  // The reference writes `"epoch": "100"` and reads it with int().
  const epochRaw = obj.epoch;
  const epochs = typeof epochRaw === "string" && /^\s*\d+\s*$/.test(epochRaw)
    ? Number(epochRaw)
    : epochRaw;
  if (
    typeof epochs !== "number" || !Number.isSafeInteger(epochs) || epochs < 1
  ) {
    throw new TypeError(
      `${at("epoch")} must be ${REQUIRED_KEYS.epoch}, got ${show(epochRaw)}`,
    );
  }
  const name = basename(file).replace(/\.json$/, "");
  const kind = obj.dataset === undefined
    ? inferKind(name)
    : oneOf(obj.dataset, DATASET_KINDS, at("dataset"));
  const synthetic = obj.synthetic === undefined
    ? null
    : checkSynthetic(obj.synthetic, (k) =>
      at(k ? `synthetic.${k}` : "synthetic"));
  if (kind === "synthetic" && synthetic === null) {
    throw new TypeError(
      `Dataset config "${file}" has "dataset": "synthetic" but lacks key "synthetic" (${
        SYNTHETIC_KEYS.join(", ")
      })`,
    );
  }
  return {
    name,
    file,
    kind,
    root: nonEmptyString(obj.id_dataset, at("id_dataset")),
    numClasses: integerAtLeast(obj.num_classes, 2, at("num_classes")),
    epochs,
    batchSize: integerAtLeast(obj.batch_size, 1, at("batch_size")),
    savePath: nonEmptyString(obj.save_path, at("save_path")),
    resize: obj.resize === undefined
      ? null
      : integerAtLeast(obj.resize, 1, at("resize")),
    crop: obj.image_size === undefined
      ? null
      : integerAtLeast(obj.image_size, 1, at("image_size")),
    synthetic,
  };
}

/** The reference dispatches on the name: `aptos`, anything with `mnist`, else folders. */
function inferKind(name: string): DatasetKind {
  if (name === "aptos") return "aptos";
  if (name.includes("mnist")) return "medmnist";
  return "image_folder";
}

function checkSynthetic(
  raw: unknown,
  at: (key?: string) => string,
): SyntheticSpec {
  const what = at();
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new TypeError(`${what} must be an object, got ${show(raw)}`);
  }
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (![...SYNTHETIC_KEYS, ...SYNTHETIC_OPTIONAL].includes(key as never)) {
      throw new TypeError(
        `${what} has unknown key "${key}": expected ${
          [...SYNTHETIC_KEYS, ...SYNTHETIC_OPTIONAL].join(", ")
        }`,
      );
    }
  }
  for (const key of SYNTHETIC_KEYS) {
    if (!(key in obj)) throw new TypeError(`${what} lacks key "${key}"`);
  }
  return {
    trainPerClass: integerAtLeast(
      obj.train_per_class,
      1,
      at("train_per_class"),
    ),
    testPerClass: integerAtLeast(
      obj.test_per_class,
      1,
      at("test_per_class"),
    ),
    size: integerAtLeast(obj.size, 1, at("size")),
    seed: seed(obj.seed, at("seed")),
    ...(obj.difficulty === undefined
      ? {}
      : { difficulty: numberIn(obj.difficulty, 0, 1, at("difficulty")) }),
    ...(obj.cue === undefined
      ? {}
      : { cue: oneOf(obj.cue, SYNTHETIC_CUES, at("cue")) }),
  };
}

/** Options of {@linkcode resolveConfig}: the overrides themselves. */
export type ResolveConfigOptions = TrainOverrides;

/**
 * Builds a run's configuration: each override (CLI) replaces the dataset
 * file's value, which replaces {@linkcode defaults}. Every value is checked;
 * an error names the override key and the value.
 */
export function resolveConfig(
  method: Method,
  dataset: DatasetConfig,
  overrides: ResolveConfigOptions = {},
): TrainConfig {
  oneOf(method, METHODS, "Method");
  const o = overrides;
  const key = (k: keyof TrainOverrides) => `Option "${k}"`;
  const known = Object.keys(OVERRIDE_KEYS);
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) {
      throw new TypeError(
        `Unknown option "${k}": expected one of ${known.join(", ")}`,
      );
    }
  }
  // undefined means "not given", as with an absent CLI flag.
  const pick = <K extends keyof TrainOverrides>(
    k: K,
    fallback: NonNullable<TrainOverrides[K]> | null,
    check: (v: unknown, what: string) => NonNullable<TrainOverrides[K]>,
  ) => (o[k] === undefined ? fallback : check(o[k], key(k)));

  const rate = pick(
    "noise",
    defaults.noise.rate,
    (v, w) => numberIn(v, 0, 1, w),
  )!;
  const noiseMode = pick(
    "noiseMode",
    defaults.noise.mode as NoiseMode,
    (v, w) => oneOf(v, NOISE_MODES, w),
  )!;
  const matrix = o.noiseMatrix === undefined
    ? null
    : checkMatrix(o.noiseMatrix, dataset.numClasses, key("noiseMatrix"));
  if (noiseMode === "matrix" && matrix === null) {
    throw new TypeError(
      `Option "noiseMode" is "matrix" but option "noiseMatrix" is not given`,
    );
  }
  if (noiseMode !== "matrix" && matrix !== null) {
    throw new TypeError(
      `Option "noiseMatrix" is given but option "noiseMode" is ${
        show(noiseMode)
      }, expected "matrix"`,
    );
  }
  const cacheFeatures = pick("cacheFeatures", defaults.cacheFeatures, boolean)!;
  if (cacheFeatures && method !== "linear") {
    throw new TypeError(
      `Option "cacheFeatures" works only with method "linear", got method ${
        show(method)
      }`,
    );
  }
  const resize = dataset.resize ?? defaults.resize;
  const crop = dataset.crop ?? defaults.crop;
  if (crop % PATCH_SIZE !== 0) {
    throw new RangeError(
      `Dataset config "${dataset.file}" key "image_size" must be a multiple of ${PATCH_SIZE} (the ViT patch size), got ${crop}`,
    );
  }
  if (resize < crop) {
    throw new RangeError(
      `Dataset config "${dataset.file}" key "resize" (${resize}) must be at least the crop size (${crop})`,
    );
  }
  const saveName = pick("save", null, nonEmptyString) ??
    `${method}-noise${rate}`;
  if (/[\\/]/.test(saveName) || saveName === "." || saveName === "..") {
    throw new TypeError(
      `Option "save" must be a folder name without slashes, got ${
        show(saveName)
      }`,
    );
  }
  return {
    method,
    dataset: {
      name: dataset.name,
      kind: dataset.kind,
      root: pick("dataRoot", dataset.root, nonEmptyString)!,
      numClasses: dataset.numClasses,
      file: dataset.file,
      synthetic: dataset.synthetic === null ? null : { ...dataset.synthetic },
    },
    epochs: pick("epochs", dataset.epochs, (v, w) => integerAtLeast(v, 1, w))!,
    batchSize: pick(
      "batchSize",
      dataset.batchSize,
      (v, w) => integerAtLeast(v, 1, w),
    )!,
    lr: pick("lr", defaults.lr, positiveNumber)!,
    weightDecay: defaults.weightDecay,
    betas: [defaults.betas[0], defaults.betas[1]],
    eps: defaults.eps,
    milestoneFractions: [...defaults.milestoneFractions],
    gamma: defaults.gamma,
    noise: {
      mode: noiseMode,
      rate,
      seed: pick("noiseSeed", defaults.noise.seed, seed)!,
      matrix,
    },
    seed: pick("seed", defaults.seed, seed)!,
    augment: pick("augment", defaults.augment, boolean)!,
    shuffle: pick("shuffle", defaults.shuffle, boolean)!,
    netsize: pick(
      "netsize",
      defaults.netsize as NetSize,
      (v, w) => oneOf(v, NET_SIZES, w),
    )!,
    weights: pick("weights", defaults.weights, nonEmptyString),
    init: pick("init", defaults.init, nonEmptyString),
    backend: pick(
      "backend",
      defaults.backend as BackendName,
      (v, w) => oneOf(v, BACKEND_NAMES, w),
    )!,
    savePath: pick("savePath", dataset.savePath, nonEmptyString)!,
    saveName,
    resume: pick("resume", defaults.resume, boolean)!,
    cacheFeatures,
    resize,
    crop,
    gpu: pick("gpu", defaults.gpu, (v, w) => integerAtLeast(v, 0, w))!,
    skipBad: pick("skipBad", defaults.skipBad, boolean)!,
    maxBatches: pick(
      "maxBatches",
      defaults.maxBatches,
      (v, w) => integerAtLeast(v, 1, w),
    ),
    threads: pick(
      "threads",
      defaults.threads,
      (v, w) => integerAtLeast(v, 1, w),
    ),
  };
}

// Every TrainOverrides key, so unknown keys can be refused.
const OVERRIDE_KEYS: Record<keyof TrainOverrides, true> = {
  noise: true,
  noiseMode: true,
  noiseSeed: true,
  noiseMatrix: true,
  save: true,
  gpu: true,
  netsize: true,
  weights: true,
  epochs: true,
  batchSize: true,
  lr: true,
  seed: true,
  backend: true,
  init: true,
  augment: true,
  shuffle: true,
  resume: true,
  cacheFeatures: true,
  skipBad: true,
  dataRoot: true,
  savePath: true,
  maxBatches: true,
  threads: true,
};

function checkMatrix(value: unknown, k: number, what: string): number[][] {
  const ok = Array.isArray(value) && value.length === k &&
    value.every((row) =>
      Array.isArray(row) && row.length === k &&
      row.every((p) => typeof p === "number" && Number.isFinite(p) && p >= 0) &&
      Math.abs(row.reduce((s: number, p: number) => s + p, 0) - 1) <= 1e-6
    );
  if (!ok) {
    throw new TypeError(
      `${what} must be a ${k} x ${k} matrix of non-negative numbers whose rows sum to 1, got ${
        show(value)
      }`,
    );
  }
  return (value as number[][]).map((row) => [...row]);
}

/**
 * The reference's MultiStepLR milestones: `[int(0.5 E), int(0.75 E),
 * int(0.9 E)]` (50, 75, 90 for E = 100). Truncation, as Python's `int()`.
 */
export function milestones(
  epochs: number,
  fractions: readonly number[] = defaults.milestoneFractions,
): number[] {
  integerAtLeast(epochs, 1, "Epochs");
  return referenceMilestones(epochs, fractions);
}

/**
 * A warning when the reference schedule decays the learning rate before
 * the first epoch (`int(0.5 E) = 0` for E = 1: every milestone is 0, so
 * `--epochs 1` trains at lr x gamma^3); null when epoch 0 trains at `lr`.
 */
export function scheduleWarning(
  config: Pick<TrainConfig, "lr" | "gamma" | "epochs" | "milestoneFractions">,
): string | null {
  const first = lrAt(0, config);
  if (first >= config.lr) return null;
  return `warning: with ${config.epochs} epoch(s) the reference schedule (milestones ${
    JSON.stringify(milestones(config.epochs, config.milestoneFractions))
  }) decays the learning rate at once: epoch 0 trains at ${
    first.toExponential(0)
  }, not ${config.lr}; use 2 or more epochs`;
}

/**
 * The learning rate used during epoch `epoch` (0-based), as torch's
 * MultiStepLR gives it when stepped once after each epoch.
 */
export function lrAt(
  epoch: number,
  config: Pick<TrainConfig, "lr" | "gamma" | "epochs" | "milestoneFractions">,
): number {
  integerAtLeast(epoch, 0, "Epoch");
  return multiStepLr(epoch, {
    lr: config.lr,
    milestones: milestones(config.epochs, config.milestoneFractions),
    gamma: config.gamma,
  });
}
