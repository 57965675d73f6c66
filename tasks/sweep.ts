/**
 * `deno task sweep --grid FILE --name NAME [--engine local|slurm] ...`: runs
 * or continues a sweep (see lib/sweep/sweep.ts), and its subcommands:
 *
 * - `sweep status NAME`: every cell's state, with Slurm's view;
 * - `sweep cancel NAME`: `scancel` on the sweep's Slurm jobs;
 * - `sweep report NAME`: the same as `deno task table NAME`;
 * - `sweep run-cell --name NAME --index I`: one cell (what a Slurm array
 *   task runs).
 *
 * @module
 */
import { Command, Option } from "commander";
import { type MainOptions, parseCommand, runTask } from "./_cli.ts";
import { ENGINES } from "../lib/sweep/sweep.ts";

function count(flag: string, min = 1) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || n < min) {
      throw new TypeError(
        `Option ${flag} must be an integer >= ${min}, got ${
          JSON.stringify(value)
        }`,
      );
    }
    return n;
  };
}

/** The main command line (run or continue a sweep). */
export function sweepCommand(): Command {
  return new Command("sweep")
    .description(
      "Run a grid of training runs (a sweep) here or on Slurm; re-running continues it. " +
        "Subcommands: status NAME, cancel NAME, report NAME, run-cell",
    )
    .option(
      "--grid <file>",
      "sweep file, e.g. conf/sweeps/demo.json (omit to continue NAME)",
    )
    .requiredOption("--name <name>", "sweep name: checkpoints/sweeps/<name>/")
    .addOption(
      new Option("--engine <engine>", "where cells run").choices([...ENGINES])
        .default("local"),
    )
    .option("--jobs <n>", "local: cells at once", count("--jobs"), 1)
    .option(
      "--threads <n>",
      "threads per cell (default: local, cores / jobs; slurm, --cpus-per-task)",
      count("--threads"),
    )
    .option(
      "--retries <n>",
      "tries after a cell's first failure",
      count("--retries", 0),
      1,
    )
    .option(
      "--epochs <n>",
      "epochs of every cell, instead of the grid's",
      count("--epochs"),
    )
    .option(
      "--max-batches <n>",
      "batches per epoch (smoke runs)",
      count("--max-batches"),
    )
    .option(
      "--estimate",
      "time each method's training step (deno task bench) and print what the cells would take",
    )
    .option(
      "--dry-run",
      "list the cells and their commands; run and write nothing",
    )
    .option("--partition <name>", "slurm: --partition")
    .option("--time <limit>", "slurm: --time per array task", "24:00:00")
    .option(
      "--cpus-per-task <n>",
      "slurm: --cpus-per-task",
      count("--cpus-per-task"),
      4,
    )
    .option("--mem <size>", "slurm: --mem", "16G")
    .option(
      "--gpus <n>",
      "slurm: --gres=gpu:N (0: none)",
      count("--gpus", 0),
      0,
    )
    .option(
      "--parallel <n>",
      "slurm: array tasks at once (%P)",
      count("--parallel"),
    )
    .allowExcessArguments(false);
}

function nameCommand(name: string, what: string): Command {
  return new Command(`sweep ${name}`).description(what).argument(
    "<name>",
    "sweep name",
  )
    .allowExcessArguments(false);
}

function runCellCommand(): Command {
  return new Command("sweep run-cell")
    .description("Run one cell of a sweep (what a Slurm array task runs)")
    .requiredOption("--name <name>", "sweep name")
    .requiredOption("--index <i>", "cell index", count("--index", 0))
    .option("--job <id>", "Slurm <array job>_<task>, recorded with the cell")
    .option("--threads <n>", "threads of the training task", count("--threads"))
    .option(
      "--retries <n>",
      "tries after a first failure",
      count("--retries", 0),
      1,
    )
    .allowExcessArguments(false);
}

/** Runs `sweep` with `args`; returns the exit code. */
export async function main(
  args: string[],
  options: MainOptions = {},
): Promise<number> {
  const print = options.print ?? console.log;
  const sweep = await import("../lib/sweep/sweep.ts");
  const sub = args[0];
  if (sub === "status" || sub === "cancel" || sub === "report") {
    const cmd = nameCommand(
      sub,
      {
        status: "Every cell's state",
        cancel: "scancel the sweep's Slurm jobs",
        report: "Write the sweep's tables (= deno task table NAME)",
      }[sub],
    );
    if (!parseCommand(cmd, args.slice(1), print)) return 0;
    const name = cmd.args[0];
    if (sub === "status") {
      await sweep.sweepStatus(name, { log: print });
      return 0;
    }
    if (sub === "cancel") return await sweep.cancelSweep(name, { log: print });
    const table = await import("./table.ts");
    return await table.main([name], options);
  }
  if (sub === "run-cell") {
    const cmd = runCellCommand();
    if (!parseCommand(cmd, args.slice(1), print)) return 0;
    const o = cmd.opts();
    return await sweep.runOneCell({
      name: o.name,
      index: o.index,
      threads: o.threads,
      retries: o.retries,
      job: o.job,
      log: print,
    });
  }
  const cmd = sweepCommand();
  if (!parseCommand(cmd, args, print)) return 0;
  const o = cmd.opts();
  return await sweep.runSweep({
    name: o.name,
    grid: o.grid,
    engine: o.engine,
    jobs: o.jobs,
    threads: o.threads,
    retries: o.retries,
    epochs: o.epochs,
    maxBatches: o.maxBatches,
    dryRun: o.dryRun === true,
    estimate: o.estimate === true,
    slurm: {
      partition: o.partition ?? null,
      time: o.time,
      cpusPerTask: o.cpusPerTask,
      mem: o.mem,
      gpus: o.gpus,
      parallel: o.parallel ?? null,
    },
    log: print,
  });
}

if (import.meta.main) await runTask("sweep", () => main(Deno.args));
