/**
 * `deno task demo [--out DIR] [--noise 0.4] [--data NAME --weights FILE]
 * [--epochs N] [--backend NAME] [--yes] [--no-png]`: trains linear probing,
 * Rein and CUFIT on the same noisy labels and writes `summary.json`,
 * `report.html` and PNG plots into DIR (default `runs/demo`), then prints the
 * results table.
 *
 * Without `--data` it runs the built-in synthetic demo (conf/demo.json with
 * data/demo/backbone.safetensors): a few minutes on a CPU, no download.
 * With `--data bloodmnist --weights data/weights/dinov2_vits14_pretrain.pth`
 * it runs the real comparison; it first measures a few steps and, when the
 * whole run would take more than 15 minutes, stops and asks for `--yes`.
 *
 * Exit codes: 0 done, 2 bad arguments (or a path outside the task's
 * permissions), 3 needs `--yes`.
 *
 * @module
 */
import { Command, CommanderError, Option } from "commander";
import { BACKENDS } from "../lib/backend/backend.ts";
import type { DemoOptions } from "../lib/demo/demo.ts";
import { runTask } from "./_cli.ts";

function parseRate(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !(n >= 0 && n <= 1)) {
    throw new TypeError(
      `Option --noise must be a number from 0 to 1, got ${
        JSON.stringify(value)
      }`,
    );
  }
  return n;
}

function parseCount(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || n < 1) {
      throw new TypeError(
        `Option ${flag} must be a positive integer, got ${
          JSON.stringify(value)
        }`,
      );
    }
    return n;
  };
}

/** The demo's command line (options only). */
export function demoCommand(): Command {
  return new Command("demo")
    .description(
      "Linear probing vs Rein vs CUFIT on the same noisy labels, with a report",
    )
    .option("--out <dir>", "output folder", "runs/demo")
    .option("--noise <rate>", "symmetric label-noise rate", parseRate, 0.4)
    .option(
      "--data <name|path>",
      "dataset config (conf/<name>.json); default: the built-in synthetic demo",
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
    .addOption(
      new Option("--max-batches <n>", "batches per epoch (smoke runs)")
        .argParser(parseCount("--max-batches")).hideHelp(),
    )
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} })
    .allowExcessArguments(false);
}

/** Parses the demo's arguments; throws `CommanderError` or `TypeError` on bad input. */
export function parseDemoArgs(args: string[]): DemoOptions {
  const program = demoCommand();
  program.parse(args, { from: "user" });
  const o = program.opts();
  return {
    out: o.out,
    noise: o.noise,
    ...(o.data === undefined ? {} : { data: o.data }),
    ...(o.weights === undefined ? {} : { weights: o.weights }),
    ...(o.epochs === undefined ? {} : { epochs: o.epochs }),
    ...(o.maxBatches === undefined ? {} : { maxBatches: o.maxBatches }),
    backend: o.backend,
    yes: o.yes === true,
    png: o.png !== false,
  };
}

const PERMISSION_HINT =
  "`deno task demo` may read only this project and write only under runs/; " +
  "for other paths run it directly, e.g. `deno run --allow-read=.,DIR " +
  "--allow-write=DIR --allow-env --allow-ffi --allow-sys tasks/demo.ts --out DIR`";

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
      console.error(e.message.replace(/^error: /, ""));
      return 2;
    }
    if (e instanceof TypeError) {
      console.error(e.message);
      return 2;
    }
    throw e;
  }
  // Refuse an output folder outside the permissions before any training.
  const out = options.out ?? "runs/demo";
  for (const name of ["read", "write"] as const) {
    if (Deno.permissions.querySync({ name, path: out }).state !== "granted") {
      console.error(
        `Cannot ${name} --out "${out}": this task has no ${name} permission there.\n${PERMISSION_HINT}`,
      );
      return 2;
    }
  }
  const { ConfirmationNeededError, runDemo } = await import(
    "../lib/demo/demo.ts"
  );
  try {
    const result = await runDemo({ ...options, argv: args });
    console.log("");
    console.log(result.table);
    console.log("");
    console.log(`report: ${result.files.find((f) => f.endsWith(".html"))}`);
    console.log(`files:  ${result.files.join(", ")}`);
    return 0;
  } catch (e) {
    if (e instanceof ConfirmationNeededError) {
      console.error(e.message);
      return 3;
    }
    if (e instanceof Deno.errors.NotCapable) {
      // `deno task demo` may read the project and write under runs/ only.
      console.error(`${e.message}\n${PERMISSION_HINT}`);
      return 2;
    }
    throw e;
  }
}

function helpText(): string {
  return demoCommand().helpInformation() +
    "\nWithout --data it runs the built-in synthetic demo (minutes on a CPU, no download).\n" +
    "Real data: --data bloodmnist --weights data/weights/dinov2_vits14_pretrain.pth --yes\n";
}

if (import.meta.main) await runTask("demo", () => main(Deno.args));
