/**
 * The local engine: `jobs` workers take the cells that need work, in grid
 * order, each running one training task at a time with `threads` native
 * threads (by default the machine's cores divided between the workers).
 * Cells are independent: a failure is recorded and the others go on; a
 * failed cell is retried at once while it has retries left.
 *
 * It prints one line when a cell starts and one when it ends, with an
 * overall ETA from the epochs measured so far (see {@linkcode estimateRemaining}).
 * SIGINT and SIGTERM stop the running tasks (their cells become
 * `interrupted`, to be resumed by the next run) and end the sweep.
 *
 * @module
 */
import { type Cell } from "./grid.ts";
import { runCell } from "./cell.ts";
import {
  cellRunDir,
  type CellStatus,
  readCellStatus,
  readRunProgress,
  type RunProgress,
  type SweepRecord,
} from "./sweep_dir.ts";

/** Options of {@linkcode runLocal}. */
export interface RunLocalOptions {
  /** The cells to bring forward. @default every cell of the sweep */
  cells?: Cell[];
  /** Workers. @default 1 */
  jobs?: number;
  /** Threads per worker. @default max(1, floor(cores / jobs)) */
  threads?: number;
  /** Failures after which a cell is given up. @default 1 */
  retries?: number;
  /** Output lines. @default console.log */
  log?: (line: string) => void;
}

/** What {@linkcode runLocal} returns. */
export interface LocalOutcome {
  done: number;
  failed: number;
  interrupted: number;
  /** Whether a signal stopped the sweep. */
  stopped: boolean;
}

/** Formats seconds as `45 s`, `3 min 20 s`, `2 h 05 min` or `3 d 4 h`. */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  }
  if (s < 86400) {
    return `${Math.floor(s / 3600)} h ${
      String(Math.floor((s % 3600) / 60)).padStart(2, "0")
    } min`;
  }
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** The work left, from what the run folders measured. */
export interface Remaining {
  /** Seconds of work left (one worker), `null` until an epoch was measured. */
  seconds: number | null;
  /** Epochs measured. */
  measured: number;
}

/**
 * Seconds of training left over `cells`: each cell's missing epochs times
 * the mean measured epoch time of its dataset and method (else of its
 * method, else of any cell), plus a startup time per cell not yet done
 * (measured as a finished cell's wall time beyond its epochs).
 */
export function estimateRemaining(
  cells: Cell[],
  progress: Map<number, RunProgress>,
  statuses: Map<number, CellStatus>,
  epochsOf: (cell: Cell) => number,
): Remaining {
  const sums = new Map<string, [number, number]>();
  const add = (key: string, s: number) => {
    const [t, n] = sums.get(key) ?? [0, 0];
    sums.set(key, [t + s, n + 1]);
  };
  let measured = 0;
  let overhead = 0;
  let overheadN = 0;
  for (const cell of cells) {
    const p = progress.get(cell.index);
    if (!p) continue;
    let epochSeconds = 0;
    for (const r of p.records) {
      if (r.seconds === null) continue;
      measured++;
      epochSeconds += r.seconds;
      add(`${cell.dataset}/${cell.method}`, r.seconds);
      add(cell.method, r.seconds);
      add("", r.seconds);
    }
    const st = statuses.get(cell.index);
    if (st?.state === "done" && st.attempts === 1 && st.seconds > 0) {
      overhead += Math.max(0, st.seconds - epochSeconds);
      overheadN++;
    }
  }
  if (measured === 0) return { seconds: null, measured };
  const mean = (key: string) => {
    const v = sums.get(key);
    return v ? v[0] / v[1] : null;
  };
  let seconds = 0;
  for (const cell of cells) {
    if (statuses.get(cell.index)?.state === "done") continue;
    const p = progress.get(cell.index);
    const left = Math.max(0, epochsOf(cell) - (p?.records.length ?? 0));
    const per = mean(`${cell.dataset}/${cell.method}`) ?? mean(cell.method) ??
      mean("")!;
    seconds += left * per + (overheadN ? overhead / overheadN : 0);
  }
  return { seconds, measured };
}

/** Epochs of a cell: its `--epochs`, else its dataset file's `epoch`. */
export function cellEpochs(cell: Cell, datasetEpochs: number): number {
  const i = cell.args.indexOf("--epochs");
  return i >= 0 ? Number(cell.args[i + 1]) : datasetEpochs;
}

/** Runs the sweep's cells that need work with `jobs` local workers. */
export async function runLocal(
  dir: string,
  record: SweepRecord,
  epochsOf: (cell: Cell) => number,
  options: RunLocalOptions = {},
): Promise<LocalOutcome> {
  const log = options.log ?? ((l: string) => console.log(l));
  const jobs = options.jobs ?? 1;
  const threads = options.threads ??
    Math.max(1, Math.floor((navigator.hardwareConcurrency || 1) / jobs));
  const retries = options.retries ?? 1;
  const cells = record.cells;
  const total = cells.length;
  const statuses = new Map<number, CellStatus>();
  const progress = new Map<number, RunProgress>();
  for (const c of cells) {
    statuses.set(c.index, await readCellStatus(dir, c));
    progress.set(c.index, await readRunProgress(cellRunDir(dir, c)));
  }
  const children = new Set<Deno.ChildProcess>();
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    log("sweep: stopping the running cells (they resume on the next run)");
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, stop);

  const count = (state: string) =>
    [...statuses.values()].filter((s) => s.state === state).length;
  const eta = () => {
    const r = estimateRemaining(cells, progress, statuses, epochsOf);
    return r.seconds === null
      ? "ETA after the first epoch"
      : `ETA ${formatDuration(r.seconds / jobs)}`;
  };
  const width = String(total).length;
  const tag = (c: Cell) => `[${String(c.index + 1).padStart(width)}/${total}]`;

  const queue = options.cells ?? cells;
  let next = 0;
  const worker = async () => {
    while (!stopped && next < queue.length) {
      const cell = queue[next++];
      for (;;) {
        const before = statuses.get(cell.index)!;
        const t0 = Date.now();
        const result = await runCell(dir, cell, {
          threads,
          retries,
          engine: "local",
          onSpawn: (child) => {
            children.add(child);
            log(
              `${tag(cell)} ${cell.id}: ${
                before.state === "pending" ? "start" : `${before.state}, resume`
              } (attempt ${before.attempts + 1}, ${threads} thread${
                threads === 1 ? "" : "s"
              })`,
            );
          },
        });
        statuses.set(cell.index, result.status);
        const p = await readRunProgress(cellRunDir(dir, cell));
        progress.set(cell.index, p);
        const st = result.status;
        if (!result.ran) break;
        const last10 = p.records.slice(-10);
        const acc = last10.length
          ? ` last-10 acc ${
            (100 * last10.reduce((s, r) => s + r.testAcc, 0) / last10.length)
              .toFixed(1)
          }%,`
          : "";
        log(
          `${tag(cell)} ${cell.id}: ${st.state} in ${
            formatDuration((Date.now() - t0) / 1000)
          } (${
            st.signal ? `signal ${st.signal}` : `exit ${st.exitCode}`
          }),${acc} ${count("done")} done, ${count("failed")} failed; ${eta()}`,
        );
        if (st.state !== "failed" || stopped) break;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: jobs }, worker));
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, stop);
  }
  return {
    done: count("done"),
    failed: count("failed"),
    interrupted: count("interrupted") + count("running"),
    stopped,
  };
}
