/**
 * Rein ("Stronger, Fewer, & Superior", CVPR 2024): learnable tokens that
 * refine the patch tokens after every backbone block. The CLS token passes
 * through unchanged.
 *
 * Named dimensions: B batch, N tokens (CLS first), R = B(N-1) patch tokens,
 * D width, M learnable tokens a layer.
 *
 * @module
 */
import { tf } from "../backend/tf.ts";
import type { Tensor } from "../backend/tf.ts";
import type { BlockHook } from "./dinov2.ts";
import { dense, matMulFast, softmaxGrad } from "./layers.ts";
import type { ParamSet } from "./params.ts";

/** Rein over the `reins.*` variables of a {@linkcode ParamSet}. */
export class Rein implements BlockHook {
  readonly params: ParamSet;
  readonly prefix: string;
  /** Rein refines the patch tokens only; the CLS token passes unchanged. */
  readonly keepsCls = true;

  /** `prefix` is prepended to `reins.*` names (e.g. for a second model). */
  constructor(params: ParamSet, options: { prefix?: string } = {}) {
    this.params = params;
    this.prefix = options.prefix ?? "";
  }

  #p(name: string) {
    return this.params.get(`${this.prefix}reins.${name}`);
  }

  /** Depth (number of token sets). */
  get depth(): number {
    return (this.#p("learnable_tokens").shape as number[])[0];
  }

  /**
   * `x + scale * delta_f(attn[:, :, 1:] @ token2feat(T[1:]) + x)` on the patch
   * tokens, with `attn = softmax(x T^T / sqrt(D))` over the layer's tokens.
   * [B, N, D] -> [B, N, D]
   */
  apply(x: Tensor, layer: number): Tensor {
    return tf.tidy(() => {
      const [b, n, d] = x.shape as number[];
      const all = this.#p("learnable_tokens"); // [L, M, D]
      const m = (all.shape as number[])[1];
      const tokens = tf.squeeze(tf.slice(all, [layer, 0, 0], [1, m, d]), [0]); // [M, D]
      const inputs = [
        x,
        tokens,
        this.#p("mlp_token2feat.weight"),
        this.#p("mlp_token2feat.bias"),
        this.#p("mlp_delta_f.weight"),
        this.#p("mlp_delta_f.bias"),
        this.#p("scale"),
      ];
      // Under a gradient tape Rein is one op with a hand-written backward:
      // tfjs's generic one keeps the gradient of every intermediate until the
      // whole backward pass ends.
      if (!tf.engine().isTapeOn()) {
        return tf.concat([
          tf.slice(x, [0, 0, 0], [b, 1, d]),
          tf.reshape(reinForward(inputs).refined, [b, n - 1, d]),
        ], 1);
      }
      const op = tf.customGrad((...args) => {
        const save = args.pop() as unknown as (ts: Tensor[]) => void;
        const ins = args as Tensor[];
        const fwd = reinForward(ins);
        // The layer's tokens are a slice made in this tidy scope: saved, or
        // they would be freed before the backward pass reads them.
        save([fwd.feats, fwd.attn, fwd.t2f, fwd.mixed, fwd.deltaF, ins[1]]);
        const value = tf.concat([
          tf.slice(x, [0, 0, 0], [b, 1, d]),
          tf.reshape(fwd.refined, [b, n - 1, d]),
        ], 1);
        return {
          value,
          gradFunc: (dy, saved) => reinBackward(dy as Tensor, saved, inputs),
        };
      });
      return op(...inputs);
    });
  }
}

/**
 * Sums over the rows of a `[R, D]` matrix as `ones[1, R] @ x`: tfjs-wasm's
 * axis-0 sum transposes first and takes ~25x as long (3.2 vs 0.13 ms at
 * [1024, 384]). `[R, D]` -> `[D]`
 */
function columnSums(x: Tensor): Tensor {
  const [rows, cols] = x.shape as number[];
  return tf.tidy(() => tf.reshape(tf.matMul(tf.ones([1, rows]), x), [cols]));
}

interface ReinForward {
  feats: Tensor; // [R, D]
  attn: Tensor; // [R, M]
  t2f: Tensor; // [M-1, D]
  mixed: Tensor; // delta + feats, [R, D]
  deltaF: Tensor; // [R, D]
  refined: Tensor; // [R, D]
}

/** The forward ops over `[x, tokens, w1, b1, w2, b2, scale]`. */
function reinForward(inputs: Tensor[]): ReinForward {
  const [x, tokens, w1, b1, w2, b2, scale] = inputs;
  const [b, n, d] = x.shape as number[];
  const m = tokens.shape[0];
  const feats = tf.reshape(tf.slice(x, [0, 1, 0], [b, n - 1, d]), [
    b * (n - 1),
    d,
  ]);
  // [R, D] x [D, M] -> [R, M]
  const attn = tf.softmax(
    tf.mul(matMulFast(feats, tokens, { transposeB: true }), 1 / Math.sqrt(d)),
    -1,
  );
  const t2f = dense(tf.slice(tokens, [1, 0], [m - 1, d]), w1, b1); // [M-1, D]
  const delta = tf.matMul(tf.slice(attn, [0, 1], [-1, m - 1]), t2f); // [R, D]
  const mixed = tf.add(delta, feats);
  const deltaF = dense(mixed, w2, b2);
  const refined = tf.add(feats, tf.mul(deltaF, scale));
  return { feats, attn, t2f, mixed, deltaF, refined };
}

/**
 * Gradients of Rein's output with respect to `[x, tokens, w1, b1, w2, b2,
 * scale]`, from the output gradient `dy` [B, N, D] and the saved
 * `[feats, attn, t2f, mixed, deltaF, tokens]` (disposed here, once used).
 */
function reinBackward(
  dy: Tensor,
  saved: Tensor[],
  inputs: Tensor[],
): Tensor[] {
  const [feats, attn, t2f, mixed, deltaF, tokens] = saved;
  const [, , w1, , w2, , scale] = inputs;
  const grads = tf.tidy(() => {
    const [b, n, d] = dy.shape as number[];
    const m = tokens.shape[0];
    const dRefined = tf.reshape(tf.slice(dy, [0, 1, 0], [b, n - 1, d]), [
      b * (n - 1),
      d,
    ]); // [R, D]
    // refined = feats + scale * deltaF
    const dScale = tf.reshape(tf.sum(tf.mul(dRefined, deltaF)), scale.shape);
    const dDeltaF = tf.mul(dRefined, scale);
    // deltaF = mixed @ w2^T + b2
    const dMixed = tf.matMul(dDeltaF, w2);
    const dW2 = matMulFast(dDeltaF, mixed, { transposeA: true });
    const dB2 = columnSums(dDeltaF);
    // mixed = attn[:, 1:] @ t2f + feats
    const attn1 = tf.slice(attn, [0, 1], [-1, m - 1]);
    const dAttn1 = matMulFast(dMixed, t2f, { transposeB: true }); // [R, M-1]
    const dT2f = matMulFast(attn1, dMixed, { transposeA: true }); // [M-1, D]
    // t2f = tokens[1:] @ w1^T + b1
    const dTokens1 = tf.matMul(dT2f, w1);
    const dW1 = matMulFast(dT2f, tf.slice(tokens, [1, 0], [m - 1, d]), {
      transposeA: true,
    });
    const dB1 = columnSums(dT2f);
    // attn = softmax(feats @ tokens^T / sqrt(D)); column 0 only normalizes.
    const dAttn = tf.concat([tf.zeros([b * (n - 1), 1]), dAttn1], 1);
    const dLogits = tf.mul(
      softmaxGrad(attn, dAttn),
      1 / Math.sqrt(d),
    ); // [R, M]
    const dFeats = tf.add(
      tf.add(dRefined, dMixed),
      tf.matMul(dLogits, tokens),
    );
    const dTokens = tf.add(
      matMulFast(dLogits, feats, { transposeA: true }),
      tf.pad(dTokens1, [[1, 0], [0, 0]]),
    );
    const dx = tf.concat([
      tf.slice(dy, [0, 0, 0], [b, 1, d]),
      tf.reshape(dFeats, [b, n - 1, d]),
    ], 1);
    return [dx, dTokens, dW1, dB1, dW2, dB2, dScale];
  });
  // The tape would free these only when the whole backward pass ends.
  tf.dispose(saved);
  return grads;
}
