/**
 * Small building blocks shared by the ViT, Rein and the heads.
 *
 * Linear layers keep PyTorch's weight layout `[out, in]` for trainable
 * parameters (so checkpoints use the reference's names and shapes); frozen
 * linears are stored pre-transposed as `[in, out]` to skip a transpose per call.
 *
 * @module
 */
import { tf } from "../backend/tf.ts";
import type { Tensor, Tensor2D } from "../backend/tf.ts";
import { activeNativeKernels } from "../backend/native/kernels.ts";

/** What a hand-written LayerNorm backward needs from the forward. */
export interface LayerNormStats {
  /** `(x - mean) / sqrt(var + eps)`, the shape of x. */
  xhat: Tensor;
  /** `1 / sqrt(var + eps)`, x's shape with a last axis of 1. */
  rstd: Tensor;
}

/** The normalized input of a LayerNorm over the last axis (biased variance, as torch). */
export function layerNormStats(x: Tensor, eps = 1e-6): LayerNormStats {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    const rstd = tf.rsqrt(tf.add(variance, eps));
    return { xhat: tf.mul(tf.sub(x, mean), rstd), rstd };
  });
}

/** LayerNorm over the last axis (biased variance, as torch). */
export function layerNorm(
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  eps = 1e-6,
): Tensor {
  return layerNormParts(x, weight, bias, { eps }).y;
}

/**
 * Whether the added kernel `name` (native or C, see kernels.ts) serves this
 * call: float32 tensors, no gradient tape (it has no gradient of its own),
 * and registered on the current backend.
 */
function addedKernelFor(
  name: string,
  ...tensors: (Tensor | undefined)[]
): boolean {
  return tensors.every((t) => t === undefined || t.dtype === "float32") &&
    !tf.engine().isTapeOn() &&
    tf.getKernel(name, tf.getBackend()) !== undefined;
}

/**
 * {@linkcode layerNorm} and, with `stats`, the {@linkcode LayerNormStats}
 * its backward needs. One pass of the C `LayerNormParts` kernel where it is
 * registered (outside gradient tapes), else op by op.
 */
export function layerNormParts(
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  options: { stats?: boolean; eps?: number } = {},
): { y: Tensor; stats?: LayerNormStats } {
  const eps = options.eps ?? 1e-6;
  if (addedKernelFor("LayerNormParts", x, weight, bias)) {
    const [y, xhat, rstd] = tf.engine().runKernel(
      "LayerNormParts",
      { x, weight, bias },
      { eps, stats: options.stats ?? false },
    ) as Tensor[];
    return options.stats ? { y, stats: { xhat, rstd } } : { y };
  }
  const out = tf.tidy((): Record<string, Tensor> => {
    const { xhat, rstd } = layerNormStats(x, eps);
    const y = tf.add(tf.mul(xhat, weight), bias);
    return options.stats ? { y, xhat, rstd } : { y };
  });
  return options.stats
    ? { y: out.y, stats: { xhat: out.xhat, rstd: out.rstd } }
    : { y: out.y };
}

/**
 * The gradient of {@linkcode layerNorm} with respect to its input, from the
 * output gradient `dy` and the forward's {@linkcode LayerNormStats}:
 * `rstd * (g - mean(g) - xhat * mean(g * xhat))` with `g = dy * weight`,
 * plus `residual` when given (the skip connection's gradient). One pass of
 * the C `LayerNormGrad` kernel where it is registered (outside tapes).
 */
export function layerNormBackward(
  dy: Tensor,
  stats: LayerNormStats,
  weight: Tensor,
  residual?: Tensor,
): Tensor {
  const { xhat, rstd } = stats;
  if (addedKernelFor("LayerNormGrad", dy, xhat, rstd, weight, residual)) {
    const inputs: Record<string, Tensor> = { dy, xhat, rstd, weight };
    if (residual !== undefined) inputs.residual = residual;
    return tf.engine().runKernel("LayerNormGrad", inputs, {}) as Tensor;
  }
  return tf.tidy(() => {
    const g = tf.mul(dy, weight);
    const centered = tf.sub(g, tf.mean(g, -1, true));
    const proj = tf.mul(xhat, tf.mean(tf.mul(g, xhat), -1, true));
    const dx = tf.mul(tf.sub(centered, proj), rstd);
    return residual === undefined ? dx : tf.add(residual, dx);
  });
}

/** Exact GELU, `0.5 x (1 + erf(x / sqrt 2))` (torch's default, not the tanh form). */
export function gelu(x: Tensor): Tensor {
  return geluParts(x).y;
}

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * {@linkcode gelu} and, with `derivative`, its slope
 * `0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)` (reusing the erf).
 */
export function geluParts(
  x: Tensor,
  options: { derivative?: boolean } = {},
): { y: Tensor; dydx?: Tensor } {
  // The native one-pass kernel, where registered; it has no gradient, so
  // not under a gradient tape (a trainable backbone takes the ops below).
  if (addedKernelFor("GeluParts", x)) {
    const [y, dydx] = tf.engine().runKernel("GeluParts", { x }, {
      derivative: options.derivative ?? false,
    }) as Tensor[];
    return { y, dydx };
  }
  return tf.tidy(() => {
    const cdf2 = tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1); // 2 Phi(x)
    const y = tf.mul(tf.mul(x, 0.5), cdf2);
    if (!options.derivative) return { y };
    const pdf = tf.mul(tf.exp(tf.mul(tf.square(x), -0.5)), INV_SQRT_2PI);
    return { y, dydx: tf.add(tf.mul(cdf2, 0.5), tf.mul(x, pdf)) };
  });
}

/**
 * The gradient of `probs = softmax(s)` over the last axis with respect to
 * `s`, from the output gradient `dy`: `probs * (dy - sum(dy * probs))`.
 * One native pass where the `SoftmaxGrad` kernel is registered (outside
 * gradient tapes: it has no gradient of its own).
 */
export function softmaxGrad(probs: Tensor, dy: Tensor): Tensor {
  if (addedKernelFor("SoftmaxGrad", probs, dy)) {
    return tf.engine().runKernel("SoftmaxGrad", { probs, dy }, {}) as Tensor;
  }
  return tf.tidy(() =>
    tf.mul(probs, tf.sub(dy, tf.sum(tf.mul(dy, probs), -1, true)))
  );
}

/**
 * Whether matmuls should get no transposed operand: tfjs-wasm's own matmul
 * (no OpenBLAS kernels) runs ~20x slower with a transposed operand (2.3 vs
 * 43 GFLOP/s at [1040, 1536] x [1536, 384]) than after an explicit transpose.
 */
export function plainMatMulOperands(): boolean {
  return tf.getBackend() === "wasm" &&
    !activeNativeKernels("wasm").includes("BatchMatMul");
}

/** Options of {@linkcode matMulFast}. */
export interface MatMulOptions {
  /** Use `a` with its last two axes swapped. @default false */
  transposeA?: boolean;
  /** Use `b` with its last two axes swapped. @default false */
  transposeB?: boolean;
}

function swapLast(t: Tensor): Tensor {
  const perm = [...t.shape.keys()];
  [perm[perm.length - 2], perm[perm.length - 1]] = [
    perm[perm.length - 1],
    perm[perm.length - 2],
  ];
  return tf.transpose(t, perm);
}

/**
 * `tf.matMul` for a hand-written backward: on plain tfjs-wasm the
 * transposes are made explicit first (see {@linkcode plainMatMulOperands}).
 */
export function matMulFast(
  a: Tensor,
  b: Tensor,
  options: MatMulOptions = {},
): Tensor {
  const { transposeA = false, transposeB = false } = options;
  if ((transposeA || transposeB) && plainMatMulOperands()) {
    return tf.tidy(() =>
      tf.matMul(
        transposeA ? swapLast(a) : a,
        transposeB ? swapLast(b) : b,
      )
    );
  }
  return tf.matMul(a, b, transposeA, transposeB);
}

/** `x @ wT + b` over the last axis of x, with `wT` as `[in, out]`. */
export function denseT(x: Tensor, wT: Tensor, b?: Tensor): Tensor {
  return tf.tidy(() => {
    const inDim = x.shape[x.shape.length - 1];
    const outDim = (wT.shape as number[])[1];
    const flat = tf.reshape(x, [-1, inDim]) as Tensor2D;
    // Fused: one pass, the bias written before the product is accumulated.
    const y = tf.fused.matMul({ a: flat, b: wT as Tensor2D, bias: b });
    return tf.reshape(y, [...x.shape.slice(0, -1), outDim]);
  });
}

/** `x @ w^T + b` over the last axis of x, with `w` in torch's `[out, in]` layout. */
export function dense(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  return tf.tidy(() => {
    const inDim = x.shape[x.shape.length - 1];
    const outDim = (w.shape as number[])[0];
    const flat = tf.reshape(x, [-1, inDim]) as Tensor2D;
    // tfjs-wasm's own _FusedMatMul is wrong with a bias and a transposed b
    // (4.22); there, add the bias separately.
    const y = plainMatMulOperands()
      ? (b
        ? tf.add(matMulFast(flat, w, { transposeB: true }), b)
        : matMulFast(flat, w, {
          transposeB: true,
        }))
      : tf.fused.matMul({
        a: flat,
        b: w as Tensor2D,
        transposeB: true,
        bias: b,
      });
    return tf.reshape(y, [...x.shape.slice(0, -1), outDim]);
  });
}

/** Mean cross-entropy of integer labels, `[B, C]` logits -> scalar. */
export function crossEntropy(logits: Tensor, labels: Tensor): Tensor {
  return tf.mean(perSampleCrossEntropy(logits, labels));
}

/** Cross-entropy of each sample, `[B, C]` logits -> `[B]`. */
export function perSampleCrossEntropy(logits: Tensor, labels: Tensor): Tensor {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits, -1);
    const oneHot = tf.oneHot(
      tf.cast(labels, "int32"),
      logits.shape[1] as number,
    );
    return tf.neg(tf.sum(tf.mul(logp, oneHot), -1));
  });
}
