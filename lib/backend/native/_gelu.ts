/**
 * Exact (erf) GELU and its slope in one pass over plain Float32Arrays, for
 * the `GeluParts` kernel of `kernels.ts`.
 *
 * The op-by-op form (`layers.ts` `geluParts`) makes ~12 passes over a
 * `[B*N, F]` tensor (erf, exp, square and the multiplies and adds between
 * them), each writing a new tensor: at 224 px and batch 16 that is 6.3M
 * values a pass, 36 times a CUFIT step. Here each value is read once, and
 * erf and the slope share one `exp(-x^2 / 2)`.
 *
 * erf is Abramowitz & Stegun 7.1.26 in double precision (absolute error below
 * 1.5e-7, about one float32 rounding step of `1 + erf`), with tfjs's own
 * constants: the formula tfjs's cpu backend uses for `tf.erf`.
 *
 * @module
 */
import { tf } from "../tf.ts";

const { ERF_P, ERF_A1, ERF_A2, ERF_A3, ERF_A4, ERF_A5 } = tf.backend_util;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const TAIL = 12;

/**
 * `y = 0.5 x (1 + erf(x / sqrt 2))` and, when `slope` is given,
 * `dy/dx = 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)`.
 * `x`, `y` and `slope` have the same length; `y` may be `x`.
 */
export function geluInto(
  x: Float32Array,
  y: Float32Array,
  slope?: Float32Array,
): void {
  const n = x.length;
  for (let i = 0; i < n; i++) {
    const v = x[i];
    // Beyond |x| = 12 the float32 results are x and 1, or 0 and 0 (the true
    // values differ by under 1e-30). Computing them would also round tiny
    // doubles to float32 subnormals, which costs ~100x on x86.
    if (v > TAIL) {
      y[i] = v;
      if (slope !== undefined) slope[i] = 1;
      continue;
    }
    if (v < -TAIL) {
      y[i] = 0;
      if (slope !== undefined) slope[i] = 0;
      continue;
    }
    const z = Math.abs(v) * Math.SQRT1_2;
    const t = 1 / (1 + ERF_P * z);
    const e = Math.exp(-z * z); // exp(-x^2 / 2), in erf and in the slope
    const poly = t *
      (ERF_A1 + t * (ERF_A2 + t * (ERF_A3 + t * (ERF_A4 + t * ERF_A5))));
    const erfc = poly * e; // 1 - erf(|x| / sqrt 2)
    const cdf2 = v >= 0 ? 2 - erfc : erfc; // 1 + erf(x / sqrt 2)
    y[i] = 0.5 * v * cdf2;
    if (slope !== undefined) slope[i] = 0.5 * cdf2 + v * e * INV_SQRT_2PI;
  }
}
