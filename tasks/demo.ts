/**
 * `deno task demo [--out DIR] [-n 0.4] [--data NAME --weights FILE]
 * [--epochs N] [--backend NAME] [--yes] [--no-png] [--force] [--resume]
 * [--skip-bad]`: trains linear probing, Rein and CUFIT on the same noisy
 * labels and writes `summary.json`, `report.html` and PNG plots into DIR
 * (default `runs/<data>-noise<percent>`, e.g. `runs/demo-noise40`), then
 * prints the results table. Each method shows one live line; its full
 * per-epoch log is `DIR/runs/<method>/train.log`. Ctrl-C says after which
 * epoch it stopped; `--resume` continues.
 *
 * Without `--data` it runs the built-in synthetic demo (conf/demo.json with
 * data/demo/backbone.safetensors): a few minutes on a CPU, no download.
 * With `--data bloodmnist --weights data/weights/dinov2_vits14_pretrain.pth`
 * it runs the real comparison; it first measures a few steps and, when the
 * whole run would take more than 15 minutes, stops and asks for `--yes`.
 *
 * Exit codes: 0 done, 1 failed, 2 bad arguments (or a path outside the
 * task's permissions), 3 needs `--yes`, 130 interrupted.
 *
 * @module
 */
import { Command, CommanderError, Option } from "commander";
import { BACKENDS } from "../lib/backend/backend.ts";
import type { DemoOptions } from "../lib/demo/demo.ts";
import { permissionHint } from "../lib/cli/permission_hint.ts";
import { splitShortEquals, usageLine } from "../lib/cli/usage.ts";
import { integerAtLeast, numberIn, parseNumber } from "../lib/train/_checks.ts";
import { runTask } from "./_cli.ts";

// The same checks, and so the same words, as the train:* options.
const parseRate = (value: string): number =>
  numberIn(parseNumber(value, "Option --noise"), 0, 1, "Option --noise");

function parseCount(flag: string) {
  return (value: string): number =>
    integerAtLeast(parseNumber(value, `Option ${flag}`), 1, `Option ${flag}`);
}

/** The demo's command line (options only). */
export function demoCommand(): Command {
  return new Command("demo")
    .description(
      "Linear probing vs Rein vs CUFIT on the same noisy labels, with a report",
    )
    .option(
      "--out <dir>",
      "output folder (default: runs/<data>-noise<percent>, e.g. runs/demo-noise40)",
    )
    .option("-n, --noise <rate>", "symmetric label-noise rate", parseRate, 0.4)
    .option(
      "--data <name|path>",
      "dataset config (conf/<name>.json: ham10000, aptos, bloodmnist, organcmnist, demo, synthetic) or a path; default: demo, the built-in synthetic data",
    )
    .option(
      "--weights <file>",
      "backbone weights (.pth or .safetensors); default: data/demo/backbone.safetensors for the demo, else data/weights/dinov2_vits14_*",
    )
    .option(
      "--epochs <n>",
      "epochs instead of the dataset config's",
      parseCount("--epochs"),
    )
    .addOption(
      new Option("--backend <name>", "compute backend").choices(
        BACKENDS as unknown as string[],
      ).default("auto"),
    )
    .option("--yes", "run even when the estimate is long")
    .option("--no-png", "skip the PNG copies of the plots")
    .option(
      "--force",
      "replace a report in --out made with other data or another noise rate",
    )
    .option("--resume", "continue the runs in --out from their last epoch")
    .option(
      "--skip-bad",
      "skip unreadable images (counted and reported) instead of stopping",
    )
    .addOption(
      new Option("--max-batches <n>", "batches per epoch (smoke runs)")
        .argParser(parseCount("--max-batches")).hideHelp(),
    )
    .exitOverride()
    .configureOutput({
      writeErr: () => {},
      writeOut: () => {},
      // Commander's colour check reads env variables the task may not read.
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    })
    .allowExcessArguments(false);
}

/** Parses the demo's arguments; throws `CommanderError` or `TypeError` on bad input. */
export function parseDemoArgs(args: string[]): DemoOptions {
  const program = demoCommand();
  program.parse(splitShortEquals(args), { from: "user" });
  const o = program.opts();
  return {
    ...(o.out === undefined ? {} : { out: o.out }),
    noise: o.noise,
    ...(o.data === undefined ? {} : { data: o.data }),
    ...(o.weights === undefined ? {} : { weights: o.weights }),
    ...(o.epochs === undefined ? {} : { epochs: o.epochs }),
    ...(o.maxBatches === undefined ? {} : { maxBatches: o.maxBatches }),
    backend: o.backend,
    yes: o.yes === true,
    png: o.png !== false,
    force: o.force === true,
    resume: o.resume === true,
    skipBad: o.skipBad === true,
  };
}

/** Runs the demo; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let options: DemoOptions;
  try {
    options = parseDemoArgs(args);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) {
        console.log(helpText());
        return 0;
      }
      console.error(usageLine("demo", e.message));
      return 2;
    }
    if (e instanceof TypeError) {
      console.error(usageLine("demo", e.message));
      return 2;
    }
    throw e;
  }
  if (options.data !== undefined) {
    // A dataset name or file that does not work is bad usage, as for train:*.
    const { loadDatasetConfig } = await import("../lib/train/config.ts");
    try {
      loadDatasetConfig(options.data);
    } catch (e) {
      console.error(
        permissionHint(e, "demo", args) ??
          usageLine("demo", (e as Error).message),
      );
      return 2;
    }
  }
  const { ConfirmationNeededError, defaultOut, runDemo } = await import(
    "../lib/demo/demo.ts"
  );
  // Refuse an output folder outside the permissions before any training.
  const out = options.out ?? defaultOut(options.data, options.noise);
  // Write first: its hint grants the read of the same folder too.
  for (const name of ["write", "read"] as const) {
    if (Deno.permissions.querySync({ name, path: out }).state !== "granted") {
      console.error(
        permissionHint(
          new Deno.errors.NotCapable(`Requires ${name} access to "${out}"`),
          "demo",
          args,
        ),
      );
      return 2;
    }
  }
  let current: string | null = null;
  const { onInterrupt } = await import("../lib/train/task.ts");
  const stopListening = onInterrupt("demo", () => current);
  try {
    const result = await runDemo({
      ...options,
      out,
      onRunStart: (_method, runDir) => (current = runDir),
    });
    console.log("");
    console.log(result.table);
    console.log("");
    console.log(`report: ${result.files.find((f) => f.endsWith(".html"))}`);
    console.log(`files:  ${result.files.join(", ")}`);
    return 0;
  } catch (e) {
    if (e instanceof ConfirmationNeededError) {
      console.error(`demo: ${e.message}`);
      return 3;
    }
    const hint = permissionHint(e, "demo", args);
    if (hint !== null) {
      console.error(hint);
      return 2;
    }
    throw e;
  } finally {
    stopListening();
  }
}

function helpText(): string {
  return demoCommand().helpInformation() +
    "\nWithout --data it runs the built-in synthetic demo (minutes on a CPU, no download).\n" +
    "Real data: --data bloodmnist --weights data/weights/dinov2_vits14_pretrain.pth --yes\n";
}

if (import.meta.main) await runTask("demo", () => main(Deno.args));
