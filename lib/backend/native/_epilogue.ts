/**
 * Bias and activation applied in place after a native matmul or patch conv,
 * matching the fused activations of tfjs (`tf.fused.matMul`, `tf.fused.conv2d`).
 *
 * @module
 */

/** Fused activations done natively; others (prelu) use the original kernel. */
export const NATIVE_ACTIVATIONS = [
  "linear",
  "relu",
  "relu6",
  "leakyrelu",
  "sigmoid",
  "elu",
] as const;

/** One of {@linkcode NATIVE_ACTIVATIONS}. */
export type NativeActivation = typeof NATIVE_ACTIVATIONS[number];

/** Whether `name` (undefined means linear) is done natively. */
export function isNativeActivation(
  name: unknown,
): name is NativeActivation | undefined {
  return name === undefined || name === null ||
    (NATIVE_ACTIVATIONS as readonly unknown[]).includes(name);
}

/** Writes `bias` (length `n`, or 1 for a scalar) into every `n`-long row of `out`. */
export function fillRows(
  out: Float32Array,
  bias: Float32Array,
  n: number,
): void {
  if (bias.length === 1) {
    out.fill(bias[0]);
    return;
  }
  for (let o = 0; o < out.length; o += n) out.set(bias, o);
}

/** Applies an activation to `out` in place (tfjs formulas, NaN passes through). */
export function activateInPlace(
  out: Float32Array,
  activation: NativeActivation | undefined,
  leakyreluAlpha = 0.2,
): void {
  const len = out.length;
  switch (activation ?? "linear") {
    case "linear":
      return;
    case "relu":
      for (let i = 0; i < len; i++) if (out[i] < 0) out[i] = 0;
      return;
    case "relu6":
      for (let i = 0; i < len; i++) {
        const v = out[i];
        if (v < 0) out[i] = 0;
        else if (v > 6) out[i] = 6;
      }
      return;
    case "leakyrelu":
      for (let i = 0; i < len; i++) if (out[i] < 0) out[i] *= leakyreluAlpha;
      return;
    case "sigmoid":
      for (let i = 0; i < len; i++) out[i] = 1 / (1 + Math.exp(-out[i]));
      return;
    case "elu":
      for (let i = 0; i < len; i++) if (out[i] < 0) out[i] = Math.expm1(out[i]);
      return;
  }
}
