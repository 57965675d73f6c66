/**
 * Tensor transpose on plain Float32Arrays. The tfjs wasm backend has fast
 * paths up to rank 4 only; a rank-5 permutation such as PyTorch's
 * `qkv.reshape(B, N, 3, H, d).permute(2, 0, 3, 1, 4)` takes its generic path,
 * ~50x slower (53 ms for 1040 ViT-S tokens). This copies contiguous runs.
 *
 * @module
 */

/** Shape and permutation with size-1 axes dropped and adjacent kept axes merged. */
export function collapsePermutation(
  shape: readonly number[],
  perm: readonly number[],
): { shape: number[]; perm: number[] } {
  if (
    perm.length !== shape.length ||
    [...perm].sort((a, b) => a - b).some((p, i) => p !== i)
  ) {
    throw new Error(
      `Transpose permutation [${perm}] does not fit shape [${shape}]`,
    );
  }
  // Output order of the non-trivial input axes.
  const kept = perm.filter((axis) => shape[axis] !== 1);
  // Merge runs of consecutive input axes that stay consecutive in the output.
  const groups: number[][] = [];
  for (const axis of kept) {
    const last = groups[groups.length - 1];
    if (last !== undefined && last[last.length - 1] === axis - 1) {
      last.push(axis);
    } else groups.push([axis]);
  }
  const byInput = [...groups].sort((a, b) => a[0] - b[0]);
  return {
    shape: byInput.map((g) => g.reduce((p, axis) => p * shape[axis], 1)),
    perm: groups.map((g) => byInput.indexOf(g)),
  };
}

/** Rank of a transpose once trivial axes are collapsed. */
export function effectiveRank(
  shape: readonly number[],
  perm: readonly number[],
): number {
  return collapsePermutation(shape, perm).shape.length;
}

/** Writes `x` (of `shape`) permuted by `perm` into `out`. */
export function transposeInto(
  x: Float32Array,
  shape: readonly number[],
  perm: readonly number[],
  out: Float32Array,
): void {
  const c = collapsePermutation(shape, perm);
  const rank = c.shape.length;
  if (c.perm.every((p, i) => p === i)) {
    out.set(x.subarray(0, out.length));
    return;
  }
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= c.shape[i];
  }
  const outDims = c.perm.map((p) => c.shape[p]);
  const steps = c.perm.map((p) => inStrides[p]);
  // Each pass writes one row of the innermost output axis: a plain copy when
  // that axis is also innermost in x, else a strided gather.
  const rowLen = outDims[rank - 1];
  const rowStep = steps[rank - 1];
  const counter = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < out.length; o += rowLen) {
    if (rowStep === 1 && rowLen >= 32) {
      out.set(x.subarray(src, src + rowLen), o);
    } else {
      for (let i = 0, s = src; i < rowLen; i++, s += rowStep) out[o + i] = x[s];
    }
    for (let axis = rank - 2; axis >= 0; axis--) {
      if (++counter[axis] < outDims[axis]) {
        src += steps[axis];
        break;
      }
      counter[axis] = 0;
      src -= steps[axis] * (outDims[axis] - 1);
    }
  }
}
