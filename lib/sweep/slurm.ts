/**
 * The Slurm engine: one job-array script per submission, in which array task
 * `i` runs cell `i` through `deno task sweep run-cell` (the same code, and so
 * the same `deno task train:<method>` command, as the local engine), then
 * `sbatch`. Only the cells that need work are in the array; their indices are
 * the cells' places in the grid.
 *
 * The script `cd`s into the project folder (`#SBATCH --chdir`) and writes
 * Slurm's output under the sweep folder: nothing assumes a shared home, only
 * a project folder that the nodes see at the same path, and `deno` on their
 * `PATH`.
 *
 * `sweep status` joins each cell's recorded state with `squeue` (queued and
 * running array tasks) and `scontrol show job` (how finished ones ended, while
 * the controller remembers them): a cell recorded as running whose task is no
 * longer queued or running was lost (killed, timed out, node failure) and
 * counts as interrupted. `sweep cancel` runs `scancel` on the recorded jobs.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import type { Cell } from "./grid.ts";
import { shellLine } from "./cell.ts";

/** Settings of the job-array script. */
export interface SlurmOptions {
  /** `--partition`; `null` for the cluster's default. @default null */
  partition?: string | null;
  /** `--time` per array task, e.g. `12:00:00`. @default "24:00:00" */
  time?: string;
  /** `--cpus-per-task` (also the training task's `--threads`). @default 4 */
  cpusPerTask?: number;
  /** `--mem`, e.g. `16G`. @default "16G" */
  mem?: string;
  /** GPUs per task, `--gres=gpu:N`; 0 leaves it out. @default 0 */
  gpus?: number;
  /** Array tasks running at once (`%P`); `null` for no limit. @default null */
  parallel?: number | null;
  /** Failures after which a cell is given up. @default 1 */
  retries?: number;
}

/** A submission, as `slurm/jobs.json` records it. */
export interface SlurmJob {
  jobId: string;
  submittedAt: string;
  script: string;
  indices: number[];
}

const SAFE = /^[A-Za-z0-9_.:,=+-]+$/;

function checkSafe(value: string, what: string): string {
  if (!SAFE.test(value)) {
    throw new TypeError(
      `${what} ${
        JSON.stringify(value)
      } may hold only letters, digits and _ . : , = + -`,
    );
  }
  return value;
}

/** `0,2,3,4,7` -> `0,2-4,7`. */
export function compressIndices(indices: readonly number[]): string {
  const xs = [...indices].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < xs.length;) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
    parts.push(i === j ? `${xs[i]}` : `${xs[i]}-${xs[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/** Options of {@linkcode arrayScript}. */
export interface ArrayScriptOptions extends SlurmOptions {
  /** The sweep's name. */
  name: string;
  /** The sweep folder, relative to the project. */
  dir: string;
  /** The project folder (absolute). */
  projectDir: string;
}

/** The job-array script running `cells`. */
export function arrayScript(
  cells: readonly Cell[],
  options: ArrayScriptOptions,
): string {
  if (cells.length === 0) throw new RangeError("No cells to submit");
  const cpus = options.cpusPerTask ?? 4;
  const gpus = options.gpus ?? 0;
  const retries = options.retries ?? 1;
  const parallel = options.parallel ?? null;
  const sweepAbs = resolve(options.projectDir, options.dir);
  const lines = [
    "#!/bin/bash",
    `#SBATCH --job-name=${checkSafe(`sweep-${options.name}`, "Job name")}`,
    `#SBATCH --array=${compressIndices(cells.map((c) => c.index))}${
      parallel === null ? "" : `%${parallel}`
    }`,
    ...(options.partition
      ? [`#SBATCH --partition=${checkSafe(options.partition, "Partition")}`]
      : []),
    `#SBATCH --time=${checkSafe(options.time ?? "24:00:00", "Time")}`,
    `#SBATCH --cpus-per-task=${cpus}`,
    `#SBATCH --mem=${checkSafe(options.mem ?? "16G", "Memory")}`,
    ...(gpus > 0 ? [`#SBATCH --gres=gpu:${gpus}`] : []),
    `#SBATCH --chdir=${shellSafePath(options.projectDir)}`,
    `#SBATCH --output=${shellSafePath(join(sweepAbs, "slurm"))}/%A_%a.out`,
    "#",
    `# Sweep "${options.name}": array task i runs cell i of ${
      join(options.dir, "sweep.json")
    }:`,
    ...cells.map((c) =>
      `#   ${c.index}: deno task ${c.task} ${shellLine(c.args)}`
    ),
    "set -u",
    `exec deno task sweep run-cell --name ${options.name} --index "$SLURM_ARRAY_TASK_ID" --job "\${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID}" --threads "\${SLURM_CPUS_PER_TASK:-${cpus}}" --retries ${retries}`,
    "",
  ];
  return lines.join("\n");
}

function shellSafePath(p: string): string {
  if (!/^[A-Za-z0-9_./+-]+$/.test(p)) {
    throw new TypeError(
      `Path ${
        JSON.stringify(p)
      } cannot go into a Slurm script: use a folder whose path has only letters, digits and _ . / + -`,
    );
  }
  return p;
}

async function run(cmd: string, args: string[]): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Cannot run ${cmd}: not found (is this a Slurm login node? Slurm's client commands must be on PATH)`,
      );
    }
    throw e;
  }
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n")[0];
    throw new Error(
      `${cmd} ${args.join(" ")} failed: ${err || `exit ${out.code}`}`,
    );
  }
  return text;
}

/** Reads `slurm/jobs.json` (an empty list when absent). */
export async function readJobs(dir: string): Promise<SlurmJob[]> {
  try {
    return JSON.parse(await Deno.readTextFile(join(dir, "slurm", "jobs.json")));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

/**
 * Writes the script for `cells` and submits it with `sbatch`; records and
 * returns the job.
 */
export async function submitArray(
  cells: readonly Cell[],
  options: ArrayScriptOptions,
): Promise<SlurmJob> {
  const jobs = await readJobs(options.dir);
  const script = join(options.dir, "slurm", `array-${jobs.length + 1}.sh`);
  await writeFileAtomic(script, arrayScript(cells, options));
  const out = await run("sbatch", ["--parsable", script]);
  const jobId = out.trim().split(";")[0];
  if (!/^\d+$/.test(jobId)) {
    throw new Error(
      `sbatch printed ${JSON.stringify(out.trim())}: expected a job id`,
    );
  }
  const job: SlurmJob = {
    jobId,
    submittedAt: new Date().toISOString(),
    script,
    indices: cells.map((c) => c.index),
  };
  await writeJsonAtomic(join(options.dir, "slurm", "jobs.json"), [
    ...jobs,
    job,
  ]);
  return job;
}

/** Slurm's view of one array task. */
export interface TaskState {
  /** `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `CANCELLED`, `TIMEOUT`, ... */
  state: string;
  /** `squeue`'s reason or `scontrol`'s exit code. */
  detail: string;
}

/** Expands squeue's `123_[0-3,7%2]` (or `123_5`) into task indices. */
export function expandArrayId(id: string): { job: string; tasks: number[] } {
  const m = /^(\d+)_(?:\[([^\]]*)\]|(\d+))$/.exec(id);
  if (!m) return { job: id, tasks: [] };
  if (m[3] !== undefined) return { job: m[1], tasks: [Number(m[3])] };
  const tasks: number[] = [];
  for (const part of m[2].split("%")[0].split(",")) {
    const [a, b] = part.split("-").map(Number);
    for (let i = a; i <= (b ?? a); i++) tasks.push(i);
  }
  return { job: m[1], tasks };
}

/**
 * Slurm's state of the array tasks of `jobIds`, by task index: `squeue` for
 * queued and running ones, then `scontrol show job` for finished ones the
 * controller still remembers.
 */
export async function queryTasks(
  jobIds: readonly string[],
): Promise<Map<number, TaskState>> {
  const out = new Map<number, TaskState>();
  if (jobIds.length === 0) return out;
  const text = await run("squeue", [
    "-h",
    "-r",
    "-j",
    jobIds.join(","),
    "-o",
    "%i|%T|%r",
  ]).catch((e) => {
    // squeue refuses ids the controller has forgotten: nothing is queued.
    if (/Invalid job id/i.test((e as Error).message)) return "";
    throw e;
  });
  for (const line of text.split("\n")) {
    const [id, state, reason] = line.trim().split("|");
    if (!id) continue;
    for (const t of expandArrayId(id).tasks) {
      out.set(t, { state, detail: reason ?? "" });
    }
  }
  for (const jobId of jobIds) {
    const shown = await run("scontrol", ["-o", "show", "job", jobId]).catch(
      () => "",
    );
    for (const line of shown.split("\n")) {
      const task = /\bArrayTaskId=(\d+)\b/.exec(line);
      const state = /\bJobState=(\S+)/.exec(line);
      if (!task || !state) continue;
      const i = Number(task[1]);
      if (out.has(i)) continue;
      const code = /\bExitCode=(\S+)/.exec(line);
      out.set(i, { state: state[1], detail: code ? `exit ${code[1]}` : "" });
    }
  }
  return out;
}

/** Cancels the recorded jobs with `scancel`; returns the job ids. */
export async function cancelJobs(dir: string): Promise<string[]> {
  const ids = (await readJobs(dir)).map((j) => j.jobId);
  if (ids.length > 0) await run("scancel", ids);
  return ids;
}
