/**
 * The sweep folder, `checkpoints/sweeps/<name>/`, and what it records:
 *
 * - `sweep.json`: the grid as run (the file's, with command-line overrides
 *   applied) and every cell with its exact task and arguments, written once
 *   when the sweep is created;
 * - `conf/<dataset>.json`: a copy of each `conf/<dataset>.json` whose
 *   `save_path` points into `runs/`, so that every cell's run folder lands in
 *   this sweep (the copy keeps the dataset's name, which the loaders go by);
 * - `runs/<cell id>/`: the cell's ordinary run folder, made by the training
 *   task (`config.json`, `metrics.jsonl`, `avgacc.txt`, checkpoints);
 * - `cells/<cell id>.json`: the cell's state (pending, running, done,
 *   failed, interrupted), attempts, exit code, wall time and engine;
 * - `logs/<cell id>.log`: the cell's output, every attempt appended;
 * - `slurm/`: the job-array scripts, `jobs.json` and Slurm's output files.
 *
 * Run folders are read only through their files, robustly: a partial last
 * line of `metrics.jsonl` (a crash mid-write) is skipped, unknown fields are
 * ignored, and a repeated epoch (a resumed run) keeps its last record.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { loadDatasetConfig, projectConfDir } from "../train/config.ts";
import { type Cell, checkGrid, expandGrid, type Grid } from "./grid.ts";
import { firstDifference } from "../io/json_diff.ts";
import { parseJson } from "../io/parse_json.ts";

/** Where sweep folders live, relative to the project folder. */
export const SWEEPS_DIR = "checkpoints/sweeps";

/** The `format` of `sweep.json`. */
export const SWEEP_FORMAT = "cufit-ts-sweep/1";

/** What `sweep.json` holds. */
export interface SweepRecord {
  format: typeof SWEEP_FORMAT;
  name: string;
  createdAt: string;
  /** The sweep file it was made from. */
  gridFile: string;
  /** The grid as run. */
  grid: Grid;
  cells: Cell[];
}

/** A cell's state. `interrupted` = started, then stopped by a signal or a lost job. */
export type CellState =
  | "pending"
  | "running"
  | "done"
  | "failed"
  | "interrupted";

/** What `cells/<id>.json` holds. */
export interface CellStatus {
  id: string;
  index: number;
  state: CellState;
  /** Times the cell was started. */
  attempts: number;
  /** Attempts that ended with a non-zero exit code (signals not counted). */
  failures: number;
  /** Exit code of the last attempt, `null` before one ended. */
  exitCode: number | null;
  /** Signal that ended the last attempt, if one did. */
  signal: string | null;
  startedAt: string | null;
  endedAt: string | null;
  /** Wall-clock seconds of every attempt together. */
  seconds: number;
  /** The engine of the last attempt. */
  engine: "local" | "slurm" | null;
  /** Slurm `<array job>_<task>` of the last attempt. */
  job: string | null;
}

/** A sweep's folder: `checkpoints/sweeps/<name>`. */
export function sweepDir(name: string): string {
  return join(SWEEPS_DIR, name);
}

/** A cell's run folder. */
export function cellRunDir(dir: string, cell: Pick<Cell, "id">): string {
  return join(dir, "runs", cell.id);
}

/** A cell's log file. */
export function cellLogFile(dir: string, cell: Pick<Cell, "id">): string {
  return join(dir, "logs", `${cell.id}.log`);
}

function cellStatusFile(dir: string, cell: Pick<Cell, "id">): string {
  return join(dir, "cells", `${cell.id}.json`);
}

/** The dataset file a cell's `-d` gets: the sweep's copy. */
export function sweepDatasetFile(dir: string, dataset: string): string {
  return join(dir, "conf", `${dataset}.json`);
}

/**
 * Reads `sweep.json`; `Deno.errors.NotFound` when there is none, an error
 * naming the file when it is not a sweep record.
 */
export async function readSweep(dir: string): Promise<SweepRecord> {
  const file = join(dir, "sweep.json");
  const text = await Deno.readTextFile(file);
  const raw = parseJson(text, `"${file}"`) as
    & Partial<Omit<SweepRecord, "grid">>
    & { grid?: unknown };
  if (raw?.format !== SWEEP_FORMAT) {
    throw new TypeError(
      `"${file}" is not a sweep record: expected "format": "${SWEEP_FORMAT}"`,
    );
  }
  // The cells are re-derived from the grid, so an edited cell list (a
  // changed task or argument) is refused rather than run.
  const grid = checkGrid(raw.grid, `"${file}" grid`);
  const cells = expandGrid(grid, {
    datasetFile: (d) => sweepDatasetFile(dir, d),
  });
  if (JSON.stringify(cells) !== JSON.stringify(raw.cells)) {
    throw new TypeError(
      `"${file}" lists cells that its grid does not make: it was edited; remove the sweep folder or restore the file`,
    );
  }
  return { ...(raw as Omit<SweepRecord, "grid">), grid, cells };
}

/** A checked {@linkcode Grid} back in the file's snake_case keys. */
export function toFileKeys(grid: Grid | undefined): unknown {
  if (!grid) return grid;
  const o = grid.overrides ?? {};
  const overrides: Record<string, unknown> = {};
  const names: Record<string, string> = {
    batchSize: "batch_size",
    noiseSeed: "noise_seed",
    maxBatches: "max_batches",
    skipBad: "skip_bad",
  };
  for (const [k, v] of Object.entries(o)) overrides[names[k] ?? k] = v;
  return {
    description: grid.description,
    datasets: grid.datasets,
    noise_rates: grid.noiseRates,
    noise_modes: grid.noiseModes,
    methods: grid.methods,
    seeds: grid.seeds,
    overrides,
  };
}

/** Options of {@linkcode openSweep}. */
export interface OpenSweepOptions {
  /** The grid to run; `null` re-opens the recorded one. */
  grid: Grid | null;
  /** The file the grid came from, recorded at creation. */
  gridFile?: string;
  /** Folder of the dataset files. @default this project's conf/ */
  confDir?: string;
  /** Don't create anything (a dry run of a new sweep). @default false */
  dryRun?: boolean;
}

/**
 * Opens sweep `name`: creates its folder, `sweep.json` and dataset copies on
 * first use, or checks that `grid` is the one it was made from.
 */
export async function openSweep(
  name: string,
  options: OpenSweepOptions,
): Promise<{ dir: string; record: SweepRecord; created: boolean }> {
  const dir = sweepDir(name);
  const existing = await readSweep(dir).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  });
  if (existing) {
    if (options.grid) {
      const diff = firstDifference(
        toFileKeys(existing.grid),
        toFileKeys(options.grid),
      );
      if (diff !== null) {
        throw new Error(
          `Sweep "${name}" was made from a different grid: "${diff.key}" was ${
            JSON.stringify(diff.was)
          }, now ${
            JSON.stringify(diff.now)
          } (re-run it without --grid, or choose another --name)`,
        );
      }
    }
    return { dir, record: existing, created: false };
  }
  if (!options.grid) {
    throw new Error(
      `Sweep "${name}" does not exist ("${
        join(dir, "sweep.json")
      }" not found): start it with --grid FILE`,
    );
  }
  const grid = options.grid;
  const confDir = options.confDir ?? projectConfDir();
  // 1. Every dataset file must exist and be valid before anything is written.
  for (const d of grid.datasets) loadDatasetConfig(d, { confDir });
  const record: SweepRecord = {
    format: SWEEP_FORMAT,
    name,
    createdAt: new Date().toISOString(),
    gridFile: options.gridFile ?? "",
    grid,
    cells: expandGrid(grid, { datasetFile: (d) => sweepDatasetFile(dir, d) }),
  };
  if (options.dryRun) return { dir, record, created: true };
  // 2. The dataset copies, with save_path into this sweep's runs/.
  for (const d of grid.datasets) {
    const conf = JSON.parse(
      await Deno.readTextFile(join(confDir, `${d}.json`)),
    );
    conf.save_path = `./${join(dir, "runs")}/`;
    await writeJsonAtomic(sweepDatasetFile(dir, d), conf);
  }
  await writeJsonAtomic(join(dir, "sweep.json"), toRecordFile(record));
  return { dir, record, created: true };
}

// sweep.json keeps the grid in the sweep file's own keys.
function toRecordFile(r: SweepRecord) {
  return { ...r, grid: toFileKeys(r.grid) };
}

/** A cell's recorded state, or a fresh `pending` one. */
export async function readCellStatus(
  dir: string,
  cell: Pick<Cell, "id" | "index">,
): Promise<CellStatus> {
  const file = cellStatusFile(dir, cell);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return {
        id: cell.id,
        index: cell.index,
        state: "pending",
        attempts: 0,
        failures: 0,
        exitCode: null,
        signal: null,
        startedAt: null,
        endedAt: null,
        seconds: 0,
        engine: null,
        job: null,
      };
    }
    throw e;
  }
  try {
    return JSON.parse(text) as CellStatus;
  } catch (e) {
    throw new SyntaxError(`Cannot parse "${file}": ${(e as Error).message}`);
  }
}

/** Writes a cell's state atomically. */
export async function writeCellStatus(
  dir: string,
  status: CellStatus,
): Promise<void> {
  await writeJsonAtomic(cellStatusFile(dir, status), status);
}

/** One epoch as the sweep reads it from `metrics.jsonl`. */
export interface EpochRecord {
  epoch: number;
  testAcc: number;
  seconds: number | null;
  /** `selection.<module>.{precision,recall}` where the run records it (CUFIT). */
  selection: Record<
    string,
    { precision: number | null; recall: number | null }
  >;
}

/** What a run folder says about its progress. */
export interface RunProgress {
  /** `config.json` exists: the run started (and can be resumed). */
  started: boolean;
  /** Epochs the run is configured for (`config.json`), when readable. */
  epochs: number | null;
  /** Recorded epochs, in order, one per epoch. */
  records: EpochRecord[];
  /** Every configured epoch is recorded. */
  complete: boolean;
  /** `avgacc.txt` as a number, when present and readable. */
  avgAcc: number | null;
}

const numOrNull = (v: unknown) =>
  typeof v === "number" && Number.isFinite(v) ? v : null;

/** Reads a run folder's `config.json`, `metrics.jsonl` and `avgacc.txt`. */
export async function readRunProgress(runDir: string): Promise<RunProgress> {
  const text = (f: string) =>
    Deno.readTextFile(join(runDir, f)).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    });
  const [config, metrics, avg] = await Promise.all([
    text("config.json"),
    text("metrics.jsonl"),
    text("avgacc.txt"),
  ]);
  let epochs: number | null = null;
  if (config !== null) {
    try {
      epochs = numOrNull(JSON.parse(config)?.config?.epochs);
    } catch {
      // A config.json being written: the run has started, epochs unknown.
    }
  }
  const byEpoch = new Map<number, EpochRecord>();
  for (const line of (metrics ?? "").split("\n")) {
    if (line.trim() === "") continue;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line);
    } catch {
      continue; // a line cut short by a crash
    }
    const epoch = numOrNull(r?.epoch);
    const testAcc = numOrNull(r?.testAcc);
    if (epoch === null || testAcc === null) continue;
    const selection: EpochRecord["selection"] = {};
    const sel = r.selection;
    if (sel && typeof sel === "object") {
      for (const [m, s] of Object.entries(sel as Record<string, unknown>)) {
        const o = (s ?? {}) as Record<string, unknown>;
        selection[m] = {
          precision: numOrNull(o.precision),
          recall: numOrNull(o.recall),
        };
      }
    }
    byEpoch.set(epoch, {
      epoch,
      testAcc,
      seconds: numOrNull(r.seconds),
      selection,
    });
  }
  const records = [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
  let avgAcc: number | null = null;
  if (avg !== null && /^\s*-?[\d.]+(e[+-]?\d+)?\s*$/i.test(avg)) {
    avgAcc = Number(avg);
  }
  return {
    started: config !== null,
    epochs,
    records,
    complete: epochs !== null && records.length >= epochs &&
      records.slice(0, epochs).every((r, i) => r.epoch === i),
    avgAcc,
  };
}

/** Appends text to a cell's log (creating `logs/`). */
export async function appendLog(file: string, text: string): Promise<void> {
  await Deno.mkdir(join(file, ".."), { recursive: true });
  await Deno.writeTextFile(file, text, { append: true });
}

/** Writes a file of the sweep folder atomically. */
export async function writeSweepFile(
  dir: string,
  name: string,
  data: string,
): Promise<string> {
  const path = join(dir, name);
  await writeFileAtomic(path, data);
  return path;
}
