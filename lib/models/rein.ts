/**
 * Rein ("Stronger, Fewer, & Superior", CVPR 2024): learnable tokens that
 * refine the patch tokens after every backbone block. The CLS token passes
 * through unchanged.
 *
 * @module
 */
import { tf } from "../backend/tf.ts";
import type { Tensor } from "../backend/tf.ts";
import type { BlockHook } from "./dinov2.ts";
import { dense } from "./layers.ts";
import type { ParamSet } from "./params.ts";

/** Rein over the `reins.*` variables of a {@linkcode ParamSet}. */
export class Rein implements BlockHook {
  readonly params: ParamSet;
  readonly prefix: string;

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
      const cls = tf.slice(x, [0, 0, 0], [b, 1, d]); // [B, 1, D]
      const feats = tf.reshape(tf.slice(x, [0, 1, 0], [b, n - 1, d]), [
        b * (n - 1),
        d,
      ]);
      // [B(N-1), D] x [D, M] -> [B(N-1), M]
      const attn = tf.softmax(
        tf.mul(tf.matMul(feats, tokens, false, true), 1 / Math.sqrt(d)),
        -1,
      );
      const t2f = dense(
        tf.slice(tokens, [1, 0], [m - 1, d]),
        this.#p("mlp_token2feat.weight"),
        this.#p("mlp_token2feat.bias"),
      ); // [M-1, D]
      const delta = tf.matMul(tf.slice(attn, [0, 1], [-1, m - 1]), t2f); // [B(N-1), D]
      const deltaF = dense(
        tf.add(delta, feats),
        this.#p("mlp_delta_f.weight"),
        this.#p("mlp_delta_f.bias"),
      );
      const refined = tf.add(feats, tf.mul(deltaF, this.#p("scale")));
      return tf.concat([cls, tf.reshape(refined, [b, n - 1, d])], 1);
    });
  }
}
