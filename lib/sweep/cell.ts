/**
 * One cell: decide what it needs, run its training task, record the outcome.
 * Both engines go through here (the local engine in its workers, the Slurm
 * engine in each array task through `deno task sweep run-cell`), so a cell
 * behaves the same wherever it runs.
 *
 * What a cell needs ({@linkcode planCell}), in order:
 * 1. its run folder records every configured epoch: `done` (also when a
 *    previous attempt was killed after its last epoch, before it could say so);
 * 2. it failed more than `retries` times: give up (`failed`) until a re-run
 *    raises `--retries`;
 * 3. otherwise run it, with `--resume` when its run folder has a
 *    `config.json` (an interrupted or failed attempt got that far).
 *
 * The child is `deno task train:<method> <args> --threads T [--resume]` in the
 * project folder, its output appended to the cell's log. Exit code 0 with
 * every epoch recorded is `done`; an end by a signal (or exit 130/143, a
 * signal passed through `deno task`) is `interrupted` and not counted as a
 * failure; anything else is `failed`.
 *
 * @module
 */
import type { Cell } from "./grid.ts";
import {
  appendLog,
  cellLogFile,
  cellRunDir,
  type CellStatus,
  readCellStatus,
  readRunProgress,
  writeCellStatus,
} from "./sweep_dir.ts";

/** What {@linkcode planCell} decides. */
export type CellPlan =
  | { action: "done" }
  | { action: "give-up" }
  | { action: "run"; resume: boolean };

/** Decides what a cell needs (see the module doc). */
export async function planCell(
  dir: string,
  cell: Cell,
  status: CellStatus,
  retries: number,
): Promise<CellPlan> {
  const progress = await readRunProgress(cellRunDir(dir, cell));
  if (progress.complete) return { action: "done" };
  if (status.failures > retries) return { action: "give-up" };
  return { action: "run", resume: progress.started };
}

/** The full command of a cell: `["deno", "task", ...]`. */
export function cellCommand(
  cell: Cell,
  options: { threads: number | null; resume: boolean },
): string[] {
  return [
    "deno",
    "task",
    cell.task,
    ...cell.args,
    ...(options.threads === null ? [] : ["--threads", String(options.threads)]),
    ...(options.resume ? ["--resume"] : []),
  ];
}

/** A command as one shell-quoted line (for printing and scripts). */
export function shellLine(argv: readonly string[]): string {
  return argv.map((a) =>
    /^[A-Za-z0-9_./:=@%+-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`
  ).join(" ");
}

/** Options of {@linkcode runCell}. */
export interface RunCellOptions {
  /** `--threads` of the training task; `null` leaves it to the task. */
  threads: number | null;
  /** Failures after which the cell is given up. */
  retries: number;
  engine: "local" | "slurm";
  /** Slurm `<array job>_<task>`. @default null */
  job?: string | null;
  /** Project folder the task runs in. @default the working directory */
  cwd?: string;
  /** Called with the child process once it started (to stop it). */
  onSpawn?: (child: Deno.ChildProcess) => void;
}

/** What {@linkcode runCell} did. */
export interface RunCellResult {
  /** Whether a training task was started. */
  ran: boolean;
  status: CellStatus;
}

const INTERRUPT_CODES = new Set([130, 143]);

/**
 * Brings a cell to its next state: marks it done, gives it up, or runs its
 * task once (with `--resume` where it can) and records how that ended.
 */
export async function runCell(
  dir: string,
  cell: Cell,
  options: RunCellOptions,
): Promise<RunCellResult> {
  let status = await readCellStatus(dir, cell);
  const plan = await planCell(dir, cell, status, options.retries);
  if (plan.action === "done") {
    if (status.state !== "done") {
      status = { ...status, state: "done", exitCode: status.exitCode ?? 0 };
      await writeCellStatus(dir, status);
    }
    return { ran: false, status };
  }
  if (plan.action === "give-up") {
    if (status.state !== "failed") {
      status = { ...status, state: "failed" };
      await writeCellStatus(dir, status);
    }
    return { ran: false, status };
  }
  const argv = cellCommand(cell, {
    threads: options.threads,
    resume: plan.resume,
  });
  const started = new Date();
  status = {
    ...status,
    state: "running",
    attempts: status.attempts + 1,
    exitCode: null,
    signal: null,
    startedAt: started.toISOString(),
    endedAt: null,
    engine: options.engine,
    job: options.job ?? null,
  };
  await writeCellStatus(dir, status);
  const log = cellLogFile(dir, cell);
  await appendLog(
    log,
    `\n=== attempt ${status.attempts} (${options.engine}${
      status.job ? ` job ${status.job}` : ""
    }) at ${status.startedAt}: ${shellLine(argv)}\n`,
  );
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  options.onSpawn?.(child);
  const file = await Deno.open(log, { append: true, create: true });
  const writer = file.writable.getWriter();
  let chain = Promise.resolve();
  const copy = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      chain = chain.then(() => writer.write(chunk));
    }
  };
  const [out] = await Promise.all([
    child.status,
    copy(child.stdout),
    copy(child.stderr),
  ]);
  await chain;
  await writer.close();
  const seconds = (Date.now() - started.getTime()) / 1000;
  const progress = await readRunProgress(cellRunDir(dir, cell));
  const interrupted = out.signal !== null || INTERRUPT_CODES.has(out.code);
  const state = out.success && progress.complete
    ? "done"
    : interrupted
    ? "interrupted"
    : "failed";
  status = {
    ...status,
    state,
    failures: status.failures + (state === "failed" ? 1 : 0),
    exitCode: out.signal === null ? out.code : null,
    signal: out.signal,
    endedAt: new Date().toISOString(),
    seconds: status.seconds + seconds,
  };
  await writeCellStatus(dir, status);
  await appendLog(
    log,
    `=== attempt ${status.attempts} ended: ${state}, ${
      out.signal ? `signal ${out.signal}` : `exit ${out.code}`
    }, ${seconds.toFixed(1)} s\n`,
  );
  return { ran: true, status };
}
