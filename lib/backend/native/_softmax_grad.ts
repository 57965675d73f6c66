/**
 * The gradient of a softmax over the last axis in one kernel, for the
 * `SoftmaxGrad` kernel of `kernels.ts`: with `p = softmax(s)` and the
 * output gradient `g`, `ds = p * (g - sum(g * p))`, row by row.
 *
 * The op-by-op form makes four passes over `[B*K, N, N]` (multiply, sum,
 * subtract, multiply: 6.3M values each at 224 px and batch 16, in every
 * attention backward) and three temporaries; here each row is read twice
 * while it is in cache, and the dot product accumulates in double precision.
 *
 * @module
 */

/** `out = p * (g - rowsum(g * p))` over rows of length `n`; `out` may be `g`. */
export function softmaxGradInto(
  p: Float32Array,
  g: Float32Array,
  out: Float32Array,
  n: number,
): void {
  for (let row = 0; row < p.length; row += n) {
    let dot = 0;
    for (let i = row; i < row + n; i++) dot += g[i] * p[i];
    for (let i = row; i < row + n; i++) out[i] = p[i] * (g[i] - dot);
  }
}
