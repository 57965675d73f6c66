/**
 * Batched matrix multiply with broadcast batch dimensions, as sgemm calls on
 * plain Float32Arrays (no tfjs here, so it is testable on its own).
 *
 * @module
 */
import type { CKernels } from "./c_kernels.ts";
import type { OpenBlas } from "./openblas.ts";

/** How a `[..., M, K] @ [..., K, N]` product maps onto sgemm calls. */
export interface BatchMatMulPlan {
  /** Broadcast batch dims followed by `[m, n]`. */
  outShape: number[];
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  /** Number of output matrices. */
  batch: number;
  /** Matrix of `a` (resp. `b`) used by each output matrix. */
  aIndex: Int32Array;
  bIndex: Int32Array;
  /**
   * True when every output matrix uses the one `b` matrix and `a` is not
   * transposed: the whole product is one `[batch*m, k] @ [k, n]` sgemm.
   */
  stacked: boolean;
}

/**
 * Shapes and batch mapping of `op(a) @ op(b)`; throws on mismatched shapes.
 *
 * Batch dims broadcast like numpy (right-aligned, 1 stretches). This is the
 * documented tfjs semantics; the tfjs cpu kernel's `index % batch` mapping
 * agrees with it whenever the broadcast is "one side is all 1s" or a suffix.
 */
export function planBatchMatMul(
  aShape: readonly number[],
  bShape: readonly number[],
  transA: boolean,
  transB: boolean,
): BatchMatMulPlan {
  if (aShape.length < 2 || bShape.length < 2) {
    throw new Error(
      `matMul needs tensors of rank >= 2, got shapes [${aShape}] and [${bShape}]`,
    );
  }
  const ra = aShape.length;
  const rb = bShape.length;
  const m = transA ? aShape[ra - 1] : aShape[ra - 2];
  const k = transA ? aShape[ra - 2] : aShape[ra - 1];
  const kb = transB ? bShape[rb - 1] : bShape[rb - 2];
  const n = transB ? bShape[rb - 2] : bShape[rb - 1];
  if (k !== kb) {
    throw new Error(
      `matMul inner dimensions differ: [${aShape}]${transA ? "^T" : ""} and ` +
        `[${bShape}]${transB ? "^T" : ""} give ${k} and ${kb}`,
    );
  }
  const aOuter = aShape.slice(0, -2);
  const bOuter = bShape.slice(0, -2);
  const rank = Math.max(aOuter.length, bOuter.length);
  const outOuter: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = aOuter[i - (rank - aOuter.length)] ?? 1;
    const db = bOuter[i - (rank - bOuter.length)] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(
        `matMul batch dimensions of [${aShape}] and [${bShape}] do not broadcast`,
      );
    }
    outOuter.push(da === 1 ? db : da);
  }
  const batch = outOuter.reduce((p, d) => p * d, 1);
  const aIndex = broadcastIndex(outOuter, aOuter);
  const bIndex = broadcastIndex(outOuter, bOuter);
  const stacked = !transA && bIndex.every((v) => v === 0) &&
    aIndex.every((v, i) => v === i);
  return {
    outShape: [...outOuter, m, n],
    m,
    n,
    k,
    transA,
    transB,
    batch,
    aIndex,
    bIndex,
    stacked,
  };
}

/** Options of {@linkcode runBatchMatMul}. */
export interface RunBatchMatMulOptions {
  /** Scale of the incoming `out` (1 adds the product to a prefilled bias). @default 0 */
  beta?: number;
  /**
   * C kernels: batches of small products then run one per thread on their
   * pool (each calling this OpenBLAS) instead of one after another.
   * @default undefined (the loop here)
   */
  c?: CKernels;
}

/** Computes `out = op(a) @ op(b) (+ beta * out)` for a plan. */
export function runBatchMatMul(
  blas: OpenBlas,
  plan: BatchMatMulPlan,
  data: { a: Float32Array; b: Float32Array; out: Float32Array },
  options: RunBatchMatMulOptions = {},
): void {
  const { m, n, k, transB, batch } = plan;
  const beta = options.beta ?? 0;
  if (plan.stacked) {
    blas.sgemm({
      m: batch * m,
      n,
      k,
      a: data.a,
      b: data.b,
      c: data.out,
      transB,
      beta,
    });
    return;
  }
  const aSize = m * k;
  const bSize = k * n;
  const cSize = m * n;
  // OpenBLAS wakes and joins its threads inside every sgemm call. For many
  // small products (attention's per-head [N, d] x [d, N], 96 calls of ~4M
  // multiply-adds at 224 px) that join costs what the split saves, and when
  // another process holds a core each join waits for the descheduled
  // helper: 373 ms against 27 ms on one thread, measured on a shared 2-core
  // machine. Such loops run on one thread; large products keep them all.
  // With the C kernels, the matrices of such a batch are spread over their
  // pool instead, each on one thread: no join per product, and a chunk
  // left by a descheduled thread is taken by another.
  const threads = blas.threads;
  const serial = threads > 1 && batch > 1 && m * n * k < SMALL_PRODUCT;
  const c = options.c;
  if (serial) blas.setThreads(1);
  try {
    if (
      serial && c !== undefined && c.threads > 1 && blas.sgemmAddress !== null
    ) {
      c.sgemmBatch(blas.sgemmAddress, plan, data, beta);
    } else {
      loop(blas, plan, data, beta, aSize, bSize, cSize);
    }
  } finally {
    if (serial) blas.setThreads(threads);
  }
}

/**
 * Multiply-adds (`m * n * k`) under which the matrices of a batched product
 * are multiplied on one thread (see {@linkcode runBatchMatMul}).
 */
export const SMALL_PRODUCT = 1 << 24;

function loop(
  blas: OpenBlas,
  plan: BatchMatMulPlan,
  data: { a: Float32Array; b: Float32Array; out: Float32Array },
  beta: number,
  aSize: number,
  bSize: number,
  cSize: number,
): void {
  const { m, n, k, transA, transB, batch } = plan;
  for (let i = 0; i < batch; i++) {
    const ao = plan.aIndex[i] * aSize;
    const bo = plan.bIndex[i] * bSize;
    blas.sgemm({
      m,
      n,
      k,
      a: data.a.subarray(ao, ao + aSize),
      b: data.b.subarray(bo, bo + bSize),
      c: data.out.subarray(i * cSize, (i + 1) * cSize),
      transA,
      transB,
      beta,
    });
  }
}

/** For each flat index of `outDims`, the flat index into `dims` (broadcast). */
function broadcastIndex(outDims: number[], dims: number[]): Int32Array {
  const total = outDims.reduce((p, d) => p * d, 1);
  const out = new Int32Array(total);
  const offset = outDims.length - dims.length;
  // Strides of `dims`, 0 where a dimension of size 1 is stretched.
  const strides = new Array<number>(outDims.length).fill(0);
  let s = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    strides[i + offset] = dims[i] === 1 ? 0 : s;
    s *= dims[i];
  }
  for (let flat = 0; flat < total; flat++) {
    let rest = flat;
    let idx = 0;
    for (let d = outDims.length - 1; d >= 0; d--) {
      idx += (rest % outDims[d]) * strides[d];
      rest = Math.floor(rest / outDims[d]);
    }
    out[flat] = idx;
  }
  return out;
}
