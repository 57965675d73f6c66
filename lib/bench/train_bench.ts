/**
 * Training throughput of one method: images per second through the real
 * training step ({@linkcode Learner.step}, the function the trainers call),
 * on a randomly initialized backbone (the cost does not depend on the
 * weights' values) and random images.
 *
 * @module
 */
import {
  backendLabel,
  type BackendName,
  BACKENDS,
} from "../backend/backend.ts";
import type { Method } from "../train/learner.ts";
import process from "node:process";
import { RssTracker } from "./peak_rss.ts";
import type { StepProfile } from "./step_profile.ts";

/** Methods accepted by {@linkcode benchTrainStep}. */
export const BENCH_METHODS: readonly Method[] = ["linear", "rein", "cufit"];

/** The line `deno task bench --json` prints last (keys in this order). */
export interface BenchResult {
  method: Method;
  img: number;
  batch: number;
  /**
   * The backend measured: tfjs's name (`wasm`, `cpu`, `tensorflow`), with
   * `+openblas` when native matmul kernels replaced the backend's own, and
   * `+c` when the C kernels ran too.
   */
  backend: string;
  images_per_s: number;
  peak_rss_mb: number;
}

/** {@linkcode BenchResult} plus what a report needs beyond the contract. */
export interface BenchReport {
  result: BenchResult;
  /** Seconds of each timed step. */
  stepSeconds: number[];
  /**
   * CPU seconds (user + system, all threads) of this process over the timed
   * steps: on a machine shared with other work, wall time depends on the
   * load while this stays near the work done.
   */
  cpuSeconds: number;
  /** Where `peak_rss_mb` came from. */
  rssSource: "getrusage" | "sampled";
  /** tfjs version. */
  tfjsVersion: string;
  /** Kernels replaced by OpenBLAS. */
  nativeKernels: string[];
  /**
   * Peak bytes of tfjs's GPU buffers, sampled after every step (webgpu
   * only; WebGPU itself reports no memory use), else null.
   */
  peakGpuBytes: number | null;
  /** With `profile`: time per kernel over one extra step, largest first. */
  kernels?: KernelTime[];
  /** OpenBLAS threads (0 when native kernels are off). */
  threads: number;
  /** One more step under `tf.profile`, with `profile: true`. */
  profile?: StepProfile;
  /** Model size used. */
  model: {
    dim: number;
    depth: number;
    heads: number;
    mlp: number;
    classes: number;
  };
}

/** One kernel's share of a profiled step (see `tf.profile`). */
export interface KernelTime {
  /** tfjs kernel name, e.g. `BatchMatMul`. */
  kernel: string;
  /** Calls in the step. */
  calls: number;
  /** Milliseconds in all (GPU timestamp queries on webgpu where the adapter has them). */
  ms: number;
}

/** Options of {@linkcode benchTrainStep}. */
export interface BenchOptions {
  /** Square input side in pixels. @default 112 */
  img?: number;
  /** Images per step. @default 16 */
  batch?: number;
  /** Timed steps, after `warmup` untimed ones. @default 5 */
  steps?: number;
  /** Untimed steps first (kernel set-up, heap growth). @default 1 */
  warmup?: number;
  /** Compute backend. @default "auto" */
  backend?: BackendName;
  /** Let OpenBLAS replace the wasm/cpu matmul kernels when installed. @default true */
  native?: boolean;
  /** CPU threads of the native kernels. @default every core */
  threads?: number;
  /** Use the C kernels when built (`deno task build:native`). @default true */
  cKernels?: boolean;
  /** Token width D (ViT-S: 384). @default 384 */
  dim?: number;
  /** Blocks. @default 12 */
  depth?: number;
  /** Attention heads. @default 6 */
  heads?: number;
  /** MLP hidden width. @default 4 * dim */
  mlp?: number;
  /** Classes of the heads (HAM10000: 7). @default 7 */
  classes?: number;
  /** Profile one more step after the timed ones (see `step_profile.ts`). @default false */
  profile?: boolean;
  /** Seed of the weights, images and labels. @default 0 */
  seed?: number;
  /** Progress lines. @default no output */
  log?: (line: string) => void;
}

function positiveInt(name: string, value: number, min = 1): number {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(
      `Benchmark option "${name}" must be an integer >= ${min}, got ${value}`,
    );
  }
  return value;
}

/**
 * Builds a ViT of the given size with the method's trainable modules,
 * runs `warmup` + `steps` training steps and measures the timed ones.
 */
export async function benchTrainStep(
  method: Method,
  options: BenchOptions = {},
): Promise<BenchReport> {
  if (!BENCH_METHODS.includes(method)) {
    throw new RangeError(
      `Benchmark method must be one of ${BENCH_METHODS.join(", ")}, got ${
        JSON.stringify(method)
      }`,
    );
  }
  const backendName = options.backend ?? "auto";
  if (!(BACKENDS as readonly string[]).includes(backendName)) {
    throw new RangeError(
      `Benchmark option "backend" must be one of ${BACKENDS.join(", ")}, got ${
        JSON.stringify(backendName)
      }`,
    );
  }
  const img = positiveInt("img", options.img ?? 112, 14);
  const batch = positiveInt("batch", options.batch ?? 16);
  const steps = positiveInt("steps", options.steps ?? 5);
  const warmup = positiveInt("warmup", options.warmup ?? 1, 0);
  const dim = positiveInt("dim", options.dim ?? 384);
  const depth = positiveInt("depth", options.depth ?? 12);
  const heads = positiveInt("heads", options.heads ?? 6);
  const mlp = positiveInt("mlp", options.mlp ?? 4 * dim);
  const classes = positiveInt("classes", options.classes ?? 7, 2);
  if (dim % heads !== 0) {
    throw new RangeError(
      `Benchmark option "heads" must divide "dim" (${dim}), got ${heads}`,
    );
  }
  const log = options.log ?? (() => {});
  const rss = new RssTracker();

  // Heavy modules load here, after argument checks.
  const { initBackend } = await import("../backend/backend.ts");
  const { tf } = await import("../backend/tf.ts");
  const { Dinov2 } = await import("../models/dinov2.ts");
  const { initBackbone, initTrainable } = await import("../models/init.ts");
  const { RandomState } = await import("../noise/random_state.ts");
  const { Learner } = await import("../train/learner.ts");
  const { PeakGpuMemory } = await import("../backend/webgpu/memory.ts");
  const { checkGpu } = await import("../backend/webgpu/device.ts");
  const gpuPeak = new PeakGpuMemory();

  const info = await initBackend(backendName, {
    native: options.native ?? true,
    threads: options.threads,
    cKernels: options.cKernels ?? true,
    log,
  });
  const variant = {
    patchSize: 14,
    embedDim: dim,
    depth,
    numHeads: heads,
    mlpHidden: mlp,
    numPosPatches: 37,
    imgSize: 37 * 14,
  };
  const rs = new RandomState(options.seed ?? 0);
  const rng = () => rs.rand();
  log(
    `model: D ${dim}, depth ${depth}, heads ${heads}, MLP ${mlp}, ${classes} classes; ` +
      `${method}, ${batch} x ${img} px`,
  );
  const backbone = new Dinov2(variant, initBackbone(variant, rng));
  const learner = new Learner(
    method,
    backbone,
    initTrainable(method, { ...variant, numClasses: classes }, rng),
  );
  const pixels = new Float32Array(batch * img * img * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rs.rand() * 4 - 2;
  const images = tf.tensor4d(pixels, [batch, img, img, 3]);
  const labels = Int32Array.from(
    { length: batch },
    () => Math.floor(rs.rand() * classes),
  );

  log(`model built: peak RSS ${mb(rss.peak().bytes)} MB so far`);
  const stepSeconds: number[] = [];
  let kernels: KernelTime[] | undefined;
  let profile: StepProfile | undefined;
  let cpuMicros = 0;
  try {
    for (let i = 0; i < warmup + steps; i++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await learner.step(images, labels);
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(c0);
      if (i >= warmup) cpuMicros += cpu.user + cpu.system;
      rss.sample();
      gpuPeak.sample();
      checkGpu({ batchSize: batch, batchFlag: "--batch" });
      if (i >= warmup) stepSeconds.push(seconds);
      log(
        `${i < warmup ? "warm-up" : `step ${i - warmup + 1}/${steps}`}: ${
          seconds.toFixed(3)
        } s`,
      );
    }
    if (options.profile) {
      const { profileStep } = await import("./step_profile.ts");
      profile = await profileStep(
        () => learner.step(images, labels),
        info.nativeKernels,
        info.cKernels !== undefined,
      );
      log(`profiled step: ${(profile.stepMs / 1000).toFixed(3)} s`);
      kernels = profile.kernels.filter((k) => k.ms > 0).map((k) => ({
        kernel: k.name,
        calls: k.calls,
        ms: round(k.ms, 3),
      }));
    }
  } finally {
    images.dispose();
    learner.dispose();
    backbone.dispose();
  }
  const total = stepSeconds.reduce((a, b) => a + b, 0);
  const peak = rss.peak();
  const native = info.nativeKernels.length > 0;
  return {
    result: {
      method,
      img,
      batch,
      backend: backendLabel(info),
      images_per_s: round((batch * steps) / total, 3),
      peak_rss_mb: round(peak.bytes / (1024 * 1024), 1),
    },
    stepSeconds,
    cpuSeconds: cpuMicros / 1e6,
    rssSource: peak.source,
    tfjsVersion: info.tfjsVersion,
    nativeKernels: info.nativeKernels,
    peakGpuBytes: gpuPeak.bytes,
    ...(kernels ? { kernels } : {}),
    threads: native ? options.threads ?? navigator.hardwareConcurrency ?? 1 : 0,
    profile,
    model: { dim, depth, heads, mlp, classes },
  };
}

function mb(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(0);
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The keys of the `--json` line, in order. */
export const BENCH_RESULT_KEYS = [
  "method",
  "img",
  "batch",
  "backend",
  "images_per_s",
  "peak_rss_mb",
] as const;

/**
 * The {@linkcode BenchResult} in the last non-empty line of a bench task's
 * stdout; throws naming the line and what was expected.
 */
export function parseBenchResult(stdout: string): BenchResult {
  const lines = stdout.split("\n").map((l) => l.trim()).filter((l) => l);
  const last = lines.at(-1);
  if (last === undefined) {
    throw new Error("Bench output is empty: expected a JSON line last");
  }
  let value: unknown;
  try {
    value = JSON.parse(last);
  } catch {
    throw new Error(
      `Bench output's last line is not JSON: ${JSON.stringify(last)}`,
    );
  }
  const obj = value as Record<string, unknown>;
  const keys = typeof value === "object" && value !== null
    ? Object.keys(obj)
    : [];
  if (keys.join(",") !== BENCH_RESULT_KEYS.join(",")) {
    throw new Error(
      `Bench output's last line has keys [${keys}], expected [${BENCH_RESULT_KEYS}]`,
    );
  }
  const numbers = ["img", "batch", "images_per_s", "peak_rss_mb"] as const;
  for (const k of numbers) {
    if (typeof obj[k] !== "number" || !Number.isFinite(obj[k])) {
      throw new Error(
        `Bench output's "${k}" must be a finite number, got ${
          JSON.stringify(obj[k])
        }`,
      );
    }
  }
  if (!BENCH_METHODS.includes(obj.method as Method)) {
    throw new Error(
      `Bench output's "method" must be one of ${
        BENCH_METHODS.join(", ")
      }, got ${JSON.stringify(obj.method)}`,
    );
  }
  if (typeof obj.backend !== "string" || obj.backend === "") {
    throw new Error(
      `Bench output's "backend" must be a non-empty string, got ${
        JSON.stringify(obj.backend)
      }`,
    );
  }
  return obj as unknown as BenchResult;
}
