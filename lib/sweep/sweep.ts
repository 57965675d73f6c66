/**
 * Sweeps: many training runs from one grid, run here or on a Slurm cluster,
 * and collected into the paper's Table 1. Read this first; the files of
 * lib/sweep/ each hold one piece:
 *
 * - grid.ts: the sweep file (`conf/sweeps/*.json`) and its cells. A cell is
 *   one `deno task train:<method>` command: one dataset, noise mode and rate,
 *   method and seed;
 * - sweep_dir.ts: the sweep folder, `checkpoints/sweeps/<name>/`, which
 *   records the grid, each cell's state, log and exit code, and holds the
 *   cells' ordinary run folders (so `config.json`, digests, `--resume` and
 *   `deno task rerun` apply to every cell);
 * - cell.ts: what one cell needs (done, give up, run or resume) and running
 *   it; both engines go through it;
 * - local.ts: the local engine (`--jobs N` workers, threads divided among
 *   them, one line per cell, an ETA);
 * - estimate.ts: what a sweep will take, from a timed training step, before
 *   it starts (`--estimate`); once it runs, the ETA comes from its epochs;
 * - slurm.ts: the Slurm engine (a job-array script, `sbatch`, `squeue` and
 *   `scontrol` for status, `scancel`);
 * - table.ts and table_html.ts: the results (Markdown, CSV, JSON and an HTML
 *   page with plots), next to the paper's figures from paper.ts.
 *
 * Re-running a sweep is safe and is how it continues: done cells are
 * skipped, interrupted ones resume from their last checkpoint, failed ones
 * are tried again while they have retries left, and one cell's failure never
 * stops the others.
 *
 * ```ts
 * import { runSweep } from "./lib/sweep/sweep.ts";
 * const code = await runSweep({ name: "demo", grid: "conf/sweeps/demo.json", jobs: 2 });
 * ```
 *
 * @module
 */
import { join, relative } from "node:path";
import { loadDatasetConfig } from "../train/config.ts";
import { cellCommand, planCell, runCell, shellLine } from "./cell.ts";
import { estimateSweep } from "./estimate.ts";
import {
  type Cell,
  checkOverride,
  checkSweepName,
  type Grid,
  loadGrid,
} from "./grid.ts";
import {
  cellEpochs,
  estimateRemaining,
  formatDuration,
  runLocal,
} from "./local.ts";
import {
  arrayScript,
  cancelJobs,
  queryTasks,
  readJobs,
  type SlurmOptions,
  submitArray,
  type TaskState,
} from "./slurm.ts";
import {
  cellRunDir,
  type CellStatus,
  openSweep,
  readCellStatus,
  readRunProgress,
  readSweep,
  type RunProgress,
  sweepDatasetFile,
  sweepDir,
  type SweepRecord,
  writeCellStatus,
} from "./sweep_dir.ts";

/** The engines. */
export const ENGINES = ["local", "slurm"] as const;
/** Where cells run. */
export type Engine = typeof ENGINES[number];

/** Options of {@linkcode runSweep}. */
export interface RunSweepOptions {
  /** The sweep's name: its folder is `checkpoints/sweeps/<name>`. */
  name: string;
  /** Sweep file; omit to continue a recorded sweep. */
  grid?: string;
  /** @default "local" */
  engine?: Engine;
  /** Local workers. @default 1 */
  jobs?: number;
  /** Threads per cell. @default local: cores / jobs; slurm: --cpus-per-task */
  threads?: number;
  /** Failures after which a cell is given up. @default 1 */
  retries?: number;
  /** Override the grid's epochs (recorded with the sweep). */
  epochs?: number;
  /** Override the grid's batches per epoch (recorded with the sweep). */
  maxBatches?: number;
  /** List the cells and their commands; run nothing, write nothing. @default false */
  dryRun?: boolean;
  /**
   * Time each method's training step with `deno task bench` first and print
   * what the cells left would take (lib/sweep/estimate.ts). @default false
   */
  estimate?: boolean;
  /** Slurm engine settings. */
  slurm?: SlurmOptions;
  /** Output lines. @default console.log */
  log?: (line: string) => void;
}

/** A grid file with the command line's `--epochs`/`--max-batches` applied. */
async function gridWithOverrides(
  file: string,
  o: Pick<RunSweepOptions, "epochs" | "maxBatches">,
): Promise<Grid> {
  const grid = await loadGrid(file);
  const overrides = { ...grid.overrides };
  if (o.epochs !== undefined) {
    overrides.epochs = checkOverride(
      "epochs",
      o.epochs,
      "Option --epochs",
    ) as number;
  }
  if (o.maxBatches !== undefined) {
    overrides.maxBatches = checkOverride(
      "max_batches",
      o.maxBatches,
      "Option --max-batches",
    ) as number;
  }
  return { ...grid, overrides };
}

/** The dataset file to read for a dataset: the sweep's copy, or before it exists the project's. */
function datasetFileOf(dir: string) {
  return (d: string) =>
    existsSync(sweepDatasetFile(dir, d)) ? sweepDatasetFile(dir, d) : d;
}

/** Each cell's configured epochs (its `--epochs`, else its dataset file's). */
function epochsFunction(dir: string, record: SweepRecord) {
  const byDataset = new Map<string, number>();
  for (const d of record.grid.datasets) {
    byDataset.set(d, loadDatasetConfig(datasetFileOf(dir)(d)).epochs);
  }
  return (cell: Cell) => cellEpochs(cell, byDataset.get(cell.dataset)!);
}

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function snapshot(dir: string, record: SweepRecord) {
  const statuses = new Map<number, CellStatus>();
  const progress = new Map<number, RunProgress>();
  for (const c of record.cells) {
    statuses.set(c.index, await readCellStatus(dir, c));
    progress.set(c.index, await readRunProgress(cellRunDir(dir, c)));
  }
  return { statuses, progress };
}

function describeGrid(g: Grid): string {
  return `${g.datasets.length} dataset${g.datasets.length === 1 ? "" : "s"} x ${
    g.noiseModes.length * g.noiseRates.length
  } noise x ${g.methods.length} method${
    g.methods.length === 1 ? "" : "s"
  } x ${g.seeds.length} seed${g.seeds.length === 1 ? "" : "s"}`;
}

/**
 * `deno task sweep`: creates or continues a sweep and runs what it needs
 * with the chosen engine. Returns the exit code: 0 when every cell is done
 * (local) or the array was submitted (slurm), 1 when cells failed, 130 when
 * stopped by a signal.
 */
export async function runSweep(options: RunSweepOptions): Promise<number> {
  const log = options.log ?? ((l: string) => console.log(l));
  const name = checkSweepName(options.name);
  const engine = options.engine ?? "local";
  const jobs = options.jobs ?? 1;
  const retries = options.retries ?? 1;
  const grid = options.grid === undefined
    ? null
    : await gridWithOverrides(options.grid, options);
  if (
    grid === null &&
    (options.epochs !== undefined || options.maxBatches !== undefined)
  ) {
    throw new TypeError(
      "Options --epochs and --max-batches change the grid: give --grid FILE with them",
    );
  }
  const { dir, record } = await openSweep(name, {
    grid,
    gridFile: options.grid,
    dryRun: options.dryRun,
  });
  const epochsOf = epochsFunction(dir, record);
  const { statuses, progress } = await snapshot(dir, record);
  // Cells that Slurm has queued or running are left to it, whichever engine
  // runs the rest (a local run of a Slurm sweep must not run them twice).
  const hasJobs = (await readJobs(dir)).length > 0;
  const slurmTasks = (engine === "slurm" || hasJobs) && !options.dryRun
    ? await liveSlurmTasks(dir).catch((e) => {
      if (engine === "slurm") throw e;
      log(
        `sweep ${name}: cannot ask Slurm about its jobs (${
          (e as Error).message
        }); running every cell that is not done`,
      );
      return new Map<number, TaskState>();
    })
    : new Map<number, TaskState>();

  // 1. What each cell needs.
  const todo: { cell: Cell; resume: boolean }[] = [];
  let done = 0;
  let givenUp = 0;
  let inSlurm = 0;
  for (const cell of record.cells) {
    const status = statuses.get(cell.index)!;
    // A cell that recorded itself done is done, even while its Slurm task
    // is still exiting (RUNNING or COMPLETING for a moment after).
    if (slurmTasks.has(cell.index) && status.state !== "done") {
      inSlurm++;
      continue;
    }
    const plan = await planCell(dir, cell, status, retries);
    if (plan.action === "done") {
      done++;
      // Killed after its last epoch, before it could record so: it is done.
      if (status.state !== "done" && !options.dryRun) {
        const fixed = {
          ...status,
          state: "done" as const,
          exitCode: status.exitCode ?? 0,
        };
        await writeCellStatus(dir, fixed);
        statuses.set(cell.index, fixed);
      }
    } else if (plan.action === "give-up") givenUp++;
    else todo.push({ cell, resume: plan.resume });
  }
  const threads = engine === "slurm"
    ? options.threads ?? options.slurm?.cpusPerTask ?? 4
    : options.threads ??
      Math.max(1, Math.floor((navigator.hardwareConcurrency || 1) / jobs));
  const totalEpochs = record.cells.reduce((s, c) => s + epochsOf(c), 0);
  log(
    `sweep ${name}: ${record.cells.length} cells (${
      describeGrid(record.grid)
    }), ${totalEpochs} epochs in all; ${done} done, ${givenUp} failed (out of retries), ${
      inSlurm ? `${inSlurm} queued or running in Slurm, ` : ""
    }${todo.length} to run; ${
      engine === "local"
        ? `local engine, ${jobs} job${
          jobs === 1 ? "" : "s"
        } x ${threads} thread${threads === 1 ? "" : "s"}`
        : `slurm engine, ${threads} CPU${threads === 1 ? "" : "s"} per task`
    }; folder ${dir}`,
  );
  const rem = estimateRemaining(record.cells, progress, statuses, epochsOf);
  if (rem.seconds !== null) {
    log(
      `estimate: ${formatDuration(rem.seconds)} of training left (${
        formatDuration(rem.seconds / (engine === "local" ? jobs : 1))
      } with ${
        engine === "local"
          ? `${jobs} job${jobs === 1 ? "" : "s"}`
          : "1 task at a time"
      }), from ${rem.measured} measured epoch${rem.measured === 1 ? "" : "s"}`,
    );
  } else if (!options.estimate) {
    log(
      "estimate: none yet (--estimate times a training step first); the ETA follows each cell's end, from the epochs measured so far",
    );
  }

  if (options.estimate && todo.length > 0) {
    await estimateSweep(record, {
      threads,
      jobs: engine === "local"
        ? jobs
        : Math.min(todo.length, options.slurm?.parallel ?? todo.length),
      cells: todo.map((t) => t.cell),
      datasetFile: datasetFileOf(dir),
      log,
    });
  }

  // 2. A dry run lists the commands (and the script) and stops.
  if (options.dryRun) {
    for (const { cell, resume } of todo) {
      log(
        `${cell.index}\t${cell.id}\t${statuses.get(cell.index)!.state}\t${
          shellLine(cellCommand(cell, { threads, resume }))
        }`,
      );
    }
    if (engine === "slurm" && todo.length > 0) {
      log(
        arrayScript(todo.map((t) => t.cell), {
          ...options.slurm,
          retries,
          name,
          dir,
          projectDir: Deno.cwd(),
        }),
      );
    }
    return 0;
  }
  if (todo.length === 0) {
    log(
      givenUp > 0
        ? `sweep ${name}: nothing to run; ${givenUp} cell(s) failed (see ${
          join(dir, "logs")
        }; raise --retries to try them again)`
        : `sweep ${name}: ${
          inSlurm ? "the rest is in Slurm" : "every cell is done"
        }; deno task table ${name}`,
    );
    return givenUp > 0 ? 1 : 0;
  }

  // 3. Run.
  if (engine === "slurm") {
    const job = await submitArray(todo.map((t) => t.cell), {
      ...options.slurm,
      cpusPerTask: options.slurm?.cpusPerTask ?? threads,
      retries,
      name,
      dir,
      projectDir: Deno.cwd(),
    });
    log(
      `sweep ${name}: submitted job ${job.jobId} (${todo.length} array task${
        todo.length === 1 ? "" : "s"
      }, ${job.script}); follow it with: deno task sweep status ${name}`,
    );
    return 0;
  }
  const outcome = await runLocal(dir, record, epochsOf, {
    cells: todo.map((t) => t.cell),
    jobs,
    threads,
    retries,
    log,
  });
  log(
    `sweep ${name}: ${outcome.done}/${record.cells.length} done, ${outcome.failed} failed, ${outcome.interrupted} interrupted${
      outcome.stopped ? " (stopped: run the same command to continue)" : ""
    }; deno task table ${name}`,
  );
  if (outcome.stopped) return 130;
  return outcome.failed > 0 || outcome.interrupted > 0 ? 1 : 0;
}

/** The array tasks of this sweep that Slurm has queued or running. */
async function liveSlurmTasks(dir: string): Promise<Map<number, TaskState>> {
  const jobs = await readJobs(dir);
  const tasks = await queryTasks(jobs.map((j) => j.jobId));
  const live = new Map<number, TaskState>();
  for (const [i, t] of tasks) {
    if (
      /^(PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED|REQUEUED)/.test(
        t.state,
      )
    ) {
      live.set(i, t);
    }
  }
  return live;
}

/** One cell as `sweep status` shows it. */
export interface CellView {
  cell: Cell;
  status: CellStatus;
  /** The state shown: the recorded one, or `queued`/`interrupted` from Slurm. */
  state: string;
  epochsDone: number;
  epochs: number;
  slurm: TaskState | null;
}

/** Options of {@linkcode sweepStatus}. */
export interface SweepStatusOptions {
  /** Output lines. @default console.log */
  log?: (line: string) => void;
}

/**
 * `deno task sweep status NAME`: every cell's state from its record, its run
 * folder and, for a Slurm sweep, `squeue`/`scontrol`. Returns the views.
 */
export async function sweepStatus(
  name: string,
  options: SweepStatusOptions = {},
): Promise<CellView[]> {
  const log = options.log ?? ((l: string) => console.log(l));
  const dir = sweepDir(checkSweepName(name));
  const record = await readSweepOrSay(dir, name);
  const epochsOf = epochsFunction(dir, record);
  const { statuses, progress } = await snapshot(dir, record);
  const jobs = await readJobs(dir);
  const tasks = jobs.length
    ? await queryTasks(jobs.map((j) => j.jobId))
    : new Map();
  const views: CellView[] = record.cells.map((cell) => {
    const status = statuses.get(cell.index)!;
    const p = progress.get(cell.index)!;
    const slurm: TaskState | null = tasks.get(cell.index) ?? null;
    let state: string = status.state;
    if (p.complete) state = "done";
    else if (slurm && /^PENDING/.test(slurm.state) && state !== "running") {
      state = "queued";
    } else if (
      state === "running" && status.engine === "slurm" &&
      !(slurm && /^(RUNNING|COMPLETING|CONFIGURING)/.test(slurm.state))
    ) state = "interrupted";
    return {
      cell,
      status,
      state,
      epochsDone: p.records.length,
      epochs: epochsOf(cell),
      slurm,
    };
  });
  const w = Math.max(...record.cells.map((c) => c.id.length));
  log(
    `${"#".padStart(3)}  ${"cell".padEnd(w)}  ${
      "state".padEnd(11)
    }  epochs     tries  exit  wall       slurm`,
  );
  for (const v of views) {
    log(
      `${String(v.cell.index).padStart(3)}  ${v.cell.id.padEnd(w)}  ${
        v.state.padEnd(11)
      }  ${`${v.epochsDone}/${v.epochs}`.padEnd(9)}  ${
        String(v.status.attempts).padStart(5)
      }  ${String(v.status.exitCode ?? v.status.signal ?? "-").padStart(4)}  ${
        formatDuration(v.status.seconds).padEnd(9)
      }  ${v.slurm ? `${v.slurm.state} ${v.slurm.detail}`.trim() : "-"}`,
    );
  }
  const counts = new Map<string, number>();
  for (const v of views) counts.set(v.state, (counts.get(v.state) ?? 0) + 1);
  const rem = estimateRemaining(record.cells, progress, statuses, epochsOf);
  log(
    `sweep ${name}: ${[...counts].map(([s, n]) => `${n} ${s}`).join(", ")}${
      jobs.length ? `; Slurm jobs ${jobs.map((j) => j.jobId).join(", ")}` : ""
    }${
      rem.seconds === null
        ? ""
        : `; ${
          formatDuration(rem.seconds)
        } of training left (one task at a time)`
    }`,
  );
  return views;
}

async function readSweepOrSay(dir: string, name: string) {
  return await readSweep(dir).catch((e) => {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Sweep "${name}" not found: no "${join(dir, "sweep.json")}"`,
      );
    }
    throw e;
  });
}

/** `deno task sweep cancel NAME`: `scancel` on the sweep's Slurm jobs. */
export async function cancelSweep(
  name: string,
  options: SweepStatusOptions = {},
): Promise<number> {
  const log = options.log ?? ((l: string) => console.log(l));
  const dir = sweepDir(checkSweepName(name));
  await readSweepOrSay(dir, name);
  const ids = await cancelJobs(dir);
  log(
    ids.length === 0
      ? `sweep ${name}: no Slurm jobs recorded (a local sweep stops with Ctrl-C)`
      : `sweep ${name}: scancel ${
        ids.join(" ")
      }; running cells resume when the sweep is run again`,
  );
  return 0;
}

/** Options of {@linkcode runOneCell}. */
export interface RunOneCellOptions {
  name: string;
  index: number;
  threads?: number;
  retries?: number;
  /** Slurm `<array job>_<task>`. */
  job?: string;
  log?: (line: string) => void;
}

/**
 * `deno task sweep run-cell`: what a Slurm array task runs. Brings cell
 * `index` to its next state through {@linkcode runCell}; a SIGTERM (scancel,
 * time limit) is passed to the training task and the cell is recorded as
 * interrupted. Returns 0 when the cell is done.
 */
export async function runOneCell(options: RunOneCellOptions): Promise<number> {
  const log = options.log ?? ((l: string) => console.log(l));
  const dir = sweepDir(checkSweepName(options.name));
  const record = await readSweepOrSay(dir, options.name);
  const cell = record.cells[options.index];
  if (!cell) {
    throw new RangeError(
      `Sweep "${options.name}" has no cell ${options.index}: expected 0 to ${
        record.cells.length - 1
      }`,
    );
  }
  let child: Deno.ChildProcess | null = null;
  const stop = () => {
    try {
      child?.kill("SIGTERM");
    } catch {
      // already gone
    }
  };
  Deno.addSignalListener("SIGTERM", stop);
  try {
    const retries = options.retries ?? 1;
    for (;;) {
      const result = await runCell(dir, cell, {
        threads: options.threads ?? null,
        retries,
        engine: "slurm",
        job: options.job ?? null,
        onSpawn: (c) => (child = c),
      });
      const s = result.status;
      log(
        `cell ${cell.index} ${cell.id}: ${s.state}${
          result.ran
            ? ` (${s.signal ? `signal ${s.signal}` : `exit ${s.exitCode}`})`
            : ""
        }; log ${relative(".", join(dir, "logs", `${cell.id}.log`))}`,
      );
      if (!result.ran || s.state !== "failed") {
        return s.state === "done" ? 0 : 1;
      }
    }
  } finally {
    Deno.removeSignalListener("SIGTERM", stop);
  }
}
