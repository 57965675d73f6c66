/**
 * The strict reader of a run folder's `config.json` (see run_dir.ts for what
 * it holds). A run folder may come from someone else, so nothing in it is
 * trusted: every key must be known, every value of the expected type, and
 * the first problem is one error naming the file and the key path
 * (`config.dataset.root`, `digests.weights.sha256`).
 *
 * The schema of `config` is a table with one entry per {@linkcode TrainConfig}
 * key (`satisfies` makes a key added to the config without a check here a
 * type error).
 *
 * @module
 */
import {
  BACKEND_NAMES,
  DATASET_KINDS,
  METHODS,
  NET_SIZES,
  NOISE_MODES,
} from "./config.ts";
import type { TrainConfig } from "./config.ts";
import { show } from "./_checks.ts";
import { SYNTHETIC_CUES } from "../data/synthetic.ts";
import type { RunRecord } from "./run_dir.ts";

/** The `format` of `config.json` files. */
export const RUN_FORMAT = "cufit-ts-run/1";

type Check = (value: unknown, at: string) => unknown;

class RecordError extends TypeError {
  override name = "RecordError";
}

function fail(at: string, expected: string, value: unknown): never {
  throw new RecordError(`key "${at}" must be ${expected}, got ${show(value)}`);
}

const str: Check = (v, at) =>
  typeof v === "string" && v.length > 0 ? v : fail(at, "a non-empty string", v);
const bool: Check = (v, at) =>
  typeof v === "boolean" ? v : fail(at, "true or false", v);
const int = (min: number): Check => (v, at) =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= min
    ? v
    : fail(at, `an integer >= ${min}`, v);
const num = (lo: number, hi: number): Check => (v, at) =>
  typeof v === "number" && Number.isFinite(v) && v >= lo && v <= hi
    ? v
    : fail(at, `a number in [${lo}, ${hi}]`, v);
const positive: Check = (v, at) =>
  typeof v === "number" && Number.isFinite(v) && v > 0
    ? v
    : fail(at, "a positive number", v);
const oneOf = (xs: readonly string[]): Check => (v, at) =>
  typeof v === "string" && xs.includes(v)
    ? v
    : fail(at, `one of ${xs.map((x) => `"${x}"`).join(", ")}`, v);
const nullable = (c: Check): Check => (v, at) => v === null ? null : c(v, at);
const list = (c: Check, length?: number): Check => (v, at) => {
  if (!Array.isArray(v) || (length !== undefined && v.length !== length)) {
    fail(at, length === undefined ? "a list" : `a list of ${length}`, v);
  }
  return v.map((x, i) => c(x, `${at}.${i}`));
};
const sha: Check = (v, at) =>
  typeof v === "string" && /^[0-9a-f]{64}$/.test(v)
    ? v
    : fail(at, "a SHA-256 (64 lowercase hex digits)", v);

/** An object with exactly `required` keys (plus any of `optional`). */
function object(
  required: Record<string, Check>,
  optional: Record<string, Check> = {},
): Check {
  return (v, at) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      fail(at, "an object", v);
    }
    const obj = v as Record<string, unknown>;
    const path = (k: string) => (at === "" ? k : `${at}.${k}`);
    for (const k of Object.keys(obj)) {
      if (!(k in required) && !(k in optional)) {
        throw new RecordError(`unknown key "${path(k)}"`);
      }
    }
    const out: Record<string, unknown> = {};
    for (const [k, check] of Object.entries(required)) {
      if (!(k in obj)) throw new RecordError(`missing key "${path(k)}"`);
      out[k] = check(obj[k], path(k));
    }
    for (const [k, check] of Object.entries(optional)) {
      if (k in obj) out[k] = check(obj[k], path(k));
    }
    return out;
  };
}

const seed = int(0);
const folderName: Check = (v, at) =>
  typeof v === "string" && v.length > 0 && !/[\\/]/.test(v) && v !== "." &&
    v !== ".."
    ? v
    : fail(at, "a folder name without slashes", v);

const synthetic = object({
  trainPerClass: int(1),
  testPerClass: int(1),
  size: int(1),
  seed,
}, { difficulty: num(0, 1), cue: oneOf(SYNTHETIC_CUES) });

const matrix: Check = (v, at) => {
  const rows = list(list(num(0, 1)))(v, at) as number[][];
  if (rows.length < 2 || rows.some((r) => r.length !== rows.length)) {
    fail(at, "a square matrix", v);
  }
  return rows;
};

/** One check per key of {@linkcode TrainConfig}. */
const CONFIG = {
  method: oneOf(METHODS),
  dataset: object({
    name: str,
    kind: oneOf(DATASET_KINDS),
    root: str,
    numClasses: int(2),
    file: str,
    synthetic: nullable(synthetic),
  }),
  epochs: int(1),
  batchSize: int(1),
  lr: positive,
  weightDecay: num(0, Number.MAX_VALUE),
  betas: list(num(0, 1), 2),
  eps: positive,
  milestoneFractions: list(num(0, 1)),
  gamma: positive,
  noise: object({
    mode: oneOf(NOISE_MODES),
    rate: num(0, 1),
    seed,
    matrix: nullable(matrix),
  }),
  seed,
  augment: bool,
  shuffle: bool,
  netsize: oneOf(NET_SIZES),
  weights: nullable(str),
  init: nullable(str),
  backend: oneOf(BACKEND_NAMES),
  savePath: str,
  saveName: folderName,
  resume: bool,
  cacheFeatures: bool,
  resize: int(1),
  crop: int(1),
  gpu: int(0),
  skipBad: bool,
  maxBatches: nullable(int(1)),
  threads: nullable(int(1)),
} satisfies Record<keyof TrainConfig, Check>;

const fileDigest = object({ path: str, sha256: sha, bytes: int(0) });

const versions: Check = (v, at) => {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    fail(at, "an object", v);
  }
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    const ok = typeof x === "string" ||
      (Array.isArray(x) && x.every((s) => typeof s === "string"));
    if (!ok) fail(`${at}.${k}`, "a string or a list of strings", x);
  }
  return v;
};

const RECORD = object({
  format: (v, at) => v === RUN_FORMAT ? v : fail(at, `"${RUN_FORMAT}"`, v),
  createdAt: str,
  cwd: str,
  config: object(CONFIG),
  argv: list((v, at) => typeof v === "string" ? v : fail(at, "a string", v)),
  versions,
  digests: object({
    weights: nullable(fileDigest),
    init: nullable(fileDigest),
    labelList: nullable(fileDigest),
    trainLabels: nullable(sha),
    noisyLabels: nullable(sha),
  }),
});

/**
 * Checks a parsed `config.json` against the schema; returns it typed, or
 * throws one error naming `file` and the first bad key.
 */
export function parseRunRecord(raw: unknown, file: string): RunRecord {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new TypeError(
      `Run record "${file}" must hold a JSON object, got ${show(raw)}`,
    );
  }
  try {
    return RECORD(raw, "") as RunRecord;
  } catch (e) {
    if (!(e instanceof RecordError)) throw e;
    throw new TypeError(`Run record "${file}": ${e.message}`);
  }
}
