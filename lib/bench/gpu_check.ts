/**
 * The one-shot GPU check (`deno task gpu:check`): on the day a GPU machine
 * is at hand, one command says whether the webgpu backend is right there and
 * how fast it is, within a time budget (8 minutes by default).
 *
 * 1. The adapter: vendor, architecture, device, whether it is a real GPU.
 * 2. Parity: `deno task parity --backend webgpu` on the reference fixtures.
 * 3. Bench: linear, Rein and CUFIT at 112 and 224 px with batch 16, 32 and
 *    64, each on webgpu next to wasm + OpenBLAS (`deno task bench`), with
 *    the peak of tfjs's GPU buffers (WebGPU reports no memory use itself),
 *    and per-kernel times of one CUFIT step (where the time goes). The
 *    webgpu grid runs first; wasm times `steps - 2` steps (at least one).
 *
 * Every part runs in its own subprocess, so that a lost device or an
 * out-of-memory batch spoils one cell, not the check. Configurations run
 * from cheap to dear; what the budget leaves no time for is reported as
 * skipped, never silently dropped.
 *
 * @module
 */
import { fileURLToPath as fromFileUrl } from "node:url";
import {
  adapterLine,
  type AdapterReport,
  probeAdapter,
} from "../backend/webgpu/adapter.ts";
import type { Method } from "../train/learner.ts";
import type { BenchReport, KernelTime } from "./train_bench.ts";

/** Options of {@linkcode gpuCheck}. */
export interface GpuCheckOptions {
  /** Reference fixtures for the parity part. @default "tests/fixtures/reference" */
  fixtures?: string;
  /** @default ["linear", "rein", "cufit"] */
  methods?: Method[];
  /** Square input sides. @default [112, 224] */
  sizes?: number[];
  /** @default [16, 32, 64] */
  batches?: number[];
  /** Timed steps per webgpu bench run, after one warm-up step (wasm: 2 fewer, at least 1). @default 3 */
  steps?: number;
  /** Seconds for the whole check. @default 450 */
  budgetSeconds?: number;
  /** Model size for tests (ViT-S/14 by default): token width, blocks, heads. */
  model?: { dim: number; depth: number; heads: number };
  /** Progress lines. @default no output */
  log?: (line: string) => void;
}

/** One backend's figures for one configuration, or why there are none. */
export type BenchCell =
  | {
    backend: string;
    images_per_s: number;
    peak_rss_mb: number;
    /** Peak of tfjs's GPU buffers (webgpu), else null. */
    peak_gpu_mb: number | null;
  }
  | { error: string }
  | { skipped: string };

/** One configuration: webgpu next to wasm + OpenBLAS. */
export interface BenchRow {
  method: Method;
  img: number;
  batch: number;
  webgpu: BenchCell;
  wasm: BenchCell;
  /** webgpu images/s over wasm's, when both ran. */
  speedup: number | null;
}

/** What {@linkcode gpuCheck} prints. */
export interface GpuCheckReport {
  adapter: AdapterReport;
  /** Whether the adapter is a real GPU (else the figures are a software renderer's). */
  realGpu: boolean;
  deno: string;
  parity:
    | { passed: boolean; summary: string; failures: string[]; seconds: number }
    | { skipped: string };
  bench: BenchRow[];
  /** Per-kernel times of one webgpu training step, largest first. */
  kernels:
    | { method: Method; img: number; batch: number; top: KernelTime[] }
    | null;
  budgetSeconds: number;
  seconds: number;
}

const ROOT = fromFileUrl(new URL("../..", import.meta.url));
const TASK = (name: string) =>
  fromFileUrl(new URL(`../../tasks/${name}`, import.meta.url));

/** The permissions the child tasks run with (as their `deno.json` entries). */
const BENCH_ARGS = [
  "run",
  "--allow-read=.",
  "--allow-ffi",
  "--allow-env=OPENBLAS_THREAD_TIMEOUT",
  TASK("bench.ts"),
];
const PARITY_ARGS = [
  "run",
  "--allow-read=.",
  "--allow-env",
  "--allow-ffi",
  "--allow-sys=cpus,networkInterfaces,hostname",
  TASK("parity.ts"),
];

interface ChildResult {
  ok: boolean;
  stdout: string;
  /** The last lines of stderr, or why the child was stopped. */
  why: string;
}

async function runChild(
  args: string[],
  timeoutS: number,
): Promise<ChildResult> {
  try {
    const out = await new Deno.Command("deno", {
      args,
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(Math.max(1, timeoutS) * 1000),
    }).output();
    const stderr = new TextDecoder().decode(out.stderr).trim().split("\n");
    return {
      ok: out.success,
      stdout: new TextDecoder().decode(out.stdout),
      why: out.signal
        ? `stopped after ${Math.round(timeoutS)} s (time budget)`
        : stderr.slice(-2).join(" | "),
    };
  } catch (e) {
    return { ok: false, stdout: "", why: (e as Error).message };
  }
}

const MB = 1024 * 1024;

function cellText(cell: BenchCell): string {
  if ("images_per_s" in cell) return `${cell.images_per_s} images/s`;
  if ("error" in cell) return `error: ${cell.error}`;
  return `skipped (${cell.skipped})`;
}
const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;

/** Runs the check; `log` gets the adapter line first, then progress. */
export async function gpuCheck(
  options: GpuCheckOptions = {},
): Promise<GpuCheckReport> {
  const started = performance.now();
  const budget = options.budgetSeconds ?? 450;
  const left = () => budget - (performance.now() - started) / 1000;
  const log = options.log ?? (() => {});
  const methods = options.methods ?? ["linear", "rein", "cufit"];
  const sizes = [...(options.sizes ?? [112, 224])].sort((a, b) => a - b);
  const batches = [...(options.batches ?? [16, 32, 64])].sort((a, b) => a - b);
  const steps = options.steps ?? 3;
  const adapter = await probeAdapter();
  log(adapterLine(adapter));
  const realGpu = adapter.found && !adapter.cpu;
  const report: GpuCheckReport = {
    adapter,
    realGpu,
    deno: Deno.version.deno,
    parity: { skipped: "no WebGPU adapter" },
    bench: [],
    kernels: null,
    budgetSeconds: budget,
    seconds: 0,
  };
  if (!adapter.found) {
    report.seconds = round((performance.now() - started) / 1000, 1);
    return report;
  }

  // 2. Parity on webgpu.
  const fixtures = options.fixtures ?? "tests/fixtures/reference";
  log(`parity: --backend webgpu --fixtures ${fixtures}`);
  const t0 = performance.now();
  const parity = await runChild(
    [...PARITY_ARGS, "--backend", "webgpu", "--fixtures", fixtures, "--quiet"],
    left(),
  );
  const lines = parity.stdout.trim().split("\n").filter((l) => l);
  const summary = lines.find((l) => l.startsWith("parity: ")) ?? parity.why;
  report.parity = {
    passed: parity.ok,
    summary,
    failures: lines.filter((l) => l.startsWith("FAIL")),
    seconds: round((performance.now() - t0) / 1000, 1),
  };
  log(summary);

  // 3. The grid, cheap first; profile the CUFIT step at the largest size.
  const middle = batches[Math.floor((batches.length - 1) / 2)];
  const profiled = { method: "cufit", img: sizes.at(-1), batch: middle };
  const model = options.model
    ? [
      "--dim",
      String(options.model.dim),
      "--depth",
      String(options.model.depth),
      "--heads",
      String(options.model.heads),
    ]
    : [];
  for (const img of sizes) {
    for (const batch of batches) {
      for (const method of methods) {
        report.bench.push({
          method,
          img,
          batch,
          webgpu: { skipped: "time budget" },
          wasm: { skipped: "time budget" },
          speedup: null,
        });
      }
    }
  }
  // The webgpu grid first (its figures are the point), then wasm's, which
  // times fewer steps: its cost per step is steady and its steps are slow.
  for (const backend of ["webgpu", "wasm"] as const) {
    for (const row of report.bench) {
      if (left() < 5) break;
      const { method, img, batch } = row;
      const profile = backend === "webgpu" && method === profiled.method &&
        img === profiled.img && batch === profiled.batch;
      const timed = backend === "webgpu" ? steps : Math.max(1, steps - 2);
      const child = await runChild([
        ...BENCH_ARGS,
        "--method",
        method,
        "--img",
        String(img),
        "--batch",
        String(batch),
        "--steps",
        String(timed),
        "--backend",
        backend,
        ...model,
        "--report",
        ...(profile ? ["--profile"] : []),
      ], left());
      let cell: BenchCell;
      if (!child.ok) {
        cell = { error: child.why };
      } else {
        const r = JSON.parse(
          child.stdout.trim().split("\n").at(-1)!,
        ) as BenchReport;
        cell = {
          backend: r.result.backend,
          images_per_s: r.result.images_per_s,
          peak_rss_mb: r.result.peak_rss_mb,
          peak_gpu_mb: r.peakGpuBytes === null
            ? null
            : round(r.peakGpuBytes / MB, 1),
        };
        if (r.kernels) {
          report.kernels = { method, img, batch, top: r.kernels.slice(0, 12) };
        }
      }
      row[backend] = cell;
      log(
        `bench ${method} ${img} px x ${batch} on ${backend}: ${cellText(cell)}`,
      );
    }
  }
  for (const row of report.bench) {
    if ("images_per_s" in row.webgpu && "images_per_s" in row.wasm) {
      row.speedup = round(row.webgpu.images_per_s / row.wasm.images_per_s, 2);
    }
  }
  report.seconds = round((performance.now() - started) / 1000, 1);
  return report;
}

/** Whether a report passes: an adapter, parity passed, and no bench errors on webgpu. */
export function gpuCheckPassed(report: GpuCheckReport): boolean {
  return report.adapter.found &&
    "passed" in report.parity && report.parity.passed &&
    report.bench.every((r) => !("error" in r.webgpu));
}
