/**
 * The frozen DINOv2 ViT backbone: patch embedding, CLS token, interpolated
 * position embeddings, pre-norm blocks with LayerScale, and the final norm.
 *
 * Backbone weights are plain tensors, never variables, so they never enter a
 * gradient: gradients flow *through* the blocks to the Rein adapters.
 *
 * Named dimensions in shape comments: B batch, H/W pixels, h/w patches a side,
 * N = 1 + h*w tokens, D embedding, K heads, d = D/K head size, F MLP hidden.
 *
 * @module
 */
import { tf, tidyHost } from "../backend/tf.ts";
import type { Tensor, Variable } from "../backend/tf.ts";
import type { HostTensor } from "../weights/host_tensor.ts";
import type { DinoVariant } from "../weights/variant.ts";
import { interpolatePosEmbed } from "./pos_embed.ts";
import { denseT, gelu, layerNorm } from "./layers.ts";

/** Something applied to all tokens after block `i` (Rein is one). */
export interface BlockHook {
  apply(x: Tensor, layer: number): Tensor;
}

interface BlockWeights {
  norm1W: Tensor;
  norm1B: Tensor;
  qkvT: Tensor; // [D, 3D]
  qkvB: Tensor;
  projT: Tensor; // [D, D]
  projB: Tensor;
  ls1: Tensor;
  norm2W: Tensor;
  norm2B: Tensor;
  fc1T: Tensor; // [D, F]
  fc1B: Tensor;
  fc2T: Tensor; // [F, D]
  fc2B: Tensor;
  ls2: Tensor;
}

function need(params: Map<string, HostTensor>, key: string): HostTensor {
  const t = params.get(key);
  if (!t) throw new Error(`Missing backbone weight "${key}"`);
  return t;
}

function hostToTensor(t: HostTensor): Tensor {
  return tf.tensor(t.data as Float32Array, t.shape, "float32");
}

/** The frozen DINOv2 backbone. Call {@linkcode Dinov2.dispose} when done. */
export class Dinov2 {
  readonly variant: DinoVariant;
  readonly #posEmbedHost: HostTensor;
  readonly #posCache = new Map<string, Tensor>();
  readonly #patchWT: Tensor; // [P*P*3, D], rows ordered (ky, kx, c) to match NHWC patches
  readonly #patchB: Tensor;
  readonly #cls: Tensor; // [1, 1, D]
  readonly #blocks: BlockWeights[];
  readonly #normW: Tensor;
  readonly #normB: Tensor;

  readonly #trainable: boolean;
  readonly #made: Tensor[] = [];

  /**
   * Builds the backbone from reference-named weights (see `loadDinov2Weights`).
   * With `trainable`, every weight is a tfjs variable (for pre-training the
   * demo's backbone); see {@linkcode Dinov2.variables} and {@linkcode Dinov2.toHost}.
   */
  constructor(
    variant: DinoVariant,
    params: Map<string, HostTensor>,
    options: { trainable?: boolean } = {},
  ) {
    this.variant = variant;
    this.#trainable = options.trainable ?? false;
    const own = (t: Tensor): Tensor => {
      const v = this.#trainable ? tf.variable(t, true) : t;
      if (v !== t) t.dispose();
      this.#made.push(v);
      return v;
    };
    const toTensor = (t: HostTensor) => own(hostToTensor(t));
    // A torch `[out, in]` weight as a `[in, out]` tensor.
    const transposed = (t: HostTensor) =>
      own(tf.tidy(() => tf.transpose(hostToTensor(t))));
    const p = variant.patchSize;
    const d = variant.embedDim;
    this.#posEmbedHost = need(params, "pos_embed");
    const proj = need(params, "patch_embed.proj.weight"); // [D, 3, P, P]
    this.#patchWT = own(
      tf.tidy(() =>
        tf.reshape(tf.transpose(hostToTensor(proj), [2, 3, 1, 0]), [
          p * p * 3,
          d,
        ])
      ),
    );
    this.#patchB = toTensor(need(params, "patch_embed.proj.bias"));
    this.#cls = toTensor(need(params, "cls_token"));
    this.#blocks = [];
    for (let i = 0; i < variant.depth; i++) {
      const k = (name: string) => need(params, `blocks.${i}.${name}`);
      this.#blocks.push({
        norm1W: toTensor(k("norm1.weight")),
        norm1B: toTensor(k("norm1.bias")),
        qkvT: transposed(k("attn.qkv.weight")),
        qkvB: toTensor(k("attn.qkv.bias")),
        projT: transposed(k("attn.proj.weight")),
        projB: toTensor(k("attn.proj.bias")),
        ls1: toTensor(k("ls1.gamma")),
        norm2W: toTensor(k("norm2.weight")),
        norm2B: toTensor(k("norm2.bias")),
        fc1T: transposed(k("mlp.fc1.weight")),
        fc1B: toTensor(k("mlp.fc1.bias")),
        fc2T: transposed(k("mlp.fc2.weight")),
        fc2B: toTensor(k("mlp.fc2.bias")),
        ls2: toTensor(k("ls2.gamma")),
      });
    }
    this.#normW = toTensor(need(params, "norm.weight"));
    this.#normB = toTensor(need(params, "norm.bias"));
  }

  /** Position embeddings for a `height x width` input: `[1, N, D]` (cached per size). */
  posEmbed(height: number, width: number): Tensor {
    const key = `${height}x${width}`;
    let t = this.#posCache.get(key);
    if (!t) {
      // Kept: it is first made inside some caller's tidy scope, then cached.
      t = tf.keep(hostToTensor(
        interpolatePosEmbed(
          this.#posEmbedHost,
          height,
          width,
          this.variant.patchSize,
        ),
      ));
      this.#posCache.set(key, t);
    }
    return t;
  }

  /** Patch embedding + CLS + position embeddings: `[B, H, W, 3]` -> `[B, N, D]`. */
  embed(images: Tensor): Tensor {
    if (images.rank !== 4 || images.shape[3] !== 3) {
      throw new RangeError(
        `Dinov2.embed(): images must be [B, H, W, 3] (NHWC), got [${images.shape}]`,
      );
    }
    const [b, height, width] = images.shape as number[];
    const p = this.variant.patchSize;
    const h = Math.floor(height / p);
    const w = Math.floor(width / p);
    const pos = this.posEmbed(height, width);
    return tf.tidy(() => {
      let x = images;
      // A stride-P conv ignores the remainder rows/columns; so do we.
      if (h * p !== height || w * p !== width) {
        x = tf.slice(x, [0, 0, 0, 0], [b, h * p, w * p, 3]);
      }
      // [B, H, W, 3] -> [B, h, P, w, P, 3] -> [B, h, w, P, P, 3] -> [B*h*w, P*P*3]
      const patches = tf.reshape(
        tf.transpose(tf.reshape(x, [b, h, p, w, p, 3]), [0, 1, 3, 2, 4, 5]),
        [b * h * w, p * p * 3],
      );
      // [B*h*w, P*P*3] -> [B, h*w, D]
      const tokens = tf.reshape(
        tf.add(tf.matMul(patches, this.#patchWT), this.#patchB),
        [b, h * w, this.variant.embedDim],
      );
      const cls = tf.tile(this.#cls, [b, 1, 1]); // [B, 1, D]
      return tf.add(tf.concat([cls, tokens], 1), pos); // [B, N, D]
    });
  }

  /** Block `i`: `x + ls1 * attn(norm1(x))`, then `x + ls2 * mlp(norm2(x))`. [B, N, D] -> [B, N, D] */
  block(i: number, x: Tensor): Tensor {
    const blk = this.#blocks[i];
    const { numHeads, embedDim } = this.variant;
    const headDim = embedDim / numHeads;
    return tf.tidy(() => {
      const [b, n] = x.shape as number[];
      // Attention. [B, N, D] -> [B, N, 3D] -> [3, B, K, N, d]
      const qkv = tf.transpose(
        tf.reshape(
          denseT(layerNorm(x, blk.norm1W, blk.norm1B), blk.qkvT, blk.qkvB),
          [b, n, 3, numHeads, headDim],
        ),
        [2, 0, 3, 1, 4],
      );
      const [q, k, v] = tf.unstack(qkv, 0) as Tensor[]; // each [B, K, N, d]
      const scores = tf.matMul(
        tf.reshape(tf.mul(q, 1 / Math.sqrt(headDim)), [
          b * numHeads,
          n,
          headDim,
        ]),
        tf.reshape(k, [b * numHeads, n, headDim]),
        false,
        true,
      ); // [B*K, N, N]
      const ctx = tf.matMul(
        tf.softmax(scores, -1),
        tf.reshape(v, [b * numHeads, n, headDim]),
      ); // [B*K, N, d]
      const merged = tf.reshape(
        tf.transpose(tf.reshape(ctx, [b, numHeads, n, headDim]), [0, 2, 1, 3]),
        [b, n, embedDim],
      );
      const attnOut = denseT(merged, blk.projT, blk.projB);
      const x1 = tf.add(x, tf.mul(attnOut, blk.ls1));
      // MLP. [B, N, D] -> [B, N, F] -> [B, N, D]
      const hidden = gelu(
        denseT(layerNorm(x1, blk.norm2W, blk.norm2B), blk.fc1T, blk.fc1B),
      );
      return tf.add(x1, tf.mul(denseT(hidden, blk.fc2T, blk.fc2B), blk.ls2));
    });
  }

  /**
   * All tokens after the last block, before the final norm: the reference's
   * `forward_features` (with a hook such as Rein after every block) or
   * `forward_features_no_rein` (without). `[B, H, W, 3]` -> `[B, N, D]`
   */
  forwardFeatures(images: Tensor, hook?: BlockHook): Tensor {
    return this.forwardTokens(this.embed(images), hook, true);
  }

  /** The blocks (and hook) over embedded tokens; disposes `tokens` when `consume`. */
  forwardTokens(tokens: Tensor, hook?: BlockHook, consume = false): Tensor {
    return tf.tidy(() => {
      let x = tokens;
      for (let i = 0; i < this.#blocks.length; i++) {
        x = this.block(i, x);
        if (hook) x = hook.apply(x, i);
      }
      if (consume) tokens.dispose();
      return x;
    });
  }

  /** The final LayerNorm. [..., D] -> [..., D] */
  norm(x: Tensor): Tensor {
    return layerNorm(x, this.#normW, this.#normB);
  }

  /** The CLS token of `[B, N, D]` tokens: `[B, D]`. */
  static cls(tokens: Tensor): Tensor {
    return tf.tidy(() =>
      tf.squeeze(tf.slice(tokens, [0, 0, 0], [-1, 1, -1]), [1])
    );
  }

  /** Final-normed CLS (torch hub's `model(x)`): `[B, N, D]` tokens -> `[B, D]`. */
  normedCls(tokens: Tensor): Tensor {
    return tf.tidy(() => this.norm(Dinov2.cls(tokens)));
  }

  /** The weights as variables (only for a `trainable` backbone). */
  variables(): Variable[] {
    if (!this.#trainable) {
      throw new Error("Dinov2.variables(): the backbone is frozen");
    }
    return this.#made as Variable[];
  }

  /**
   * The weights under reference names and layouts. `pos_embed` is the
   * pre-trained grid as given (a trainable backbone does not train it).
   */
  toHost(): Map<string, HostTensor> {
    const out = new Map<string, HostTensor>();
    const read = (t: Tensor): HostTensor => ({
      dtype: "F32",
      shape: [...t.shape],
      data: new Float32Array(t.dataSync() as Float32Array),
    });
    const { patchSize: p, embedDim: d } = this.variant;
    tidyHost(() => {
      out.set("cls_token", read(this.#cls));
      out.set("mask_token", {
        dtype: "F32",
        shape: [1, d],
        data: new Float32Array(d),
      });
      out.set("pos_embed", this.#posEmbedHost);
      // [P*P*3, D] rows (ky, kx, c) -> [D, 3, P, P]
      const proj = tf.transpose(tf.reshape(this.#patchWT, [p, p, 3, d]), [
        3,
        2,
        0,
        1,
      ]);
      out.set("patch_embed.proj.weight", read(proj));
      out.set("patch_embed.proj.bias", read(this.#patchB));
      this.#blocks.forEach((b, i) => {
        const k = (name: string) => `blocks.${i}.${name}`;
        const linear = (name: string, wT: Tensor, bias: Tensor) => {
          out.set(k(`${name}.weight`), read(tf.transpose(wT)));
          out.set(k(`${name}.bias`), read(bias));
        };
        out.set(k("norm1.weight"), read(b.norm1W));
        out.set(k("norm1.bias"), read(b.norm1B));
        linear("attn.qkv", b.qkvT, b.qkvB);
        linear("attn.proj", b.projT, b.projB);
        out.set(k("ls1.gamma"), read(b.ls1));
        out.set(k("norm2.weight"), read(b.norm2W));
        out.set(k("norm2.bias"), read(b.norm2B));
        linear("mlp.fc1", b.fc1T, b.fc1B);
        linear("mlp.fc2", b.fc2T, b.fc2B);
        out.set(k("ls2.gamma"), read(b.ls2));
      });
      out.set("norm.weight", read(this.#normW));
      out.set("norm.bias", read(this.#normB));
    });
    return out;
  }

  /** Frees every tensor the backbone holds. */
  dispose(): void {
    tf.dispose([...this.#made, ...this.#posCache.values()]);
    this.#made.length = 0;
    this.#posCache.clear();
  }
}
