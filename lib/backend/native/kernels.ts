/**
 * Replaces the matmul-heavy kernels of the tfjs `wasm` or `cpu` backend with
 * OpenBLAS `cblas_sgemm` (multi-threaded: ~230 GFLOP/s on two cores against
 * 3-45 for the wasm backend's own kernels), plus two copies the wasm backend
 * makes slowly or needlessly (rank-5 Transpose, Identity), and adds one
 * fused kernels tfjs lacks (`GeluParts`: exact GELU and its slope in one
 * pass, see `_gelu.ts`; `SoftmaxGrad`, see `_softmax_grad.ts`). Every
 * case a native kernel does not cover (non-float32, prelu, overlapping
 * convolutions...) goes to the original kernel, called as-is.
 *
 * The wasm backend's own `_FusedMatMul` (tfjs 4.22) adds the bias wrongly
 * when `b` is transposed or batched; the native one is correct.
 *
 * When the project's C kernels are built (`deno task build:native`, see
 * `c_kernels.ts`), GeluParts, SoftmaxGrad and batches of small products run
 * there, on every core (otherwise in TypeScript on one thread), with the
 * large calls of Transpose (keeping the last axis) and of the kernels in
 * {@linkcode C_KERNEL_NAMES}, and the kernels of
 * {@linkcode C_ADDED_KERNEL_NAMES} (LayerNorm) are added.
 *
 * Kernels are looked up in the registry on every op call, so swapping them
 * works before or after `tf.setBackend`; the originals' setup/dispose hooks
 * are kept so that a later backend initialisation still sets them up.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { planBatchMatMul, runBatchMatMul } from "./_batch_matmul.ts";
import { activateInPlace, fillRows, isNativeActivation } from "./_epilogue.ts";
import { type BinaryOp, type CKernels, loadCKernels } from "./c_kernels.ts";
import { geluInto } from "./_gelu.ts";
import { softmaxGradInto } from "./_softmax_grad.ts";
import {
  gatherPatches,
  patchCols,
  patchRows,
  planPatchConv,
} from "./_patch_conv.ts";
import { sizeOf, type TensorMemory, tensorMemory } from "./_tensor_memory.ts";
import { effectiveRank, transposeInto } from "./_transpose.ts";
import { type RowCopies, sliceRows, transposeRows } from "./_row_copies.ts";
import { loadOpenBlas, type OpenBlas } from "./openblas.ts";

type KernelConfig = tf.KernelConfig;
type KernelFunc = tf.KernelFunc;
type TensorInfo = tf.TensorInfo;

/** Backends whose kernels can be replaced. */
export type NativeBackendName = "wasm" | "cpu";

/** The kernels this module can replace. */
export const NATIVE_KERNEL_NAMES = [
  "BatchMatMul",
  "_FusedMatMul",
  "Conv2D",
  "FusedConv2D",
  "Transpose",
  "Identity",
] as const;

/**
 * Kernels this module adds under names tfjs does not use, float32 only:
 * - `GeluParts`: inputs `{x}`, attrs `{derivative}`; outputs `[gelu(x)]` or
 *   `[gelu(x), gelu'(x)]`;
 * - `SoftmaxGrad`: inputs `{probs, dy}` of one shape; output the gradient
 *   of the softmax over the last axis, `probs * (dy - sum(dy * probs))`.
 *
 * No gradient is registered for them: callers use them outside gradient
 * tapes (see `layers.ts` `geluParts` and `softmaxGrad`).
 */
export const ADDED_KERNEL_NAMES = ["GeluParts", "SoftmaxGrad"] as const;

const ADDED_FACTORIES: Record<
  typeof ADDED_KERNEL_NAMES[number],
  (backendName: NativeBackendName, c?: CKernels) => KernelFunc
> = {
  GeluParts: geluPartsKernel,
  SoftmaxGrad: softmaxGradKernel,
};

/**
 * Kernels added only while the C kernels are in use (float32 only, no
 * gradient: callers use them outside gradient tapes, see `layers.ts`):
 * - `LayerNormParts`: inputs `{x, weight, bias}`, attrs `{eps, stats}`;
 *   outputs `[y]`, or with `stats` `[y, xhat, rstd]` (`rstd` of x's shape
 *   with a last axis of 1): LayerNorm over the last axis with its affine;
 * - `LayerNormGrad`: inputs `{dy, xhat, rstd, weight}` and optionally
 *   `residual`; output the input gradient (plus `residual`).
 */
export const C_ADDED_KERNEL_NAMES = [
  "LayerNormParts",
  "LayerNormGrad",
] as const;

/**
 * Kernels replaced only while the C kernels are in use, and then only for
 * float32 inputs of at least {@linkcode C_MIN_SIZE} values; other calls go
 * to the original. `Softmax` (over the last axis) computes its exp in
 * float32 to ~2 ulp, like tfjs-wasm's own; `Slice` copies exactly;
 * `Multiply`, `Add` and `Sub` take two inputs of one shape, or a second one
 * that is one row of the first's last axis, and round as tfjs does.
 */
export const C_KERNEL_NAMES = [
  "Softmax",
  "Slice",
  "Multiply",
  "Add",
  "Sub",
] as const;

/** Values under which a C-only kernel leaves the call to the original. */
export const C_MIN_SIZE = 1 << 16;

/**
 * Whether a float32 call of the C-only kernel `name` with inputs of these
 * shapes runs in the C kernels (the rest go to the original): the shape
 * half of their dispatch, shared with the step profile.
 */
export function cKernelTakes(
  name: string,
  shapes: readonly (readonly number[] | null | undefined)[],
): boolean {
  const a = shapes[0];
  if (a == null || a.length === 0 || sizeOf(a) < C_MIN_SIZE) return false;
  switch (name) {
    case "Softmax":
      return a[a.length - 1] > 0;
    case "Slice":
      return true;
    case "Multiply":
    case "Add":
    case "Sub": {
      const b = shapes[1];
      return b != null && (sameShape(a, b) || isRowOf(b, a));
    }
    default:
      return false;
  }
}

/** One of {@linkcode NATIVE_KERNEL_NAMES}. */
export type NativeKernelName = typeof NATIVE_KERNEL_NAMES[number];

/** Options of {@linkcode registerNativeKernels}. */
export interface RegisterNativeKernelsOptions {
  /**
   * OpenBLAS library to open (see `loadOpenBlas`).
   * @default env CUFIT_OPENBLAS, then the system library names
   */
  path?: string;
  /**
   * OpenBLAS threads.
   * @default navigator.hardwareConcurrency
   */
  threads?: number;
  /**
   * An already loaded OpenBLAS; `path` and `threads` are then ignored and
   * unregistering leaves it open.
   * @default undefined (load one)
   */
  openblas?: OpenBlas;
  /**
   * Which kernels to replace.
   * @default NATIVE_KERNEL_NAMES
   */
  kernels?: readonly NativeKernelName[];
  /**
   * The C kernels: an already loaded library, or false for the
   * TypeScript versions (a loaded library stays loaded).
   * @default the built library when there is one (see `c_kernels.ts`)
   */
  cKernels?: CKernels | false;
}

/** What {@linkcode registerNativeKernels} did. */
export interface NativeKernelsResult {
  /** Kernels now native, e.g. `["BatchMatMul", "_FusedMatMul"]`. */
  active: string[];
  /** Why nothing (or not everything asked for) was replaced. */
  reason?: string;
  /** The C kernel library in use and its threads, when one is. */
  cKernels?: { path: string; threads: number };
  /** Why the C kernels are not in use, when OpenBLAS is. */
  cReason?: string;
}

/** Kernels worth replacing on one backend only (the cpu Identity shares already). */
const ONLY_FOR: Partial<Record<NativeKernelName, NativeBackendName>> = {
  Identity: "wasm",
};

interface Registration {
  originals: KernelConfig[];
  added: string[];
  blas: OpenBlas;
  ownsBlas: boolean;
  c?: CKernels;
}

const registrations = new Map<NativeBackendName, Registration>();

/**
 * Swaps the matmul kernels of `backendName` for OpenBLAS ones.
 *
 * Never throws for a missing library or permission: it then registers
 * nothing and says why in `reason`. Calling it again re-registers.
 */
export function registerNativeKernels(
  backendName: NativeBackendName,
  options: RegisterNativeKernelsOptions = {},
): NativeKernelsResult {
  if (backendName !== "wasm" && backendName !== "cpu") {
    throw new Error(
      `Native kernels: backend must be "wasm" or "cpu", got ${
        JSON.stringify(backendName)
      }`,
    );
  }
  const wanted = options.kernels ?? NATIVE_KERNEL_NAMES;
  for (const name of wanted) {
    if (!(NATIVE_KERNEL_NAMES as readonly string[]).includes(name)) {
      throw new Error(
        `Native kernels: unknown kernel ${
          JSON.stringify(name)
        }, expected one of ${NATIVE_KERNEL_NAMES.join(", ")}`,
      );
    }
  }
  unregisterNativeKernels(backendName);

  const applicable = wanted.filter((name) =>
    (ONLY_FOR[name] ?? backendName) === backendName
  );
  const present = applicable.filter((name) =>
    tf.getKernel(name, backendName) !== undefined
  );
  if (applicable.length === 0) {
    return {
      active: [],
      reason: `None of the kernels ${
        wanted.join(", ")
      } is replaced on backend "${backendName}"`,
    };
  }
  if (present.length === 0) {
    return {
      active: [],
      reason:
        `Backend "${backendName}" has none of the kernels ${
          applicable.join(", ")
        } registered` +
        (backendName === "wasm"
          ? " (is @tensorflow/tfjs-backend-wasm imported?)"
          : ""),
    };
  }
  let blas = options.openblas;
  if (blas === undefined) {
    const loaded = loadOpenBlas({
      path: options.path,
      threads: options.threads,
    });
    if ("error" in loaded) return { active: [], reason: loaded.error };
    blas = loaded;
  }

  let c: CKernels | undefined;
  let cReason: string | undefined;
  if (options.cKernels === false) cReason = "disabled";
  else if (options.cKernels !== undefined) c = options.cKernels;
  else {
    const loaded = loadCKernels({ threads: blas.threads });
    if ("error" in loaded) cReason = loaded.error;
    else c = loaded;
  }

  const originals: KernelConfig[] = [];
  /** Swaps kernel `name` for `make(original)`, keeping its set-up hooks. */
  const replace = (name: string, make: (f: KernelFunc) => KernelFunc) => {
    const original = tf.getKernel(name, backendName);
    if (original === undefined) return false;
    tf.unregisterKernel(name, backendName);
    tf.registerKernel({
      kernelName: name,
      backendName,
      kernelFunc: make(original.kernelFunc),
      setupFunc: original.setupFunc,
      disposeFunc: original.disposeFunc,
    });
    originals.push(original);
    return true;
  };
  const added: string[] = [];
  /** Registers kernel `name` unless the backend has one by that name. */
  const add = (name: string, kernelFunc: KernelFunc) => {
    if (tf.getKernel(name, backendName) !== undefined) return;
    tf.registerKernel({ kernelName: name, backendName, kernelFunc });
    added.push(name);
  };
  for (const name of present) {
    replace(name, (f) => NATIVE_FACTORIES[name](blas, backendName, f, c));
  }
  for (const name of ADDED_KERNEL_NAMES) {
    add(name, ADDED_FACTORIES[name](backendName, c));
  }
  const cActive: string[] = [];
  if (c !== undefined) {
    const lib = c;
    for (const name of C_KERNEL_NAMES) {
      if (replace(name, (f) => C_FACTORIES[name](lib, backendName, f))) {
        cActive.push(name);
      }
    }
    for (const name of C_ADDED_KERNEL_NAMES) {
      add(name, C_ADDED_FACTORIES[name](backendName, lib));
    }
  }
  registrations.set(backendName, {
    originals,
    added,
    blas,
    ownsBlas: options.openblas === undefined,
    c,
  });
  const cInfo = c === undefined ? { cReason } : {
    cKernels: { path: c.path, threads: c.threads },
  };
  const missing = applicable.filter((name) => !present.includes(name));
  const active = [...present, ...cActive];
  return missing.length === 0 ? { active, ...cInfo } : {
    active,
    reason: `Backend "${backendName}" has no ${
      missing.join(", ")
    } kernel to replace`,
    ...cInfo,
  };
}

/**
 * Restores the original kernels of `backendName` (of both backends when
 * omitted); returns the kernel names restored.
 */
export function unregisterNativeKernels(
  backendName?: NativeBackendName,
): string[] {
  const restored: string[] = [];
  const names = backendName === undefined
    ? [...registrations.keys()]
    : [backendName];
  for (const name of names) {
    const reg = registrations.get(name);
    if (reg === undefined) continue;
    registrations.delete(name);
    for (const original of reg.originals) {
      if (tf.getKernel(original.kernelName, name) !== undefined) {
        tf.unregisterKernel(original.kernelName, name);
      }
      tf.registerKernel(original);
      restored.push(original.kernelName);
    }
    for (const kernelName of reg.added) tf.unregisterKernel(kernelName, name);
    if (reg.ownsBlas) reg.blas.close();
  }
  return restored;
}

/** Kernels of `backendName` that are currently native. */
export function activeNativeKernels(backendName: NativeBackendName): string[] {
  return registrations.get(backendName)?.originals.map((k) => k.kernelName) ??
    [];
}

type Factory = (
  blas: OpenBlas,
  backendName: NativeBackendName,
  original: KernelFunc,
  c?: CKernels,
) => KernelFunc;

const NATIVE_FACTORIES: Record<NativeKernelName, Factory> = {
  BatchMatMul: (blas, backendName, original, c) => (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as {
      transposeA: boolean;
      transposeB: boolean;
    };
    if (a.dtype !== "float32" || b.dtype !== "float32") return original(args);
    const plan = planBatchMatMul(a.shape, b.shape, !!transposeA, !!transposeB);
    return withViews(
      backendName,
      args.backend,
      plan.outShape,
      [a, b],
      (out, [av, bv]) => {
        runBatchMatMul(blas, plan, { a: av, b: bv, out }, { c });
      },
    ) ?? original(args);
  },

  _FusedMatMul: (blas, backendName, original, c) => (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<
      string,
      TensorInfo | undefined
    >;
    const { transposeA, transposeB, activation, leakyreluAlpha } = args
      .attrs as {
        transposeA: boolean;
        transposeB: boolean;
        activation?: string;
        leakyreluAlpha?: number;
      };
    if (
      a === undefined || b === undefined || a.dtype !== "float32" ||
      b.dtype !== "float32" || preluActivationWeights != null ||
      !isNativeActivation(activation)
    ) {
      return original(args);
    }
    const plan = planBatchMatMul(a.shape, b.shape, !!transposeA, !!transposeB);
    if (bias != null && !isRowBias(bias, plan.n)) return original(args);
    const inputs = bias == null ? [a, b] : [a, b, bias];
    return withViews(
      backendName,
      args.backend,
      plan.outShape,
      inputs,
      (out, views) => {
        if (bias != null) fillRows(out, views[2], plan.n);
        runBatchMatMul(blas, plan, { a: views[0], b: views[1], out }, {
          beta: bias == null ? 0 : 1,
          c,
        });
        activateInPlace(out, activation, leakyreluAlpha);
      },
    ) ?? original(args);
  },

  Conv2D: (blas, backendName, original) => (args) =>
    patchConv(blas, backendName, original, args),

  FusedConv2D: (blas, backendName, original) => (args) => {
    const { activation, leakyreluAlpha } = args.attrs as {
      activation?: string;
      leakyreluAlpha?: number;
    };
    const { bias, preluActivationWeights } = args.inputs as Record<
      string,
      TensorInfo | undefined
    >;
    if (preluActivationWeights != null || !isNativeActivation(activation)) {
      return original(args);
    }
    return patchConv(blas, backendName, original, args, {
      bias: bias ?? undefined,
      epilogue: (out) => activateInPlace(out, activation, leakyreluAlpha),
    });
  },

  Transpose: (_blas, backendName, original, c) =>
    transposeKernel(backendName, original, c),

  // The wasm Identity copies the tensor; tf.grad calls it ~80 times per ViT
  // block. Tensors are immutable, so share the data as the wasm Reshape and
  // the cpu Identity already do (the backend counts references).
  Identity: (_blas, _backendName, original) => (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === "string") return original(args);
    (args.backend as { incRef(dataId: unknown): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  },
};

const C_ADDED_FACTORIES: Record<
  typeof C_ADDED_KERNEL_NAMES[number],
  (backendName: NativeBackendName, c: CKernels) => KernelFunc
> = {
  LayerNormParts: (backendName, c) => (args) => {
    const { x, weight, bias } = args.inputs as Record<string, TensorInfo>;
    const { eps, stats } = args.attrs as { eps: number; stats?: boolean };
    const cols = x.shape.at(-1) ?? 0;
    if (
      [x, weight, bias].some((t) => t?.dtype !== "float32") || cols === 0 ||
      sizeOf(weight.shape) !== cols || sizeOf(bias.shape) !== cols
    ) {
      throw new Error(
        `LayerNormParts: needs float32 x [..., D] with D > 0 and weight and bias of D values, got x [${x.shape}], weight [${weight?.shape}], bias [${bias?.shape}]`,
      );
    }
    const shapes = stats
      ? [x.shape, x.shape, [...x.shape.slice(0, -1), 1]]
      : [x.shape];
    return computeOutputs(
      "LayerNormParts",
      backendName,
      args.backend,
      shapes,
      [x, weight, bias],
      ([y, xhat, rstd], [xv, wv, bv]) =>
        c.layerNorm(xv, wv, bv, eps, { y, xhat, rstd }),
    );
  },
  LayerNormGrad: (backendName, c) => (args) => {
    const { dy, xhat, rstd, weight, residual } = args.inputs as Record<
      string,
      TensorInfo | undefined
    >;
    const cols = dy?.shape.at(-1) ?? 0;
    const same = (t?: TensorInfo) =>
      t !== undefined && t.shape.join() === dy!.shape.join();
    if (
      [dy, xhat, rstd, weight, residual].some((t) =>
        t !== undefined && t.dtype !== "float32"
      ) || cols === 0 || !same(xhat) || weight === undefined ||
      rstd === undefined || sizeOf(weight.shape) !== cols ||
      sizeOf(rstd.shape) * cols !== sizeOf(dy!.shape) ||
      (residual !== undefined && !same(residual))
    ) {
      throw new Error(
        `LayerNormGrad: needs float32 dy and xhat of one shape [..., D], rstd of one value a row, weight of D values (and residual like dy), got dy [${dy?.shape}], xhat [${xhat?.shape}], rstd [${rstd?.shape}], weight [${weight?.shape}], residual [${residual?.shape}]`,
      );
    }
    const inputs = residual === undefined
      ? [dy!, xhat!, rstd, weight]
      : [dy!, xhat!, rstd, weight, residual];
    return computeOutputs(
      "LayerNormGrad",
      backendName,
      args.backend,
      [dy!.shape],
      inputs,
      ([dx], [d, h, r, w, res]) =>
        c.layerNormGrad(d, { xhat: h, rstd: r }, w, dx, res),
    )[0];
  },
};

/**
 * For kernels with no original to fall back to: allocates float32 outputs
 * of `shapes`, views them and `inputs` (after the allocations: a growing
 * wasm heap moves earlier views) and runs `compute`. A view that cannot be
 * taken, or an error in `compute`, frees the outputs and throws.
 */
function computeOutputs(
  kernel: string,
  backendName: NativeBackendName,
  backend: unknown,
  shapes: number[][],
  inputs: TensorInfo[],
  compute: (outs: Float32Array[], ins: Float32Array[]) => void,
): TensorInfo[] {
  const mem = tensorMemory(backendName, backend);
  const outs = shapes.map((shape) => mem.alloc(shape));
  try {
    const views = [...inputs, ...outs].map((t) => mem.view(t));
    if (views.some((v) => v === undefined)) {
      throw new Error(`${kernel}: cannot view the tensor memory`);
    }
    const all = views as Float32Array[];
    compute(all.slice(inputs.length), all.slice(0, inputs.length));
    return outs;
  } catch (e) {
    outs.forEach((o) => mem.free(o));
    throw e;
  }
}

/** `GeluParts` over the backend's own float32 memory, no copies. */
function geluPartsKernel(
  backendName: NativeBackendName,
  c?: CKernels,
): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { derivative } = args.attrs as { derivative?: boolean };
    if (x.dtype !== "float32") {
      throw new Error(`GeluParts: x must be float32, got ${x.dtype}`);
    }
    return computeOutputs(
      "GeluParts",
      backendName,
      args.backend,
      derivative ? [x.shape, x.shape] : [x.shape],
      [x],
      ([y, slope], [xv]) =>
        c !== undefined ? c.gelu(xv, y, slope) : geluInto(xv, y, slope),
    );
  };
}

/** `SoftmaxGrad` over the backend's own float32 memory. */
function softmaxGradKernel(
  backendName: NativeBackendName,
  c?: CKernels,
): KernelFunc {
  return (args) => {
    const { probs, dy } = args.inputs as { probs: TensorInfo; dy: TensorInfo };
    if (
      probs.dtype !== "float32" || dy.dtype !== "float32" ||
      probs.shape.join() !== dy.shape.join() || probs.shape.length === 0
    ) {
      throw new Error(
        `SoftmaxGrad: probs and dy must be float32 of one shape, got ${probs.dtype} [${probs.shape}] and ${dy.dtype} [${dy.shape}]`,
      );
    }
    const cols = probs.shape.at(-1)!;
    return computeOutputs(
      "SoftmaxGrad",
      backendName,
      args.backend,
      [probs.shape],
      [probs, dy],
      ([out], [p, g]) =>
        c !== undefined && cols > 0
          ? c.softmaxGrad(p, g, out, cols)
          : softmaxGradInto(p, g, out, cols),
    )[0];
  };
}

/**
 * Transpose is no BLAS routine, but the wasm backend's generic path (rank > 4
 * once trivial axes are dropped) is ~50x slower than copying rows in JS, and
 * the cpu backend's is slower at every rank.
 */
function transposeKernel(
  backendName: NativeBackendName,
  original: KernelFunc,
  c?: CKernels,
): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { perm } = args.attrs as { perm: number[] };
    if (x.dtype !== "float32") return original(args);
    const outShape = perm.map((axis) => x.shape[axis]);
    // With the C kernels, a permutation that keeps the last axis (attention's
    // head split and merge) is a parallel copy of its rows.
    const rows = c !== undefined && sizeOf(x.shape) >= C_MIN_SIZE
      ? transposeRows(x.shape, perm, 16)
      : undefined;
    if (rows !== undefined) {
      return copyRows(c!, backendName, args.backend, x, outShape, rows) ??
        original(args);
    }
    if (backendName === "wasm" && effectiveRank(x.shape, perm) <= 4) {
      return original(args);
    }
    return withViews(backendName, args.backend, outShape, [x], (out, [xv]) => {
      transposeInto(xv, x.shape, perm, out);
    }) ?? original(args);
  };
}

/** A new `outShape` tensor made of `rows` copied out of `x`. */
function copyRows(
  c: CKernels,
  backendName: NativeBackendName,
  backend: unknown,
  x: TensorInfo,
  outShape: number[],
  rows: RowCopies,
): TensorInfo | undefined {
  return withViews(backendName, backend, outShape, [x], (out, [xv]) => {
    c.gatherRows(xv, out, rows.offsets, rows.len);
  });
}

type CFactory = (
  c: CKernels,
  backendName: NativeBackendName,
  original: KernelFunc,
) => KernelFunc;

/** `Multiply`, `Add` or `Sub` of same-shaped or row-broadcast float32 inputs. */
const binaryFactory =
  (op: BinaryOp): CFactory => (c, backendName, original) => (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const name = ({ mul: "Multiply", add: "Add", sub: "Sub" } as const)[op];
    if (
      a.dtype !== "float32" || b.dtype !== "float32" ||
      !cKernelTakes(name, [a.shape, b.shape])
    ) {
      return original(args);
    }
    return withViews(backendName, args.backend, a.shape, [a, b], (out, v) => {
      c.binary(op, v[0], v[1], out);
    }) ?? original(args);
  };

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** `b` is `[n]` or `[1, ..., 1, n]` with `n` the last axis of `a`. */
function isRowOf(b: readonly number[], a: readonly number[]): boolean {
  return b.length >= 1 && b.length <= a.length && b.at(-1) === a.at(-1) &&
    b.slice(0, -1).every((d) => d === 1);
}

const C_FACTORIES: Record<typeof C_KERNEL_NAMES[number], CFactory> = {
  Multiply: binaryFactory("mul"),
  Add: binaryFactory("add"),
  Sub: binaryFactory("sub"),
  Softmax: (c, backendName, original) => (args) => {
    const { logits } = args.inputs as { logits: TensorInfo };
    const { dim } = args.attrs as { dim: number };
    const rank = logits.shape.length;
    const cols = logits.shape[rank - 1] ?? 0;
    if (
      logits.dtype !== "float32" || (dim !== -1 && dim !== rank - 1) ||
      !cKernelTakes("Softmax", [logits.shape])
    ) {
      return original(args);
    }
    return withViews(
      backendName,
      args.backend,
      logits.shape,
      [logits],
      (out, [x]) => c.softmax(x, out, cols),
    ) ?? original(args);
  },
  Slice: (c, backendName, original) => (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const attrs = args.attrs as { begin: number[]; size: number[] };
    if (x.dtype !== "float32" || !cKernelTakes("Slice", [x.shape])) {
      return original(args);
    }
    const [begin, size] = tf.slice_util.parseSliceParams(
      x as unknown as tf.Tensor,
      attrs.begin,
      attrs.size,
    );
    const rows = sliceRows(x.shape, begin, size);
    return copyRows(c, backendName, args.backend, x, size, rows) ??
      original(args);
  },
};

/** Conv2D / FusedConv2D as one sgemm when it is a non-overlapping patch conv. */
function patchConv(
  blas: OpenBlas,
  backendName: NativeBackendName,
  original: KernelFunc,
  args: Parameters<KernelFunc>[0],
  fused: { bias?: TensorInfo; epilogue?: (out: Float32Array) => void } = {},
): TensorInfo | TensorInfo[] {
  const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DAttrs;
  if (
    x.dtype !== "float32" || filter.dtype !== "float32" || x.shape.length !== 4
  ) {
    return original(args);
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    attrs.strides,
    attrs.dilations,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(attrs.dataFormat),
  );
  const plan = planPatchConv(info);
  const bias = fused.bias;
  if (
    plan === undefined || (bias !== undefined && !isRowBias(bias, plan.outC))
  ) {
    return original(args);
  }
  const inputs = bias === undefined ? [x, filter] : [x, filter, bias];
  return withViews(
    backendName,
    args.backend,
    info.outShape,
    inputs,
    (out, views) => {
      if (bias !== undefined) fillRows(out, views[2], plan.outC);
      blas.sgemm({
        m: patchRows(plan),
        n: plan.outC,
        k: patchCols(plan),
        a: gatherPatches(views[0], plan),
        b: views[1],
        c: out,
        beta: bias === undefined ? 0 : 1,
      });
      fused.epilogue?.(out);
    },
  ) ?? original(args);
}

/** A float32 bias that adds one value per output column (`[n]`, `[1, n]`, scalar). */
function isRowBias(bias: TensorInfo, n: number): boolean {
  const size = sizeOf(bias.shape);
  return bias.dtype === "float32" &&
    (size === 1 || (size === n && bias.shape[bias.shape.length - 1] === n));
}

/**
 * Allocates a float32 output, takes views of it and of `inputs` (after the
 * allocation, since a growing wasm heap invalidates earlier views) and runs
 * `compute`. Returns undefined, freeing the output, when a view is missing.
 */
function withViews(
  backendName: NativeBackendName,
  backend: unknown,
  outShape: number[],
  inputs: TensorInfo[],
  compute: (out: Float32Array, views: Float32Array[]) => void,
): TensorInfo | undefined {
  const mem: TensorMemory = tensorMemory(backendName, backend);
  const out = mem.alloc(outShape);
  try {
    const outView = mem.view(out);
    const views = inputs.map((t) => mem.view(t));
    if (outView === undefined || views.some((v) => v === undefined)) {
      mem.free(out);
      return undefined;
    }
    compute(outView, views as Float32Array[]);
    return out;
  } catch (e) {
    mem.free(out);
    throw e;
  }
}
