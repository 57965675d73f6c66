/**
 * Where a training step's time goes: one step run under `tf.profile`, its
 * kernels' wall times summed per kernel name and grouped into
 *
 * - `blas`: kernels that OpenBLAS runs on every thread (matmuls and the
 *   patch convolution, when native kernels are active);
 * - `threaded`: kernels that the project's C library runs on every thread
 *   (GELU, the softmax backward, LayerNorm and its backward, when built,
 *   and the large calls of softmax, slice and the element-wise products and
 *   sums, listed apart as `Softmax (C)` and so on);
 * - `copy`: kernels that only move data (transpose, slice, concat, pad,
 *   tile, identity, reshape, cast);
 * - `serial`: everything else the backend runs on one thread (softmax, the
 *   element-wise ops of GELU, LayerNorm and Adam, reductions...);
 * - `host`: the step's wall time outside any kernel (tfjs's bookkeeping, the
 *   gradient tape, reading logits back).
 *
 * The serial fraction is `(serial + copy + host) / step`: the share that
 * more threads cannot shorten (Amdahl's law then bounds the
 * speed-up from `t` threads at `1 / (s + (1 - s) / t)`).
 *
 * @module
 */
import { tf } from "../backend/tf.ts";
import { cKernelTakes } from "../backend/native/kernels.ts";

/** How a kernel's time is classed. */
export type KernelGroup = "blas" | "threaded" | "copy" | "serial";

/** One kernel name's total over the profiled step. */
export interface KernelTime {
  name: string;
  group: KernelGroup;
  calls: number;
  ms: number;
}

/** The profile of one step. */
export interface StepProfile {
  /** Wall time of the profiled step (a little above an unprofiled one). */
  stepMs: number;
  /** Kernels by total time, longest first. */
  kernels: KernelTime[];
  /** Milliseconds per group, plus `host` (outside any kernel). */
  groups: Record<KernelGroup | "host", number>;
  /** `(serial + copy + host) / stepMs`. */
  serialFraction: number;
}

const COPY_KERNELS = new Set([
  "Transpose",
  "Slice",
  "Concat",
  "Pad",
  "PadV2",
  "Tile",
  "Identity",
  "Reshape",
  "Cast",
  "Pack",
  "Unpack",
  "StridedSlice",
  "OneHot",
  "Fill",
]);

const BLAS_KERNELS = new Set([
  "BatchMatMul",
  "_FusedMatMul",
  "Conv2D",
  "FusedConv2D",
]);

/** Kernels that the C kernels run on every thread, when they are loaded. */
const C_KERNELS = new Set([
  "GeluParts",
  "SoftmaxGrad",
  "LayerNormParts",
  "LayerNormGrad",
]);

/**
 * The group of a kernel, given which kernels are native and whether the C
 * kernels are loaded.
 */
export function kernelGroup(
  name: string,
  nativeKernels: readonly string[],
  cKernels = false,
): KernelGroup {
  if (cKernels && name.endsWith(" (C)")) return "threaded";
  name = name.replace(/ \(batched\)$/, "");
  if (BLAS_KERNELS.has(name) && nativeKernels.includes(name)) return "blas";
  if (cKernels && C_KERNELS.has(name)) return "threaded";
  if (COPY_KERNELS.has(name)) return "copy";
  return "serial";
}

/**
 * Runs `step` once under `tf.profile` and sums its kernels. `nativeKernels`
 * names the kernels OpenBLAS replaced, `cKernels` says whether the C
 * kernels are loaded (the rest run on one thread).
 */
export async function profileStep(
  step: () => unknown,
  nativeKernels: readonly string[],
  cKernels = false,
): Promise<StepProfile> {
  let stepMs = 0;
  const info = await tf.profile(async () => {
    const t0 = performance.now();
    await step();
    stepMs = performance.now() - t0;
    return [];
  });
  // A custom-gradient op is recorded as well as the kernels it runs: count
  // registered kernels only.
  const backend = tf.getBackend();
  return summarizeKernels(
    info.kernels.filter((k) => tf.getKernel(k.name, backend) !== undefined)
      .map((k) => ({
        name: k.name +
          (isBatched(k.name, k.inputShapes)
            ? " (batched)"
            : cKernels && cKernelTakes(k.name, k.inputShapes)
            ? " (C)"
            : ""),
        ms: k.kernelTimeMs as number,
      })),
    stepMs,
    nativeKernels,
    cKernels,
  );
}

/**
 * Whether a matmul multiplies many matrix pairs (attention's per-head
 * products: one sgemm call each) rather than one (a linear layer).
 */
function isBatched(name: string, shapes: (number[] | null)[]): boolean {
  if (name !== "BatchMatMul" && name !== "_FusedMatMul") return false;
  const b = shapes[1];
  return b != null && b.length > 2 && b.slice(0, -2).some((d) => d > 1);
}

/** Sums per-call kernel times into a {@linkcode StepProfile}. */
export function summarizeKernels(
  calls: { name: string; ms: number }[],
  stepMs: number,
  nativeKernels: readonly string[],
  cKernels = false,
): StepProfile {
  const byName = new Map<string, KernelTime>();
  for (const c of calls) {
    const k = byName.get(c.name) ??
      {
        name: c.name,
        group: kernelGroup(c.name, nativeKernels, cKernels),
        calls: 0,
        ms: 0,
      };
    k.calls++;
    k.ms += c.ms;
    byName.set(c.name, k);
  }
  const kernels = [...byName.values()].sort((a, b) => b.ms - a.ms);
  const groups = { blas: 0, threaded: 0, copy: 0, serial: 0, host: 0 };
  for (const k of kernels) groups[k.group] += k.ms;
  groups.host = Math.max(
    0,
    stepMs - groups.blas - groups.threaded - groups.copy - groups.serial,
  );
  const serialFraction = stepMs > 0
    ? (groups.serial + groups.copy + groups.host) / stepMs
    : 0;
  return { stepMs, kernels, groups, serialFraction };
}

/**
 * The profile as Markdown: the groups, then the `top` longest kernels with
 * their share of the step.
 */
export function profileTable(p: StepProfile, top = 12): string {
  const pct = (ms: number) => `${(100 * ms / p.stepMs).toFixed(1)}%`;
  const s = (ms: number) => (ms / 1000).toFixed(2);
  const lines = [
    `| kernel | group | calls | seconds | share of step |`,
    `| --- | --- | --- | --- | --- |`,
  ];
  for (const k of p.kernels.slice(0, top)) {
    lines.push(
      `| ${k.name} | ${k.group} | ${k.calls} | ${s(k.ms)} | ${pct(k.ms)} |`,
    );
  }
  const rest = p.kernels.slice(top);
  if (rest.length > 0) {
    const ms = rest.reduce((a, k) => a + k.ms, 0);
    const calls = rest.reduce((a, k) => a + k.calls, 0);
    lines.push(
      `| ${rest.length} other kernels | | ${calls} | ${s(ms)} | ${pct(ms)} |`,
    );
  }
  for (const g of ["blas", "threaded", "serial", "copy", "host"] as const) {
    lines.push(`| **${g}** | | | ${s(p.groups[g])} | ${pct(p.groups[g])} |`);
  }
  lines.push(`| **step** | | | ${s(p.stepMs)} | 100% |`);
  return lines.join("\n");
}
