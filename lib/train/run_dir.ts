/**
 * The run folder, `<save_path>/<save name>/` (e.g.
 * `checkpoints/HAM10000/cufit-noise0.2/`), which holds what is needed to
 * reproduce and judge a run:
 *
 * - `config.json`, written before the first step: the resolved config, the
 *   argv, the working directory, Deno/tfjs/backend versions, and SHA-256
 *   digests of the weights file, the init file, the label-list file, and of
 *   the clean and noisy training labels (see `sha256Labels` in
 *   lib/io/digest.ts for how a label list is hashed);
 * - `metrics.jsonl`, one {@linkcode EpochMetrics} JSON object per line,
 *   appended and flushed after every epoch;
 * - `avgacc.txt`, the reference's figure (see `avgAccText` in metrics.ts);
 * - `best.*` and `last.*` checkpoints (lib/train/checkpoint.ts);
 * - `run.lock` while a run is writing the folder (lib/train/run_lock.ts).
 *
 * `config.json` is read strictly (lib/train/run_record.ts). On resume, the
 * checkpoint is the truth: {@linkcode reconcileMetrics} makes
 * `metrics.jsonl` agree with it, and {@linkcode createRunDir} refuses inputs
 * whose digests changed.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { sha256File, sha256Labels } from "../io/digest.ts";
import type { TrainConfig } from "./config.ts";
import { avgAccText, type EpochMetrics } from "./metrics.ts";
import { withPath, writeAll, writeFileAtomic } from "../io/atomic.ts";
import { parseRunRecord, RUN_FORMAT } from "./run_record.ts";
import { firstDifference } from "../io/json_diff.ts";
import { parseJson } from "../io/parse_json.ts";

export { RUN_FORMAT };

/** A file and its SHA-256. */
export interface FileDigest {
  /** Path as given (relative paths are relative to the run's `cwd`). */
  path: string;
  sha256: string;
  bytes: number;
}

/** What `config.json` holds. */
export interface RunRecord {
  format: typeof RUN_FORMAT;
  /** ISO time of creation. */
  createdAt: string;
  /** Working directory of the run: relative paths resolve against it. */
  cwd: string;
  config: TrainConfig;
  /** Command-line arguments of the task (without the script). */
  argv: string[];
  /** `deno`, `v8`, `typescript`, plus what the caller adds (`tfjs`, `backend`, ...). */
  versions: Record<string, string | string[]>;
  digests: {
    weights: FileDigest | null;
    init: FileDigest | null;
    /** The file the training labels come from (APTOS CSV, MedMNIST npz), if any. */
    labelList: FileDigest | null;
    /** `sha256Labels` of the clean training labels in loader order. */
    trainLabels: string | null;
    /** `sha256Labels` of the noisy training labels in loader order. */
    noisyLabels: string | null;
  };
}

/** Options of {@linkcode createRunDir}. */
export interface CreateRunDirOptions {
  /**
   * The task's command-line arguments, recorded for re-running.
   * @default Deno.args
   */
  argv?: string[];
  /**
   * Versions to record besides Deno's own, e.g. `{ tfjs: "4.22.0",
   * backend: "wasm", nativeKernels: ["MatMul"] }`; `backend` and
   * `nativeKernels` decide whether a re-run needs `--allow-ffi`.
   * @default {}
   */
  versions?: Record<string, string | string[]>;
  /**
   * The backbone weights file used (when the task picked a default for
   * `config.weights = null`).
   * @default config.weights
   */
  weightsFile?: string | null;
  /**
   * The file the training labels were read from, if there is one.
   * @default null
   */
  labelListFile?: string | null;
  /**
   * Clean training labels in loader order.
   * @default null (not recorded)
   */
  trainLabels?: ArrayLike<number> | null;
  /**
   * Noisy training labels in loader order.
   * @default null (not recorded)
   */
  noisyLabels?: ArrayLike<number> | null;
  /**
   * Creation time to record.
   * @default new Date()
   */
  now?: Date;
}

/** The run folder of a config: `<savePath>/<saveName>`. */
export function runDirOf(
  config: Pick<TrainConfig, "savePath" | "saveName">,
): string {
  return join(config.savePath, config.saveName);
}

/** Digest of a file, with an error naming it and its role when it cannot be read. */
export async function fileDigest(
  path: string,
  role: string,
): Promise<FileDigest> {
  try {
    const { size } = await Deno.stat(path);
    return { path, sha256: await sha256File(path), bytes: size };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot hash the ${role} "${path}": no such file`);
    }
    throw e;
  }
}

// Settings that may change when a run is resumed.
const RESUMABLE = new Set([
  "resume",
  "maxBatches",
  "backend",
  "gpu",
  "threads",
]);

/**
 * Creates the run folder and writes `config.json` (before the first step).
 * A folder that already holds a run is refused unless `config.resume` is set;
 * then its `config.json` is kept, and must match `config` except for
 * `resume`, `maxBatches`, `backend`, `gpu` and `threads`. Returns the folder's path.
 */
export async function createRunDir(
  config: TrainConfig,
  options: CreateRunDirOptions = {},
): Promise<string> {
  const dir = runDirOf(config);
  const file = join(dir, "config.json");
  const existing = await readRunRecord(dir).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  });
  const digests = async (): Promise<RunRecord["digests"]> => {
    const weightsFile = options.weightsFile === undefined
      ? config.weights
      : options.weightsFile;
    const labels = (xs: ArrayLike<number> | null | undefined) =>
      xs === null || xs === undefined ? null : sha256Labels(xs);
    return {
      weights: weightsFile === null
        ? null
        : await fileDigest(weightsFile, "weights file"),
      init: config.init === null
        ? null
        : await fileDigest(config.init, "init file"),
      labelList: options.labelListFile
        ? await fileDigest(options.labelListFile, "label list")
        : null,
      trainLabels: labels(options.trainLabels),
      noisyLabels: labels(options.noisyLabels),
    };
  };
  // A run that stopped before its first epoch ended (an unreadable image, a
  // Ctrl-C) trained nothing: --resume may start it over with new settings.
  const unstarted = existing !== null && await holdsNoEpoch(dir);
  if (config.resume) {
    if (existing === null) {
      if (!(await Deno.stat(dir).then(() => true, () => false))) {
        throw new Error(`Cannot resume run "${dir}": "${file}" not found`);
      }
      // The folder of a run killed before its record was written: nothing
      // ran yet, so it starts afresh.
    }
    const diff = existing === null
      ? null
      : firstDifference(existing.config, config, {
        ignore: (key) => RESUMABLE.has(key),
      });
    if (diff !== null && !unstarted) {
      throw new Error(
        `Cannot resume run "${dir}": config key "${diff.key}" was ${
          JSON.stringify(diff.was)
        }, now ${JSON.stringify(diff.now)}`,
      );
    }
    // The same settings over other bytes would not be the same run.
    if (existing !== null) {
      const changed = changedInput(existing.digests, await digests());
      if (changed !== null) {
        throw new Error(`Cannot resume run "${dir}": ${changed}`);
      }
      if (diff === null) return dir;
    }
    // Killed before its record, or unstarted with new settings: config.json
    // is written afresh below.
  } else if (existing !== null) {
    throw new Error(
      unstarted
        ? `Run folder "${dir}" holds a run that stopped before its first epoch ended: start it over with --resume (add --skip-bad to skip unreadable images), or choose another save name (-s)`
        : `Run folder "${dir}" already holds a run ("${file}"): choose another save name (-s) or pass --resume`,
    );
  }

  const record: RunRecord = {
    format: RUN_FORMAT,
    createdAt: (options.now ?? new Date()).toISOString(),
    cwd: Deno.cwd(),
    // As a fresh run would record it, also when a killed run starts afresh.
    config: { ...config, resume: false },
    argv: [...(options.argv ?? Deno.args)],
    versions: {
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      typescript: Deno.version.typescript,
      ...options.versions,
    },
    digests: await digests(),
  };
  await Deno.mkdir(dir, { recursive: true });
  await writeFileAtomic(file, JSON.stringify(record, null, 2) + "\n");
  return dir;
}

const ROLES = {
  weights: "weights file",
  init: "init file",
  labelList: "label list",
  trainLabels: "clean training labels",
  noisyLabels: "noisy training labels",
} as const;

/**
 * The first recorded input whose bytes differ now, as a phrase naming it and
 * both digests; `null` when all match. An input recorded as absent (`null`)
 * is not compared.
 */
export function changedInput(
  recorded: RunRecord["digests"],
  now: RunRecord["digests"],
): string | null {
  for (const [key, role] of Object.entries(ROLES)) {
    const was = recorded[key as keyof typeof ROLES];
    const is = now[key as keyof typeof ROLES];
    if (was === null) continue;
    const wasSha = typeof was === "string" ? was : was.sha256;
    const isSha = is === null ? null : typeof is === "string" ? is : is.sha256;
    if (wasSha === isSha) continue;
    const file = typeof was === "string" ? "" : ` "${was.path}"`;
    const nowFile = is !== null && typeof is !== "string" &&
        typeof was !== "string" && is.path !== was.path
      ? ` (now "${is.path}")`
      : "";
    return `the ${role}${file}${nowFile} changed since the run started (recorded sha256 ${wasSha}, now ${
      isSha ?? "none"
    })`;
  }
  return null;
}

/** True when a run folder has no epoch's metrics line and no checkpoint. */
async function holdsNoEpoch(dir: string): Promise<boolean> {
  if ((await readMetrics(dir)).length > 0) return false;
  for await (const entry of Deno.readDir(dir)) {
    if (/^(last|best)\b/.test(entry.name)) return false;
  }
  return true;
}

/**
 * Reads a run folder's `config.json`, strictly (see run_record.ts). A
 * missing file throws `Deno.errors.NotFound`; anything else wrong is one
 * error naming the file and the key.
 */
export async function readRunRecord(dir: string): Promise<RunRecord> {
  const file = join(dir, "config.json");
  const text = await Deno.readTextFile(file);
  const raw = parseJson(text, `"${file}"`);
  const r = raw as Partial<RunRecord> | null;
  if (r === null || typeof r !== "object" || r.format !== RUN_FORMAT) {
    throw new TypeError(
      `"${file}" is not a run record: expected "format": "${RUN_FORMAT}", got ${
        JSON.stringify((r as { format?: unknown } | null)?.format)
      }`,
    );
  }
  return parseRunRecord(raw, file);
}

/**
 * Appends one epoch's record to `metrics.jsonl` as a single write of one
 * line, flushed to disk, so a crash loses at most the line being written.
 * A partial last line left by such a crash is cut off first.
 */
export async function appendMetrics(
  dir: string,
  record: EpochMetrics,
): Promise<void> {
  const path = join(dir, "metrics.jsonl");
  try {
    await appendLine(path, JSON.stringify(record));
  } catch (e) {
    throw withPath(e, path);
  }
}

async function appendLine(path: string, line: string): Promise<void> {
  using file = await Deno.open(path, {
    read: true,
    write: true,
    create: true,
  });
  const size = (await file.stat()).size;
  let end = size;
  if (size > 0) {
    const last = new Uint8Array(1);
    await file.seek(size - 1, Deno.SeekMode.Start);
    await file.read(last);
    if (last[0] !== 0x0a) {
      await file.seek(0, Deno.SeekMode.Start);
      const all = new Uint8Array(size);
      let got = 0;
      while (got < size) {
        const n = await file.read(all.subarray(got));
        if (n === null) break;
        got += n;
      }
      end = all.lastIndexOf(0x0a) + 1;
      await file.truncate(end);
    }
  }
  await file.seek(end, Deno.SeekMode.Start);
  await writeAll(file, new TextEncoder().encode(line + "\n"));
  await file.syncData();
}

/**
 * Makes `metrics.jsonl` agree with a checkpoint of epoch `epoch` whose state
 * holds that epoch's record `record` (the trainer saves the checkpoint, then
 * appends the line): lines of later epochs go (they will be run again), and
 * the line of `epoch` is the checkpoint's own, appended when a kill came
 * between the checkpoint and the line. The earlier lines must all be there,
 * as they were flushed before the checkpoint was written. Rewrites the file
 * atomically; returns the records of epochs `0..epoch`.
 */
export async function reconcileMetrics(
  dir: string,
  epoch: number,
  record: EpochMetrics,
): Promise<EpochMetrics[]> {
  const file = join(dir, "metrics.jsonl");
  const kept = (await readMetrics(dir)).filter((r) => r.epoch < epoch);
  kept.forEach((r, i) => {
    if (r.epoch !== i) {
      throw new Error(
        `Cannot resume from "${file}": expected epoch ${i} on line ${
          i + 1
        }, found epoch ${r.epoch}`,
      );
    }
  });
  if (kept.length !== epoch) {
    throw new Error(
      `Cannot resume from "${file}": it lacks epochs ${kept.length} to ${
        epoch - 1
      }, which precede the checkpoint of epoch ${epoch}`,
    );
  }
  if (record?.epoch !== epoch) {
    throw new Error(
      `Cannot resume from "${file}": the checkpoint of epoch ${epoch} holds no record of that epoch`,
    );
  }
  const all = [...kept, record];
  await writeFileAtomic(
    file,
    all.map((r) => JSON.stringify(r) + "\n").join(""),
  );
  return all;
}

/**
 * Keeps only the records of epochs up to `epoch` (inclusive), rewriting
 * `metrics.jsonl` atomically: on resume from a checkpoint of epoch `epoch`,
 * the epochs after it will be run and recorded again.
 */
export async function keepMetricsThrough(
  dir: string,
  epoch: number,
): Promise<EpochMetrics[]> {
  const kept = (await readMetrics(dir)).filter((r) => r.epoch <= epoch);
  await writeFileAtomic(
    join(dir, "metrics.jsonl"),
    kept.map((r) => JSON.stringify(r) + "\n").join(""),
  );
  return kept;
}

/**
 * Reads `metrics.jsonl` (an empty list when it does not exist). A last line
 * without its newline is a write cut short by a crash and is skipped; any
 * other unreadable line is an error naming the file and line.
 */
export async function readMetrics(dir: string): Promise<EpochMetrics[]> {
  const file = join(dir, "metrics.jsonl");
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const lines = text.split("\n");
  // After the final newline comes "" or, after a crash, a partial line.
  const tail = lines.pop()!;
  const out: EpochMetrics[] = [];
  lines.forEach((line, i) => out.push(parseMetricsLine(line, file, i + 1)));
  if (tail !== "") {
    try {
      out.push(parseMetricsLine(tail, file, lines.length + 1));
    } catch {
      // A write cut short: the epoch it recorded is simply not there.
    }
  }
  return out;
}

function parseMetricsLine(
  line: string,
  file: string,
  n: number,
): EpochMetrics {
  let rec: unknown;
  try {
    rec = JSON.parse(line);
  } catch (e) {
    throw new SyntaxError(
      `Cannot read "${file}" line ${n}: ${(e as Error).message}`,
    );
  }
  if (
    rec === null || typeof rec !== "object" ||
    typeof (rec as EpochMetrics).epoch !== "number"
  ) {
    throw new TypeError(
      `Cannot read "${file}" line ${n}: expected an object with a numeric "epoch"`,
    );
  }
  return rec as EpochMetrics;
}

/**
 * Writes `avgacc.txt` from the test accuracies of every epoch (see
 * `avgAccText`); returns the text written.
 */
export async function writeAvgAcc(
  dir: string,
  testAccs: readonly number[],
): Promise<string> {
  const text = avgAccText(testAccs);
  await writeFileAtomic(join(dir, "avgacc.txt"), text);
  return text;
}

/** `path` made absolute against a run's recorded working directory. */
export function resolveAgainst(
  record: Pick<RunRecord, "cwd">,
  path: string,
): string {
  return resolve(record.cwd, path);
}
