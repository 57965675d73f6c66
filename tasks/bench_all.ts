/**
 * `deno task bench:all [--methods linear,rein,cufit] [--configs best,wasm]
 * [--img 112,224] [--threads 1,N] [--torch PYTHON] [--profile] [--steps 5]
 * [--repeat 3] [--wasm-steps 2] [--wasm-repeat 1] [--out BENCHMARKS.md]`:
 * runs `tasks/bench.ts --json` as a subprocess for every method, image size,
 * thread count and configuration, and with `--torch` the PyTorch version of
 * the same steps (`lib/bench/torch_bench.py`) beside them (runs interleaved,
 * so that load on a shared machine spreads over all of them), then rewrites
 * the table file atomically. `--profile` profiles one more cufit step at the
 * largest size for each thread count (`bench --profile`).
 *
 * Configurations: `best` (`--backend auto`), `noc` (the same without the
 * C kernels: `--no-c-kernels`), `avx512` (the same with
 * `OPENBLAS_CORETYPE=SkylakeX`: only on CPUs with AVX-512), `wasm`
 * (`--backend wasm --no-native`, tfjs's own kernels), `cpu` (`--backend cpu`,
 * with OpenBLAS).
 *
 * @module
 */
import { Command, Option } from "commander";
import { fileURLToPath as fromFileUrl } from "node:url";
import { writeFileAtomic } from "../lib/io/atomic.ts";
import {
  type BenchRow,
  type ProfileEntry,
  renderBenchmarks,
} from "../lib/bench/benchmarks_md.ts";
import { describeMachine } from "../lib/bench/machine.ts";
import type { StepProfile } from "../lib/bench/step_profile.ts";
import {
  BENCH_METHODS,
  type BenchResult,
  parseBenchResult,
} from "../lib/bench/train_bench.ts";
import { parseCommand, runTask } from "./_cli.ts";

/** The PyTorch version of the training steps. */
const TORCH_BENCH = fromFileUrl(
  new URL("../lib/bench/torch_bench.py", import.meta.url),
);

/** The permissions `deno task bench` runs with (from the repository root). */
export const BENCH_PERMISSIONS = [
  "--allow-read=.",
  "--allow-ffi",
  "--allow-env=OPENBLAS_THREAD_TIMEOUT",
];

interface BenchConfig {
  label: string;
  args: string[];
  env?: Record<string, string>;
}

const CONFIGS: Record<string, BenchConfig> = {
  best: { label: "best", args: ["--backend", "auto"] },
  noc: {
    label: "best, no C kernels",
    args: ["--backend", "auto", "--no-c-kernels"],
  },
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

function counts(flag: string) {
  const one = count(flag);
  return (value: string): number[] => [
    ...new Set(value.split(",").map((v) => one(v))),
  ];
}

/** `arg` as a shell word (quoted when it holds anything but safe characters). */
function quote(arg: string): string {
  return /^[\w.,:=\/+-]+$/.test(arg)
    ? arg
    : `'${arg.replaceAll("'", "'\\''")}'`;
}

/** What one bench subprocess printed: its contract line and details. */
export interface BenchOutput {
  result: BenchResult;
  /** CPU seconds of the timed steps (all threads), when reported. */
  cpuSeconds?: number;
  /** The profile, with `--profile`. */
  profile?: StepProfile;
}

/**
 * Runs one bench subprocess (`deno task bench`, or with `python` the
 * PyTorch script) and returns its contract line.
 */
export async function runBenchProcess(
  args: string[],
  options: {
    timeoutS?: number;
    env?: Record<string, string>;
    python?: string;
  } = {},
): Promise<BenchOutput> {
  const command = options.python ?? "deno";
  const full = options.python === undefined
    ? ["run", ...BENCH_PERMISSIONS, BENCH, ...args, "--json"]
    : [TORCH_BENCH, ...args];
  const child = new Deno.Command(command, {
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
      `Bench run "${command} ${full.join(" ")}" failed (${
        out.signal ? `signal ${out.signal}` : `exit ${out.code}`
      }):\n  ${err}`,
    );
  }
  const lines = stdout.trim().split("\n");
  const before = lines.at(-2)?.trim() ?? "";
  const details = before.startsWith('{"details":')
    ? (JSON.parse(before) as {
      details: { cpu_seconds?: number; profile?: StepProfile };
    }).details
    : {};
  return {
    result: parseBenchResult(stdout),
    cpuSeconds: details.cpu_seconds,
    profile: details.profile,
  };
}

/**
 * Throws a one-line error unless `python` runs and imports torch; returns
 * `torch VERSION`.
 */
export async function checkTorch(python: string): Promise<string> {
  const hint =
    `install PyTorch (Debian: apt-get install python3-torch libopenblas0-pthread) or name an interpreter that has it, e.g. --torch /usr/bin/python3`;
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(python, {
      args: ["-c", "import torch; print(torch.__version__)"],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (err) {
    throw new Error(
      `--torch ${python}: cannot run it (${(err as Error).message}); ${hint}`,
    );
  }
  if (!out.success) {
    throw new Error(`--torch ${python}: it cannot import torch; ${hint}`);
  }
  return `torch ${new TextDecoder().decode(out.stdout).trim()}`;
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
      new Option(
        "--configs <list>",
        "configurations: best, noc (no C kernels), avx512, wasm, cpu",
      )
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
      new Option("--img <list>", "square input sides, comma-separated")
        .argParser(counts("--img")).default([112, 224]),
    )
    .addOption(
      new Option(
        "--threads <list>",
        "CPU thread counts, comma-separated (default: 1 and every core)",
      ).argParser(counts("--threads")),
    )
    .option(
      "--torch <python>",
      "also run the PyTorch version of the steps with this interpreter",
    )
    .option(
      "--profile",
      "profile one more cufit step at the largest size, per thread count",
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
    img: number[];
    threads?: number[];
    torch?: string;
    profile?: boolean;
    batch: number;
    out: string;
    benchArgs?: string;
  }>();
  const extra = opts.benchArgs?.split(" ").filter((a) => a) ?? [];
  const cores = navigator.hardwareConcurrency ?? 1;
  const threads = opts.threads ?? [...new Set([1, cores])];
  const torchVersion = opts.torch === undefined
    ? undefined
    : await checkTorch(opts.torch);

  // One plan entry per configuration and thread count; tfjs's own wasm
  // kernels use one thread whatever the count, so that config runs once.
  const plan: (BenchRow & { name: string; repeat: number })[] = [];
  for (const t of threads) {
    for (const name of opts.configs) {
      if (name === "wasm" && t !== Math.min(...threads)) continue;
      plan.push({
        name,
        config: CONFIGS[name].label,
        threads: name === "wasm" ? 1 : t,
        steps: name === "wasm" ? opts.wasmSteps : opts.steps,
        repeat: name === "wasm" ? opts.wasmRepeat : opts.repeat,
        runs: [],
      });
    }
    if (opts.torch !== undefined) {
      plan.push({
        name: "torch",
        config: "PyTorch",
        threads: t,
        torch: true,
        steps: opts.steps,
        repeat: opts.repeat,
        runs: [],
      });
    }
  }
  const profiles: ProfileEntry[] = [];
  const biggest = Math.max(...opts.img);
  const rounds = Math.max(...plan.map((p) => p.repeat));
  for (let round = 0; round < rounds; round++) {
    for (const method of opts.methods) {
      for (const img of opts.img) {
        for (const p of plan) {
          if (round >= p.repeat) continue;
          const profile = opts.profile === true && round === 0 &&
            p.name === "best" && method === "cufit" && img === biggest;
          const args = [
            "--method",
            method,
            "--img",
            String(img),
            "--batch",
            String(opts.batch),
            "--steps",
            String(p.steps),
            "--threads",
            String(p.threads),
            ...(p.torch ? [] : CONFIGS[p.name].args),
            ...(profile ? ["--profile"] : []),
            ...extra,
          ];
          console.error(
            `run ${
              round + 1
            }/${p.repeat}: ${method}, ${img} px, ${p.config}, ${p.threads} thread(s)`,
          );
          const { result: r, profile: prof, cpuSeconds } =
            await runBenchProcess(args, {
              env: p.torch ? undefined : CONFIGS[p.name].env,
              python: p.torch ? opts.torch : undefined,
            });
          console.error(
            `  ${r.images_per_s} images/s, peak RSS ${r.peak_rss_mb} MB (${r.backend})`,
          );
          p.runs.push(
            cpuSeconds === undefined ? r : {
              ...r,
              cpu_s_per_image: cpuSeconds / (opts.batch * p.steps),
            },
          );
          if (prof !== undefined) {
            profiles.push({
              method,
              img,
              batch: opts.batch,
              threads: p.threads,
              profile: prof,
            });
          }
        }
      }
    }
  }
  const { tf } = await import("../lib/backend/tf.ts");
  const text = renderBenchmarks(plan, {
    ...describeMachine(tf.version.tfjs),
    date: new Date().toISOString().slice(0, 10),
    command: ["deno task bench:all", ...args.map(quote)].join(" "),
    torch: torchVersion === undefined
      ? undefined
      : `${torchVersion} (${opts.torch}), threads as in the table (OpenBLAS and OpenMP)`,
  }, { profiles: profiles.sort((a, b) => a.threads - b.threads) });
  await writeFileAtomic(opts.out, await formatMarkdown(text));
  console.error(`wrote ${opts.out}`);
  return 0;
}

if (import.meta.main) await runTask("bench:all", () => main(Deno.args));
