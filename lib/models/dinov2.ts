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
import { readFloats, tf, tidyHostAsync } from "../backend/tf.ts";
import type { Tensor, Variable } from "../backend/tf.ts";
import type { HostTensor } from "../weights/host_tensor.ts";
import type { DinoVariant } from "../weights/variant.ts";
import { interpolatePosEmbed } from "./pos_embed.ts";
import {
  denseT,
  geluParts,
  layerNorm,
  layerNormBackward,
  layerNormParts,
  matMulFast,
  softmaxGrad,
} from "./layers.ts";

/** Something applied to all tokens after block `i` (Rein is one). */
export interface BlockHook {
  apply(x: Tensor, layer: number): Tensor;
  /**
   * True when the hook leaves the CLS token (index 0) unchanged, so that
   * {@linkcode Dinov2.forwardCls} may skip it after the last block.
   */
  readonly keepsCls?: boolean;
}

interface BlockWeights {
  norm1W: Tensor;
  norm1B: Tensor;
  /**
   * Frozen: the q, k and v thirds of the fused qkv linear, `[D, D]` and `[D]`
   * each, so that heads come out of three matmuls without a rank-5 transpose.
   * Trainable: the fused `[D, 3D]` and `[3D]` variables alone.
   */
  qkvT: Tensor[];
  qkvB: Tensor[];
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

/** The q, k, v thirds of qkv weights kept whole (trainable) or split (frozen). */
function qkvThirds(parts: Tensor[], axis: number): Tensor[] {
  return parts.length === 3 ? parts : tf.split(parts[0], 3, axis);
}

/** `[BN, D]` -> `[BK, N, d]`: one row of attention inputs per head. */
function splitHeads(t: Tensor, b: number, n: number, heads: number): Tensor {
  const d = (t.shape as number[])[1] / heads;
  return tf.reshape(
    tf.transpose(tf.reshape(t, [b, n, heads, d]), [0, 2, 1, 3]),
    [b * heads, n, d],
  );
}

/** The MLP half of a block: `x1 + ls2 * fc2(gelu(fc1(norm2(x1))))`, rows of `[R, D]`. */
function mlpForward(
  blk: BlockWeights,
  x1: Tensor,
  keep: boolean,
): { y: Tensor; xhat2?: Tensor; rstd2?: Tensor; geluSlope?: Tensor } {
  const ln2 = layerNormParts(x1, blk.norm2W, blk.norm2B, { stats: keep });
  const hidden = denseT(ln2.y, blk.fc1T, blk.fc1B);
  const act = geluParts(hidden, { derivative: keep });
  const y = tf.add(x1, tf.mul(denseT(act.y, blk.fc2T, blk.fc2B), blk.ls2));
  return {
    y,
    xhat2: ln2.stats?.xhat,
    rstd2: ln2.stats?.rstd,
    geluSlope: act.dydx,
  };
}

/** The gradient of {@linkcode mlpForward} with respect to `x1`, rows of `[R, D]`. */
function mlpBackward(
  blk: BlockWeights,
  dy: Tensor,
  xhat2: Tensor,
  rstd2: Tensor,
  geluSlope: Tensor,
): Tensor {
  const byT = (a: Tensor, w: Tensor) => matMulFast(a, w, { transposeB: true });
  const dAct = byT(tf.mul(dy, blk.ls2), blk.fc2T); // [R, F]
  const dNorm2 = byT(tf.mul(dAct, geluSlope), blk.fc1T);
  return layerNormBackward(
    dNorm2,
    { xhat: xhat2, rstd: rstd2 },
    blk.norm2W,
    dy,
  );
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
    // The q, k, v row blocks of a fused torch qkv weight `[3D, D]` (or bias
    // `[3D]`), as views: no temporary tensors fragment the heap.
    const thirds = (t: HostTensor): HostTensor[] => {
      const size = t.data.length / 3;
      return [0, 1, 2].map((j) => ({
        dtype: t.dtype,
        shape: [t.shape[0] / 3, ...t.shape.slice(1)],
        data: (t.data as Float32Array).subarray(j * size, (j + 1) * size),
      }));
    };
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
        qkvT: this.#trainable
          ? [transposed(k("attn.qkv.weight"))]
          : thirds(k("attn.qkv.weight")).map(transposed),
        qkvB: this.#trainable
          ? [toTensor(k("attn.qkv.bias"))]
          : thirds(k("attn.qkv.bias")).map(toTensor),
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
    // A frozen block under a gradient tape gets a hand-written backward to
    // its input: tfjs's generic one keeps every intermediate and every
    // intermediate's gradient until the whole backward pass ends (GBs for
    // ViT-S), while this one keeps 9 tensors a block and frees them as it goes.
    if (!this.#trainable && tf.engine().isTapeOn()) {
      return this.#frozenBlock(i)(x);
    }
    return tf.tidy(() => this.#blockForward(i, x).y);
  }

  /** Block `i` as one op whose gradient is {@linkcode Dinov2.#blockBackward}. */
  #frozenBlock(i: number): (x: Tensor) => Tensor {
    return tf.customGrad((x, save) => {
      const { y, saved } = this.#blockForward(i, x as Tensor, true);
      (save as (ts: Tensor[]) => void)(saved!);
      return {
        value: y,
        gradFunc: (dy, kept) => this.#blockBackward(i, dy as Tensor, kept),
      };
    }) as (x: Tensor) => Tensor;
  }

  /**
   * The block's forward ops; with `keep`, also what the backward needs:
   * `[xhat1, rstd1, q * scale, k, v, probs, xhat2, rstd2, gelu'(h)]`.
   */
  #blockForward(
    i: number,
    x: Tensor,
    keep = false,
  ): { y: Tensor; saved?: Tensor[] } {
    const blk = this.#blocks[i];
    const { numHeads, embedDim } = this.variant;
    const headDim = embedDim / numHeads;
    const [b, n] = x.shape as number[];
    const flat = tf.reshape(x, [b * n, embedDim]); // [BN, D]
    // Attention. [BN, D] -> 3 x [BN, D] -> 3 x [BK, N, d]
    const ln1 = layerNormParts(flat, blk.norm1W, blk.norm1B, { stats: keep });
    const normed1 = ln1.y;
    const wT = qkvThirds(blk.qkvT, 1);
    const bias = qkvThirds(blk.qkvB, 0);
    const [q, k, v] = [0, 1, 2].map((j) =>
      splitHeads(denseT(normed1, wT[j], bias[j]), b, n, numHeads)
    );
    const qs = tf.mul(q, 1 / Math.sqrt(headDim));
    const probs = tf.softmax(matMulFast(qs, k, { transposeB: true }), -1); // [BK, N, N]
    const ctx = tf.matMul(probs, v); // [BK, N, d]
    const merged = tf.reshape(
      tf.transpose(tf.reshape(ctx, [b, numHeads, n, headDim]), [0, 2, 1, 3]),
      [b * n, embedDim],
    );
    const attnOut = denseT(merged, blk.projT, blk.projB);
    const x1 = tf.add(flat, tf.mul(attnOut, blk.ls1));
    // MLP. [BN, D] -> [BN, F] -> [BN, D]
    const mlp = mlpForward(blk, x1, keep);
    const y = tf.reshape(mlp.y, [b, n, embedDim]);
    if (!keep) return { y };
    return {
      y,
      saved: [
        ln1.stats!.xhat,
        ln1.stats!.rstd,
        qs,
        k,
        v,
        probs,
        mlp.xhat2!,
        mlp.rstd2!,
        mlp.geluSlope!,
      ],
    };
  }

  /** The gradient of block `i` with respect to its input. [B, N, D] -> [B, N, D] */
  #blockBackward(i: number, dy: Tensor, saved: Tensor[]): Tensor {
    const blk = this.#blocks[i];
    const { numHeads, embedDim } = this.variant;
    const headDim = embedDim / numHeads;
    const [b, n] = dy.shape as number[];
    const [xhat1, rstd1, qs, k, v, probs, xhat2, rstd2, geluSlope] = saved;
    const dx = tf.tidy(() => {
      const byT = (a: Tensor, w: Tensor) =>
        matMulFast(a, w, { transposeB: true });
      const dyFlat = tf.reshape(dy, [b * n, embedDim]); // [BN, D]
      // MLP: y = x1 + ls2 * fc2(gelu(fc1(norm2(x1)))).
      const dx1 = mlpBackward(blk, dyFlat, xhat2, rstd2, geluSlope);
      // Attention: x1 = x + ls1 * proj(merge(softmax(qs k^T) v)).
      const dMerged = byT(tf.mul(dx1, blk.ls1), blk.projT);
      const dCtx = splitHeads(dMerged, b, n, numHeads); // [BK, N, d]
      const dProbs = matMulFast(dCtx, v, { transposeB: true }); // [BK, N, N]
      const dv = matMulFast(probs, dCtx, { transposeA: true });
      const dScores = softmaxGrad(probs, dProbs);
      const dq = tf.mul(tf.matMul(dScores, k), 1 / Math.sqrt(headDim));
      const dk = matMulFast(dScores, qs, { transposeA: true });
      // [BK, N, d] -> [B, N, K, d] = [BN, D], then through each third of qkv.
      const wT = qkvThirds(blk.qkvT, 1);
      const [gq, gk, gv] = [dq, dk, dv].map((g, j) =>
        byT(
          tf.reshape(
            tf.transpose(tf.reshape(g, [b, numHeads, n, headDim]), [
              0,
              2,
              1,
              3,
            ]),
            [b * n, embedDim],
          ),
          wT[j],
        )
      );
      const dNorm1 = tf.add(tf.add(gq, gk), gv);
      const dxFlat = layerNormBackward(
        dNorm1,
        { xhat: xhat1, rstd: rstd1 },
        blk.norm1W,
        dx1,
      );
      return tf.reshape(dxFlat, [b, n, embedDim]);
    });
    // The tape would free these only when the whole backward pass ends.
    tf.dispose(saved);
    return dx;
  }

  /**
   * All tokens after the last block, before the final norm: the reference's
   * `forward_features` (with a hook such as Rein after every block) or
   * `forward_features_no_rein` (without). `[B, H, W, 3]` -> `[B, N, D]`
   */
  forwardFeatures(images: Tensor, hook?: BlockHook): Tensor {
    return this.forwardTokens(this.embed(images), hook, true);
  }

  /**
   * The CLS token after the last block (and hook): `Dinov2.cls` of
   * {@linkcode Dinov2.forwardTokens}, computing the last block for the CLS
   * query only (its keys and values still come from every token): about 7%
   * of a ViT-S forward. `[B, N, D]` -> `[B, D]`
   *
   * With `from: i`, `tokens` are the output of block `i - 1` before its
   * hook (see {@linkcode Dinov2.block}), so that callers that run several
   * hooks over the same input share the blocks before the first hook.
   * @param options.from First block to run. @default 0
   */
  forwardCls(
    tokens: Tensor,
    hook?: BlockHook,
    options: { from?: number } = {},
  ): Tensor {
    const from = options.from ?? 0;
    const last = this.#blocks.length - 1;
    if (!Number.isInteger(from) || from < 0 || from > last) {
      throw new RangeError(
        `Dinov2.forwardCls(): "from" must be an integer in [0, ${last}], got ${from}`,
      );
    }
    return tf.tidy(() => {
      let x = tokens;
      if (from > 0 && hook) x = hook.apply(x, from - 1);
      for (let i = from; i < last; i++) {
        x = this.block(i, x);
        if (hook) x = hook.apply(x, i);
      }
      if (hook && !hook.keepsCls) {
        return Dinov2.cls(hook.apply(this.block(last, x), last));
      }
      return this.clsBlock(last, x);
    });
  }

  /** Block `i` for the CLS token only: `[B, N, D]` -> `[B, D]` (its output row 0). */
  clsBlock(i: number, x: Tensor): Tensor {
    if (!this.#trainable && tf.engine().isTapeOn()) {
      const n = x.shape[1] as number;
      return tf.customGrad((input, save) => {
        const { y, saved } = this.#clsBlockForward(i, input as Tensor, true);
        (save as (ts: Tensor[]) => void)(saved!);
        return {
          value: y,
          gradFunc: (dy, kept) =>
            this.#clsBlockBackward(i, dy as Tensor, kept, n),
        };
      })(x);
    }
    return tf.tidy(() => this.#clsBlockForward(i, x).y);
  }

  /**
   * {@linkcode Dinov2.#blockForward} for the CLS row: keys and values of all
   * tokens, everything else of row 0. With `keep`, what the backward needs:
   * `[xhat1, rstd1, q * scale, k, v, probs, xhat2, rstd2, gelu'(h)]`.
   */
  #clsBlockForward(
    i: number,
    x: Tensor,
    keep = false,
  ): { y: Tensor; saved?: Tensor[] } {
    const blk = this.#blocks[i];
    const { numHeads, embedDim } = this.variant;
    const headDim = embedDim / numHeads;
    const [b, n] = x.shape as number[];
    const flat = tf.reshape(x, [b * n, embedDim]); // [BN, D]
    const ln1 = layerNormParts(flat, blk.norm1W, blk.norm1B, { stats: keep });
    const normed1 = ln1.y;
    const wT = qkvThirds(blk.qkvT, 1);
    const bias = qkvThirds(blk.qkvB, 0);
    // [B, D]: row 0 of every sample
    const clsRows = (t: Tensor) =>
      tf.reshape(
        tf.slice(tf.reshape(t, [b, n, embedDim]), [0, 0, 0], [
          b,
          1,
          embedDim,
        ]),
        [b, embedDim],
      );
    // One query a sample: [B, D] -> [BK, 1, d], no transpose needed.
    const q = tf.reshape(denseT(clsRows(normed1), wT[0], bias[0]), [
      b * numHeads,
      1,
      headDim,
    ]);
    const [k, v] = [1, 2].map((j) =>
      splitHeads(denseT(normed1, wT[j], bias[j]), b, n, numHeads)
    ); // each [BK, N, d]
    const qs = tf.mul(q, 1 / Math.sqrt(headDim));
    const probs = tf.softmax(matMulFast(qs, k, { transposeB: true }), -1); // [BK, 1, N]
    const merged = tf.reshape(tf.matMul(probs, v), [b, embedDim]); // [B, D]
    const attnOut = denseT(merged, blk.projT, blk.projB);
    const x1 = tf.add(clsRows(x), tf.mul(attnOut, blk.ls1)); // [B, D]
    const mlp = mlpForward(blk, x1, keep);
    if (!keep) return { y: mlp.y };
    return {
      y: mlp.y,
      saved: [
        ln1.stats!.xhat,
        ln1.stats!.rstd,
        qs,
        k,
        v,
        probs,
        mlp.xhat2!,
        mlp.rstd2!,
        mlp.geluSlope!,
      ],
    };
  }

  /** The gradient of {@linkcode Dinov2.clsBlock}: `[B, D]` -> `[B, N, D]`. */
  #clsBlockBackward(
    i: number,
    dy: Tensor,
    saved: Tensor[],
    n: number,
  ): Tensor {
    const blk = this.#blocks[i];
    const { numHeads, embedDim } = this.variant;
    const headDim = embedDim / numHeads;
    const b = dy.shape[0];
    const [xhat1, rstd1, qs, k, v, probs, xhat2, rstd2, geluSlope] = saved;
    const dx = tf.tidy(() => {
      const byT = (a: Tensor, w: Tensor) =>
        matMulFast(a, w, { transposeB: true });
      // [B, D] as row 0 of [B, N, D] (zeros elsewhere)
      const asCls = (t: Tensor) =>
        tf.pad(tf.reshape(t, [b, 1, embedDim]), [[0, 0], [0, n - 1], [0, 0]]);
      // MLP of the CLS row.
      const dx1 = mlpBackward(blk, dy, xhat2, rstd2, geluSlope); // [B, D]
      // Attention of the CLS query over all tokens.
      const dCtx = tf.reshape(byT(tf.mul(dx1, blk.ls1), blk.projT), [
        b * numHeads,
        1,
        headDim,
      ]);
      const dProbs = matMulFast(dCtx, v, { transposeB: true }); // [BK, 1, N]
      const dv = matMulFast(probs, dCtx, { transposeA: true }); // [BK, N, d]
      const dScores = softmaxGrad(probs, dProbs);
      const dq = tf.mul(tf.matMul(dScores, k), 1 / Math.sqrt(headDim)); // [BK, 1, d]
      const dk = matMulFast(dScores, qs, { transposeA: true }); // [BK, N, d]
      const wT = qkvThirds(blk.qkvT, 1);
      const [gk, gv] = [dk, dv].map((g, j) =>
        byT(
          tf.reshape(
            tf.transpose(tf.reshape(g, [b, numHeads, n, headDim]), [
              0,
              2,
              1,
              3,
            ]),
            [b * n, embedDim],
          ),
          wT[j + 1],
        )
      );
      const gq = byT(tf.reshape(dq, [b, embedDim]), wT[0]); // [B, D]
      const dNorm1 = tf.add(
        tf.add(gk, gv),
        tf.reshape(asCls(gq), [b * n, embedDim]),
      );
      const dxFlat = layerNormBackward(
        dNorm1,
        { xhat: xhat1, rstd: rstd1 },
        blk.norm1W,
      );
      return tf.add(tf.reshape(dxFlat, [b, n, embedDim]), asCls(dx1));
    });
    // The tape would free these only when the whole backward pass ends.
    tf.dispose(saved);
    return dx;
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
   * Async: the webgpu backend has no synchronous read.
   */
  toHost(): Promise<Map<string, HostTensor>> {
    const { patchSize: p, embedDim: d } = this.variant;
    return tidyHostAsync(async () => {
      // Tensors in the reference's layouts, by name; read all at once below.
      const named: [string, Tensor][] = [["cls_token", this.#cls]];
      // [P*P*3, D] rows (ky, kx, c) -> [D, 3, P, P]
      named.push([
        "patch_embed.proj.weight",
        tf.transpose(tf.reshape(this.#patchWT, [p, p, 3, d]), [3, 2, 0, 1]),
      ]);
      named.push(["patch_embed.proj.bias", this.#patchB]);
      this.#blocks.forEach((b, i) => {
        const k = (name: string) => `blocks.${i}.${name}`;
        const linear = (name: string, wT: Tensor, bias: Tensor) => {
          named.push([k(`${name}.weight`), tf.transpose(wT)]);
          named.push([k(`${name}.bias`), bias]);
        };
        named.push([k("norm1.weight"), b.norm1W], [k("norm1.bias"), b.norm1B]);
        linear("attn.qkv", tf.concat(b.qkvT, 1), tf.concat(b.qkvB));
        linear("attn.proj", b.projT, b.projB);
        named.push([k("ls1.gamma"), b.ls1]);
        named.push([k("norm2.weight"), b.norm2W], [k("norm2.bias"), b.norm2B]);
        linear("mlp.fc1", b.fc1T, b.fc1B);
        linear("mlp.fc2", b.fc2T, b.fc2B);
        named.push([k("ls2.gamma"), b.ls2]);
      });
      named.push(["norm.weight", this.#normW], ["norm.bias", this.#normB]);
      const values = await Promise.all(named.map(([, t]) => readFloats(t)));
      const out = new Map<string, HostTensor>();
      out.set("mask_token", {
        dtype: "F32",
        shape: [1, d],
        data: new Float32Array(d),
      });
      out.set("pos_embed", this.#posEmbedHost);
      named.forEach(([name, t], i) =>
        out.set(name, {
          dtype: "F32",
          shape: [...t.shape],
          data: new Float32Array(values[i]),
        })
      );
      return out;
    });
  }

  /** Frees every tensor the backbone holds. */
  dispose(): void {
    tf.dispose([...this.#made, ...this.#posCache.values()]);
    this.#made.length = 0;
    this.#posCache.clear();
  }
}
