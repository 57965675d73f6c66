/**
 * `deno task bench --method linear|rein|cufit [--img 112] [--batch 16]
 * [--steps 5] [--threads N] [--backend auto] [--no-native] [--no-c-kernels]
 * [--profile] [--json]`: training throughput
 * of a ViT-S/14-sized model (random weights), Rein with 100 tokens a layer,
 * 7 classes. One warm-up step, then `--steps` timed calls of the trainers'
 * own `Learner.step`.
 *
 * Progress goes to stderr. With `--json` the last line on stdout is
 * `{"method","img","batch","backend","images_per_s","peak_rss_mb"}`.
 * `--profile` runs one more step under `tf.profile` and prints its time per
 * kernel and serial fraction (`lib/bench/step_profile.ts`) to stderr.
 * With `--json`, the line before the result is
 * `{"details": {"cpu_seconds", "profile"?}}`: CPU seconds of the timed steps
 * (all threads) and the profile.
 * Hidden options shrink the model for tests: `--dim`, `--depth`, `--heads`,
 * `--mlp`, `--classes`, `--warmup`, `--seed`; `--report` prints the whole
 * report (GPU memory peak, and per-kernel times with `--profile`) as the
 * last line instead (`gpu:check` reads it).
 *
 * @module
 */
import { Command, Option } from "commander";
import { type BackendName, BACKENDS } from "../lib/backend/backend.ts";
import {
  BENCH_METHODS,
  type BenchOptions,
  benchTrainStep,
} from "../lib/bench/train_bench.ts";
import type { Method } from "../lib/train/learner.ts";
import { parseCommand, runTask } from "./_cli.ts";

function intArg(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
      throw new TypeError(
        `Option ${flag} must be a non-negative integer, got ${
          JSON.stringify(value)
        }`,
      );
    }
    return n;
  };
}

const hidden = (flags: string, description: string) =>
  new Option(flags, description).argParser(intArg(flags.split(" ")[0]))
    .hideHelp();

/** Runs the task; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const program = new Command("bench")
    .description(
      "Images per second of the real training step on a ViT-S/14-sized model",
    )
    .addOption(
      new Option("--method <name>", "training method").choices(
        BENCH_METHODS as string[],
      ).makeOptionMandatory(),
    )
    .addOption(
      new Option("--img <px>", "square input side").argParser(intArg("--img"))
        .default(112),
    )
    .addOption(
      new Option("--batch <n>", "images per step").argParser(
        intArg("--batch"),
      ).default(16),
    )
    .addOption(
      new Option("--steps <n>", "timed steps after one warm-up step")
        .argParser(intArg("--steps")).default(5),
    )
    .addOption(
      new Option("--backend <name>", "compute backend").choices(BACKENDS)
        .default("auto"),
    )
    .option(
      "--no-native",
      "keep the backend's own matmul kernels (no OpenBLAS)",
    )
    .addOption(
      new Option("--threads <n>", "CPU threads of the native kernels")
        .argParser(intArg("--threads")),
    )
    .option(
      "--no-c-kernels",
      "keep the TypeScript GELU, LayerNorm and softmax backward (no C kernels)",
    )
    .option(
      "--profile",
      "profile one more step: time per kernel, serial fraction (stderr)",
    )
    .option("--json", "print the result as one JSON line last")
    .addOption(hidden("--dim <n>", "token width"))
    .addOption(hidden("--depth <n>", "blocks"))
    .addOption(hidden("--heads <n>", "attention heads"))
    .addOption(hidden("--mlp <n>", "MLP hidden width"))
    .addOption(hidden("--classes <n>", "classes"))
    .addOption(hidden("--warmup <n>", "untimed steps"))
    .addOption(hidden("--seed <n>", "seed"))
    .addOption(
      new Option("--report", "print the whole report as JSON").hideHelp(),
    );
  if (!parseCommand(program, args)) return 0;
  const opts = program.opts<
    BenchOptions & {
      method: Method;
      backend: BackendName;
      native: boolean;
      cKernels: boolean;
      json?: boolean;
      report?: boolean;
    }
  >();
  const { method, json, report: full, ...rest } = opts;
  const report = await benchTrainStep(method, {
    ...rest,
    log: (line) => console.error(line),
  });
  const r = report.result;
  if (report.profile) {
    const { profileTable } = await import("../lib/bench/step_profile.ts");
    const p = report.profile;
    console.error(
      `profile (${report.threads} OpenBLAS threads), serial fraction ${
        p.serialFraction.toFixed(3)
      }:\n${profileTable(p)}`,
    );
  }
  if (full) {
    console.log(JSON.stringify(report));
  } else if (json) {
    // bench:all reads it from the line before the result.
    console.log(JSON.stringify({
      details: { cpu_seconds: report.cpuSeconds, profile: report.profile },
    }));
    console.log(JSON.stringify(r));
  } else {
    console.log(
      `${r.method}: ${r.images_per_s} images/s (${r.batch} x ${r.img} px, ` +
        `${r.backend}), peak RSS ${r.peak_rss_mb} MB`,
    );
  }
  return 0;
}

if (import.meta.main) await runTask("bench", () => main(Deno.args));
