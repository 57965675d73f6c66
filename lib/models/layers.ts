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
import type { Tensor } from "../backend/tf.ts";

/** LayerNorm over the last axis (biased variance, as torch). */
export function layerNorm(
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  eps = 1e-6,
): Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(normed, weight), bias);
  });
}

/** Exact GELU, `0.5 x (1 + erf(x / sqrt 2))` (torch's default, not the tanh form). */
export function gelu(x: Tensor): Tensor {
  return tf.tidy(() =>
    tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1))
  );
}

/** `x @ wT + b` over the last axis of x, with `wT` as `[in, out]`. */
export function denseT(x: Tensor, wT: Tensor, b?: Tensor): Tensor {
  return tf.tidy(() => {
    const inDim = x.shape[x.shape.length - 1];
    const outDim = (wT.shape as number[])[1];
    const flat = tf.reshape(x, [-1, inDim]);
    let y = tf.matMul(flat, wT);
    if (b) y = tf.add(y, b);
    return tf.reshape(y, [...x.shape.slice(0, -1), outDim]);
  });
}

/** `x @ w^T + b` over the last axis of x, with `w` in torch's `[out, in]` layout. */
export function dense(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  return tf.tidy(() => {
    const inDim = x.shape[x.shape.length - 1];
    const outDim = (w.shape as number[])[0];
    const flat = tf.reshape(x, [-1, inDim]);
    let y = tf.matMul(flat, w, false, true);
    if (b) y = tf.add(y, b);
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
