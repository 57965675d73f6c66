/**
 * Transposes and slices as copies of equal-length runs of floats ("rows"),
 * for the C kernels' `gatherRows`: where each run starts in the input, in
 * output order. Pure functions over shapes, so they are testable alone.
 *
 * @module
 */
import { collapsePermutation } from "./_transpose.ts";

/** `rows = offsets.length` runs of `len` floats, in output order. */
export interface RowCopies {
  /** Start of each run in the input (whole numbers). */
  offsets: Float64Array;
  /** Floats per run. */
  len: number;
}

/**
 * The runs of `x.transpose(perm)` when the permutation keeps the last axis
 * in place (after size-1 axes are dropped and neighbours merged); undefined
 * otherwise, or when runs would be under `minLen` floats.
 */
export function transposeRows(
  shape: readonly number[],
  perm: readonly number[],
  minLen = 1,
): RowCopies | undefined {
  const c = collapsePermutation(shape, perm);
  const rank = c.shape.length;
  if (rank === 0 || c.perm[rank - 1] !== rank - 1) return undefined;
  const len = c.shape[rank - 1];
  if (len < minLen) return undefined;
  const strides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) {
    strides[i] = strides[i + 1] * c.shape[i + 1];
  }
  const outer = c.perm.slice(0, -1);
  return {
    offsets: odometer(
      outer.map((axis) => c.shape[axis]),
      outer.map((axis) => strides[axis]),
      0,
    ),
    len,
  };
}

/**
 * The runs of `x.slice(begin, size)` (both resolved: no -1): the longest
 * contiguous piece of the input that each output row covers.
 */
export function sliceRows(
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
): RowCopies {
  const rank = shape.length;
  if (begin.length !== rank || size.length !== rank) {
    throw new RangeError(
      `slice of [${shape}]: begin [${begin}] and size [${size}] need ${rank} entries`,
    );
  }
  for (let i = 0; i < rank; i++) {
    if (
      !Number.isInteger(begin[i]) || !Number.isInteger(size[i]) ||
      begin[i] < 0 || size[i] < 0 || begin[i] + size[i] > shape[i]
    ) {
      throw new RangeError(
        `slice of [${shape}]: begin [${begin}] and size [${size}] leave the tensor on axis ${i}`,
      );
    }
  }
  const strides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) {
    strides[i] = strides[i + 1] * shape[i + 1];
  }
  // The last axis the slice cuts: everything after it is taken whole.
  let k = rank - 1;
  while (k >= 0 && begin[k] === 0 && size[k] === shape[k]) k--;
  if (k < 0) {
    const total = shape.reduce((p, d) => p * d, 1);
    return { offsets: new Float64Array(total === 0 ? 0 : 1), len: total };
  }
  const len = size[k] * strides[k];
  let base = 0;
  for (let i = 0; i <= k; i++) base += begin[i] * strides[i];
  if (len === 0) return { offsets: new Float64Array(0), len: 0 };
  return {
    offsets: odometer(size.slice(0, k), strides.slice(0, k), base),
    len,
  };
}

/** `base + sum(idx[i] * strides[i])` for every index of `dims`, row-major. */
function odometer(dims: number[], strides: number[], base: number) {
  const rows = dims.reduce((p, d) => p * d, 1);
  const out = new Float64Array(rows);
  const idx = new Array<number>(dims.length).fill(0);
  let offset = base;
  for (let r = 0; r < rows; r++) {
    out[r] = offset;
    for (let d = dims.length - 1; d >= 0; d--) {
      idx[d]++;
      offset += strides[d];
      if (idx[d] < dims[d]) break;
      offset -= strides[d] * dims[d];
      idx[d] = 0;
    }
  }
  return out;
}
