/**
 * `deno task gpu:check [--fixtures DIR] [--budget S]`: the one-shot check
 * of the webgpu backend on a GPU machine: the adapter, webgpu parity, and
 * bench figures on webgpu next to wasm + OpenBLAS, as one JSON document on
 * stdout (progress on stderr, the adapter first). At most 8 minutes by
 * default. Hidden options shrink it for tests: `--methods`, `--sizes`,
 * `--batches`, `--steps`, `--dim`, `--depth`, `--heads`.
 *
 * @module
 */
import { Command, Option } from "commander";
import { gpuCheck, gpuCheckPassed } from "../lib/bench/gpu_check.ts";
import type { Method } from "../lib/train/learner.ts";
import { parseCommand, runTask } from "./_cli.ts";

function ints(flag: string) {
  return (value: string): number[] => {
    const xs = value.split(",").map((s) => s.trim());
    if (xs.some((s) => !/^[1-9]\d*$/.test(s))) {
      throw new TypeError(
        `Option ${flag} must be positive integers separated by commas, got ${
          JSON.stringify(value)
        }`,
      );
    }
    return xs.map(Number);
  };
}

const one = (flag: string) => (v: string) => {
  const [n] = ints(flag)(v);
  if (v.includes(",")) {
    throw new TypeError(`Option ${flag} takes one integer, got "${v}"`);
  }
  return n;
};

/** Runs the task; returns the exit code. */
export async function main(
  args: string[],
  print = console.log,
): Promise<number> {
  const program = new Command("gpu:check")
    .description(
      "Adapter, webgpu parity and webgpu vs wasm+OpenBLAS bench figures, as JSON",
    )
    .option(
      "--fixtures <dir>",
      "reference fixtures for parity",
      "tests/fixtures/reference",
    )
    .addOption(
      new Option("--budget <s>", "seconds for the whole check")
        .argParser(one("--budget")).default(450),
    )
    .addOption(
      new Option("--methods <list>", "methods").hideHelp().argParser((v) => {
        const xs = v.split(",");
        for (const m of xs) {
          if (!["linear", "rein", "cufit"].includes(m)) {
            throw new TypeError(
              `Option --methods takes linear, rein, cufit; got "${m}"`,
            );
          }
        }
        return xs as Method[];
      }),
    )
    .addOption(
      new Option("--sizes <list>", "px").hideHelp().argParser(ints("--sizes")),
    )
    .addOption(
      new Option("--batches <list>", "batch sizes").hideHelp().argParser(
        ints("--batches"),
      ),
    )
    .addOption(
      new Option("--steps <n>", "timed steps").hideHelp().argParser(
        one("--steps"),
      ),
    )
    .addOption(
      new Option("--dim <n>", "width").hideHelp().argParser(one("--dim")),
    )
    .addOption(
      new Option("--depth <n>", "blocks").hideHelp().argParser(one("--depth")),
    )
    .addOption(
      new Option("--heads <n>", "heads").hideHelp().argParser(one("--heads")),
    );
  if (!parseCommand(program, args, print)) return 0;
  const o = program.opts<{
    fixtures: string;
    budget: number;
    methods?: Method[];
    sizes?: number[];
    batches?: number[];
    steps?: number;
    dim?: number;
    depth?: number;
    heads?: number;
  }>();
  const model = o.dim || o.depth || o.heads
    ? { dim: o.dim ?? 384, depth: o.depth ?? 12, heads: o.heads ?? 6 }
    : undefined;
  const report = await gpuCheck({
    fixtures: o.fixtures,
    budgetSeconds: o.budget,
    methods: o.methods,
    sizes: o.sizes,
    batches: o.batches,
    steps: o.steps,
    model,
    log: (line) => console.error(line),
  });
  print(JSON.stringify(report, null, 2));
  if (!report.adapter.found) {
    console.error(`gpu:check: ${report.adapter.reason}`);
  }
  return gpuCheckPassed(report) ? 0 : 1;
}

if (import.meta.main) await runTask("gpu:check", () => main(Deno.args));
