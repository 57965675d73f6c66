/**
 * `deno task bench:all [--methods linear,rein,cufit] [--configs best,wasm]
 * [--steps 5] [--repeat 3] [--wasm-steps 2] [--wasm-repeat 1] [--out BENCHMARKS.md]`:
 * runs `tasks/bench.ts --json` as a subprocess for every method and
 * configuration (runs interleaved, so that load on a shared machine spreads
 * over all of them), then rewrites the table file atomically.
 *
 * Configurations: `best` (`--backend auto`), `avx512` (the same with
 * `OPENBLAS_CORETYPE=SkylakeX`: only on CPUs with AVX-512), `wasm`
 * (`--backend wasm --no-native`, tfjs's own kernels), `cpu` (`--backend cpu`,
 * with OpenBLAS).
 *
 * @module
 */
import { Command, Option } from "commander";
import { fileURLToPath as fromFileUrl } from "node:url";
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { type BenchRow, renderBenchmarks } from "../lib/bench/benchmarks_md.ts";
import { describeMachine } from "../lib/bench/machine.ts";
import {
  BENCH_METHODS,
  type BenchResult,
  parseBenchResult,
} from "../lib/bench/train_bench.ts";
import { parseCommand, runTask } from "./_cli.ts";

/** The permissions `deno task bench` runs with (from the repository root). */
export const BENCH_PERMISSIONS = ["--allow-read=.", "--allow-ffi"];

interface BenchConfig {
  label: string;
  args: string[];
  env?: Record<string, string>;
}

const CONFIGS: Record<string, BenchConfig> = {
  best: { label: "best", args: ["--backend", "auto"] },
  // OpenBLAS 0.3.21 does not know Zen 4/5 and falls back to its AVX2
  // (Haswell) kernels; forcing the AVX-512 ones needs a CPU that has them.
  avx512: {
    label: "best, OPENBLAS_CORETYPE=SkylakeX",
    args: ["--backend", "auto"],
    env: { OPENBLAS_CORETYPE: "SkylakeX" },
  },
  wasm: { label: "wasm only", args: ["--backend", "wasm", "--no-native"] },
  cpu: { label: "cpu + OpenBLAS", args: ["--backend", "cpu"] },
};

const ROOT = fromFileUrl(new URL("..", import.meta.url));
const BENCH = fromFileUrl(new URL("./bench.ts", import.meta.url));

function list(flag: string, allowed: readonly string[]) {
  return (value: string): string[] => {
    const items = value.split(",").map((s) => s.trim()).filter((s) => s);
    const bad = items.filter((s) => !allowed.includes(s));
    if (items.length === 0 || bad.length > 0) {
      throw new TypeError(
        `Option ${flag} must be a comma-separated list of ${
          allowed.join(", ")
        }, got ${JSON.stringify(value)}`,
      );
    }
    return items;
  };
}

function count(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < 1) {
      throw new TypeError(
        `Option ${flag} must be an integer >= 1, got ${JSON.stringify(value)}`,
      );
    }
    return n;
  };
}

/** `arg` as a shell word (quoted when it holds anything but safe characters). */
function quote(arg: string): string {
  return /^[\w.,:=\/+-]+$/.test(arg)
    ? arg
    : `'${arg.replaceAll("'", "'\\''")}'`;
}

/** Runs one bench subprocess and returns its contract line. */
export async function runBenchProcess(
  args: string[],
  options: { timeoutS?: number; env?: Record<string, string> } = {},
): Promise<BenchResult> {
  const full = ["run", ...BENCH_PERMISSIONS, BENCH, ...args, "--json"];
  const child = new Deno.Command("deno", {
    args: full,
    cwd: ROOT,
    env: options.env,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout((options.timeoutS ?? 1800) * 1000),
  });
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n")
      .slice(-5).join("\n  ");
    throw new Error(
      `Bench run "deno ${full.join(" ")}" failed (${
        out.signal ? `signal ${out.signal}` : `exit ${out.code}`
      }):\n  ${err}`,
    );
  }
  return parseBenchResult(stdout);
}

/**
 * `text` as `deno fmt` writes Markdown (aligned tables, wrapped prose), so
 * that the generated file passes the `deno fmt --check` gate.
 */
export async function formatMarkdown(text: string): Promise<string> {
  const child = new Deno.Command("deno", {
    args: ["fmt", "--ext", "md", "-"],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  if (!out.success) {
    throw new Error(
      `"deno fmt --ext md -" failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/** Runs the task; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const program = new Command("bench:all")
    .description("Run the bench task for every method and configuration")
    .addOption(
      new Option("--methods <list>", "methods").argParser(
        list("--methods", BENCH_METHODS),
      ).default([...BENCH_METHODS]),
    )
    .addOption(
      new Option("--configs <list>", "configurations: best, avx512, wasm, cpu")
        .argParser(list("--configs", Object.keys(CONFIGS)))
        .default(["best", "wasm"]),
    )
    .addOption(
      new Option("--steps <n>", "timed steps a run").argParser(
        count("--steps"),
      ).default(5),
    )
    .addOption(
      new Option("--repeat <n>", "runs per method and configuration")
        .argParser(count("--repeat")).default(3),
    )
    .addOption(
      new Option(
        "--wasm-steps <n>",
        "timed steps a run of the slow wasm config",
      )
        .argParser(count("--wasm-steps")).default(2),
    )
    .addOption(
      new Option("--wasm-repeat <n>", "runs of the slow wasm config")
        .argParser(count("--wasm-repeat")).default(1),
    )
    .addOption(
      new Option("--img <px>", "square input side").argParser(count("--img"))
        .default(112),
    )
    .addOption(
      new Option("--batch <n>", "images per step").argParser(count("--batch"))
        .default(16),
    )
    .option("--out <file>", "table file to rewrite", "BENCHMARKS.md")
    .addOption(
      new Option(
        "--bench-args <args>",
        "extra space-separated bench options (tests: a tiny model)",
      ).hideHelp(),
    );
  if (!parseCommand(program, args)) return 0;
  const opts = program.opts<{
    methods: string[];
    configs: string[];
    steps: number;
    repeat: number;
    wasmSteps: number;
    wasmRepeat: number;
    img: number;
    batch: number;
    out: string;
    benchArgs?: string;
  }>();
  const extra = opts.benchArgs?.split(" ").filter((a) => a) ?? [];

  const plan = opts.configs.map((name) => ({
    name,
    steps: name === "wasm" ? opts.wasmSteps : opts.steps,
    repeat: name === "wasm" ? opts.wasmRepeat : opts.repeat,
    runs: [] as BenchResult[],
  }));
  const rounds = Math.max(...plan.map((p) => p.repeat));
  for (let round = 0; round < rounds; round++) {
    for (const method of opts.methods) {
      for (const p of plan) {
        if (round >= p.repeat) continue;
        const args = [
          "--method",
          method,
          "--img",
          String(opts.img),
          "--batch",
          String(opts.batch),
          "--steps",
          String(p.steps),
          ...CONFIGS[p.name].args,
          ...extra,
        ];
        console.error(
          `run ${round + 1}/${p.repeat}: ${method}, ${CONFIGS[p.name].label}`,
        );
        const r = await runBenchProcess(args, { env: CONFIGS[p.name].env });
        console.error(
          `  ${r.images_per_s} images/s, peak RSS ${r.peak_rss_mb} MB (${r.backend})`,
        );
        p.runs.push(r);
      }
    }
  }
  const { tf } = await import("../lib/backend/tf.ts");
  const rows: BenchRow[] = plan.map((p) => ({
    config: CONFIGS[p.name].label,
    steps: p.steps,
    runs: p.runs,
  }));
  const text = renderBenchmarks(rows, {
    ...describeMachine(tf.version.tfjs),
    date: new Date().toISOString().slice(0, 10),
    command: ["deno task bench:all", ...args.map(quote)].join(" "),
  });
  await writeFileAtomic(opts.out, await formatMarkdown(text));
  console.error(`wrote ${opts.out}`);
  return 0;
}

if (import.meta.main) await runTask("bench:all", () => main(Deno.args));
