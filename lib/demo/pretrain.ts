/**
 * Pre-training of the demo's small DINOv2-architecture backbone.
 *
 * CUFIT's premise is a frozen backbone whose linear probe resists label
 * noise. A random backbone has no such probe, so the demo ships a backbone
 * that this project trains itself, on a pretext task that is not the demo's
 * task:
 *
 * - images: the synthetic generator with all 12 shape x texture classes, a
 *   different seed and a different difficulty than the demo's data;
 *   striped lesions have their stripes at a random angle;
 * - targets: two attribute heads, the lesion's shape (4-way) and its texture
 *   (3-way), on the final-normed CLS token; the class tint and the stripes'
 *   direction are never targets;
 * - labels: the generator's nominal attributes, never noised.
 *
 * The demo's classes (conf/demo.json, `"cue": "orientation"`) are shape x
 * stripe direction: one attribute the backbone learned, and one it learned
 * to ignore, since "stripes" had to be recognised at any angle. A linear
 * probe on the frozen features gets the shape and, through the weak class
 * tint, part of the direction; telling the direction itself needs the
 * backbone adapted, much as a medical task needs features a foundation
 * model pre-trained on natural images never learned. The demo fine-tunes
 * under label noise on images and classes the backbone never saw.
 *
 * Everything is seeded: the initial weights ({@linkcode RandomState}), the
 * images and the batch order (the loader's keyed streams). The position
 * embedding is a fixed 2-D sine-cosine table (the backbone does not train
 * it). With the same backend and thread count, the same options give the
 * same bytes.
 *
 * @module
 */
import { dirname } from "node:path";
import { readFloats, tf, tidyHostAsync } from "../backend/tf.ts";
import type { Tensor, Variable } from "../backend/tf.ts";
import { makeSynthetic } from "../data/synthetic.ts";
import { BatchLoader } from "../data/loader.ts";
import { Dinov2 } from "../models/dinov2.ts";
import { initBackbone } from "../models/init.ts";
import { crossEntropy, dense } from "../models/layers.ts";
import { RandomState } from "../noise/random_state.ts";
import type { HostTensor } from "../weights/host_tensor.ts";
import { writeSafetensors } from "../weights/safetensors.ts";
import type { DinoVariant } from "../weights/variant.ts";

/** Options of {@linkcode pretrainBackbone}. */
export interface PretrainOptions {
  /** Token width D. @default 64 */
  embedDim?: number;
  /** Transformer blocks. @default 4 */
  depth?: number;
  /** Attention heads (must divide `embedDim`). @default 2 */
  numHeads?: number;
  /** MLP hidden width as a multiple of D. @default 4 */
  mlpRatio?: number;
  /** Crop fed to the ViT, a multiple of 14; sets the position grid. @default 28 */
  crop?: number;
  /** Side of the rendered images (resized to this, then cropped). @default 32 */
  imageSize?: number;
  /** Training images per pretext class (12 classes). @default 600 */
  perClass?: number;
  /** Passes over the pretext images. @default 40 */
  epochs?: number;
  /** Images per step. @default 32 */
  batchSize?: number;
  /** Adam's learning rate (halved at 50% and 75% of the epochs). @default 1e-3 */
  lr?: number;
  /** Seed of the weights and of the batch order. @default 0 */
  seed?: number;
  /** Seed of the pretext images (the demo's data uses 0). @default 1001 */
  dataSeed?: number;
  /** Difficulty of the pretext images (the demo's data uses 0.3). @default 0.15 */
  difficulty?: number;
  /**
   * Initial LayerScale. DINOv2 starts at 1e-5 for a deep net; this shallow
   * one trains from scratch with every block fully on.
   * @default 1
   */
  layerScale?: number;
  /** Stop each epoch after this many batches (tests). @default null (all) */
  maxBatches?: number | null;
  /** Progress lines. @default console.log */
  log?: (line: string) => void;
}

/** The defaults of {@linkcode PretrainOptions}. */
export const defaults = {
  embedDim: 64,
  depth: 4,
  numHeads: 2,
  mlpRatio: 4,
  crop: 28,
  imageSize: 32,
  perClass: 600,
  epochs: 40,
  batchSize: 32,
  lr: 1e-3,
  seed: 0,
  dataSeed: 1001,
  difficulty: 0.15,
  layerScale: 1,
  maxBatches: null as number | null,
} satisfies Omit<Required<PretrainOptions>, "log">;

/** The pretext task's attribute heads and their sizes. */
export const PRETEXT_HEADS = { shape: 4, texture: 3 } as const;
/** Pretext classes: every shape x texture combination of the generator. */
export const PRETEXT_CLASSES = 12;

/** One pretext epoch. */
export interface PretrainEpoch {
  epoch: number;
  lr: number;
  loss: number;
  /** Accuracy of the shape head on held-out pretext images. */
  shapeAcc: number;
  /** Accuracy of the texture head on held-out pretext images. */
  textureAcc: number;
  seconds: number;
}

/** What {@linkcode pretrainBackbone} returns. */
export interface PretrainResult {
  variant: DinoVariant;
  /** Backbone weights under the reference names (heads not included). */
  params: Map<string, HostTensor>;
  /** Safetensors metadata: `variant` (JSON with `num_heads`) and the recipe. */
  metadata: Record<string, string>;
  history: PretrainEpoch[];
  seconds: number;
}

function checkOptions(o: typeof defaults): void {
  const bad = (key: string, v: unknown, want: string) =>
    new RangeError(`Pre-training option "${key}" must be ${want}, got ${v}`);
  const positive = [
    "embedDim",
    "depth",
    "numHeads",
    "mlpRatio",
    "imageSize",
    "perClass",
    "epochs",
    "batchSize",
  ] as const;
  for (const k of positive) {
    if (!Number.isInteger(o[k]) || o[k] < 1) {
      throw bad(k, o[k], "a positive integer");
    }
  }
  if (o.embedDim % o.numHeads !== 0) {
    throw bad(
      "numHeads",
      o.numHeads,
      `a divisor of embedDim (${o.embedDim})`,
    );
  }
  if (!Number.isInteger(o.crop) || o.crop < 14 || o.crop % 14 !== 0) {
    throw bad("crop", o.crop, "a positive multiple of 14 (the patch size)");
  }
  if (o.imageSize < o.crop) {
    throw bad("imageSize", o.imageSize, `at least crop (${o.crop})`);
  }
  if (!(o.lr > 0)) throw bad("lr", o.lr, "a positive number");
  if (!(o.layerScale > 0)) {
    throw bad("layerScale", o.layerScale, "a positive number");
  }
  if (!(o.difficulty >= 0 && o.difficulty <= 1)) {
    throw bad("difficulty", o.difficulty, "between 0 and 1");
  }
  for (const k of ["seed", "dataSeed"] as const) {
    if (!Number.isSafeInteger(o[k])) throw bad(k, o[k], "an integer");
  }
}

/**
 * A fixed 2-D sine-cosine position table `[1, 1 + g*g, D]` (MAE's recipe:
 * half the channels encode the row, half the column; the CLS slot is zero).
 */
export function sinCosPosEmbed(grid: number, dim: number): HostTensor {
  if (dim % 4 !== 0) {
    throw new RangeError(
      `Position table width must be a multiple of 4, got ${dim}`,
    );
  }
  const data = new Float32Array((1 + grid * grid) * dim);
  const quarter = dim / 4;
  for (let r = 0; r < grid; r++) {
    for (let c = 0; c < grid; c++) {
      const base = (1 + r * grid + c) * dim;
      for (let i = 0; i < quarter; i++) {
        const omega = 1 / 10000 ** (i / quarter);
        data[base + i] = Math.sin(r * omega);
        data[base + quarter + i] = Math.cos(r * omega);
        data[base + 2 * quarter + i] = Math.sin(c * omega);
        data[base + 3 * quarter + i] = Math.cos(c * omega);
      }
    }
  }
  return { dtype: "F32", shape: [1, 1 + grid * grid, dim], data };
}

/** Shape and texture of the generator's class `k` (see lib/data/synthetic.ts). */
export function pretextTargets(k: number): { shape: number; texture: number } {
  return { shape: k % 4, texture: Math.floor(k / 4) % 3 };
}

/** The pretext learning rate of an epoch: halved at 50% and again at 75%. */
export function pretrainLr(epoch: number, epochs: number, lr: number): number {
  let out = lr;
  if (epoch >= Math.floor(epochs * 0.5)) out *= 0.5;
  if (epoch >= Math.floor(epochs * 0.75)) out *= 0.5;
  return out;
}

/**
 * Trains a small DINOv2 backbone on the pretext task (see the module doc)
 * and returns its weights under the reference names. The backend must be
 * initialized (see `initBackend`).
 */
export async function pretrainBackbone(
  options: PretrainOptions = {},
): Promise<PretrainResult> {
  const o = { ...defaults, ...options };
  checkOptions(o);
  const log = options.log ?? ((line: string) => console.log(line));
  const started = performance.now();
  const grid = o.crop / 14;
  const variant: DinoVariant = {
    patchSize: 14,
    embedDim: o.embedDim,
    depth: o.depth,
    numHeads: o.numHeads,
    mlpHidden: o.mlpRatio * o.embedDim,
    numPosPatches: grid,
    imgSize: o.crop,
  };
  // 1. Seeded initial weights; a fixed sine-cosine position table.
  const rs = new RandomState(o.seed);
  const rng = () => rs.rand();
  const init = initBackbone(variant, rng, { layerScale: o.layerScale });
  init.set("pos_embed", sinCosPosEmbed(grid, o.embedDim));
  const backbone = new Dinov2(variant, init, { trainable: true });
  const heads = Object.entries(PRETEXT_HEADS).map(([name, k]) => {
    const bound = 1 / Math.sqrt(o.embedDim);
    const w = Float32Array.from(
      { length: k * o.embedDim },
      () => (rng() * 2 - 1) * bound,
    );
    return {
      name,
      weight: tf.variable(tf.tensor2d(w, [k, o.embedDim]), true),
      bias: tf.variable(tf.zeros([k]), true),
    };
  });
  const vars: Variable[] = [
    ...backbone.variables(),
    ...heads.flatMap((h) => [h.weight, h.bias]),
  ];

  // 2. Pretext images: all 12 classes, their own seed and difficulty.
  const synth = (split: "train" | "test", perClass: number) =>
    makeSynthetic({
      numClasses: PRETEXT_CLASSES,
      perClass,
      imageSize: o.imageSize,
      seed: o.dataSeed,
      difficulty: o.difficulty,
      split,
    });
  const trainSet = synth("train", o.perClass);
  const testSet = synth("test", Math.max(4, Math.ceil(o.perClass / 5)));
  const transform = { resize: o.imageSize, crop: o.crop };
  const trainLoader = new BatchLoader(trainSet, {
    batchSize: o.batchSize,
    shuffle: true,
    seed: o.seed,
    augment: true,
    transform,
    cache: true,
  });
  const testLoader = new BatchLoader(testSet, {
    batchSize: 64,
    transform,
    cache: true,
  });
  const targets = (labels: Int32Array) => {
    const shape = new Int32Array(labels.length);
    const texture = new Int32Array(labels.length);
    labels.forEach((k, i) => {
      const t = pretextTargets(k);
      shape[i] = t.shape;
      texture[i] = t.texture;
    });
    return { shape, texture };
  };
  // [B, H, W, 3] -> per head [B, K]
  const logitsOf = (x: Tensor): Tensor[] => {
    const cls = backbone.normedCls(backbone.forwardFeatures(x));
    return heads.map((h) => dense(cls, h.weight, h.bias));
  };

  const optimizer = tf.train.adam(o.lr);
  const history: PretrainEpoch[] = [];
  try {
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      const epochStart = performance.now();
      const lr = pretrainLr(epoch, o.epochs, o.lr);
      // tfjs's Adam reads its rate on every step; it has no public setter.
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      let lossSum = 0;
      let seen = 0;
      let batches = 0;
      for await (const batch of trainLoader.epoch(epoch)) {
        if (o.maxBatches !== null && batches >= o.maxBatches) break;
        const t = targets(batch.labels);
        // Host reads are awaited: the webgpu backend has no synchronous one.
        const loss = await tidyHostAsync(async () => {
          const x = tf.tensor4d(batch.images, [batch.size, o.crop, o.crop, 3]);
          const ys = [tf.tensor1d(t.shape), tf.tensor1d(t.texture)];
          const cost = optimizer.minimize(
            () => {
              const logits = logitsOf(x);
              return tf.addN(
                logits.map((l, i) => crossEntropy(l, ys[i])),
              ) as tf.Scalar;
            },
            true,
            vars,
          );
          return (await readFloats(cost!))[0];
        });
        if (!Number.isFinite(loss)) {
          throw new Error(
            `Pre-training loss is ${loss} at epoch ${epoch}, batch ${batches}: lower the learning rate (option "lr", now ${lr})`,
          );
        }
        lossSum += loss * batch.size;
        seen += batch.size;
        batches++;
      }
      const acc = await evaluate(testLoader, logitsOf, targets);
      const record: PretrainEpoch = {
        epoch,
        lr,
        loss: lossSum / seen,
        shapeAcc: acc.shape,
        textureAcc: acc.texture,
        seconds: (performance.now() - epochStart) / 1000,
      };
      history.push(record);
      log(
        `pretrain epoch ${epoch + 1}/${o.epochs}: loss ${
          record.loss.toFixed(4)
        }, held-out shape ${(acc.shape * 100).toFixed(1)}%, texture ${
          (acc.texture * 100).toFixed(1)
        }% (${record.seconds.toFixed(1)} s)`,
      );
    }
    const params = await backbone.toHost();
    const metadata = {
      variant: JSON.stringify({
        patch_size: 14,
        embed_dim: o.embedDim,
        depth: o.depth,
        num_heads: o.numHeads,
        mlp_ratio: o.mlpRatio,
        img_size: o.crop,
        init_values: o.layerScale,
        qkv_bias: true,
        proj_bias: true,
        ffn_bias: true,
      }),
      pretext: JSON.stringify({
        task: "shape (4) and texture (3) of synthetic lesions",
        classes: PRETEXT_CLASSES,
        per_class: o.perClass,
        image_size: o.imageSize,
        crop: o.crop,
        data_seed: o.dataSeed,
        difficulty: o.difficulty,
        epochs: o.epochs,
        batch_size: o.batchSize,
        lr: o.lr,
        seed: o.seed,
      }),
      heldout: JSON.stringify(
        history.length
          ? {
            shape_acc: history[history.length - 1].shapeAcc,
            texture_acc: history[history.length - 1].textureAcc,
          }
          : {},
      ),
      generator: "cufit-ts tasks/pretrain_demo.ts",
    };
    return {
      variant,
      params,
      metadata,
      history,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    optimizer.dispose();
    for (const h of heads) tf.dispose([h.weight, h.bias]);
    backbone.dispose();
  }
}

async function evaluate(
  loader: BatchLoader,
  logitsOf: (x: Tensor) => Tensor[],
  targets: (labels: Int32Array) => { shape: Int32Array; texture: Int32Array },
): Promise<{ shape: number; texture: number }> {
  let shape = 0;
  let texture = 0;
  let total = 0;
  for await (const batch of loader.epoch(0)) {
    const t = targets(batch.labels);
    const crop = loader.crop;
    const [ps, pt] = await tidyHostAsync(() => {
      const x = tf.tensor4d(batch.images, [batch.size, crop, crop, 3]);
      return Promise.all(
        logitsOf(x).map(async (l) =>
          await tf.argMax(l, -1).data() as Int32Array
        ),
      );
    });
    for (let i = 0; i < batch.size; i++) {
      if (ps[i] === t.shape[i]) shape++;
      if (pt[i] === t.texture[i]) texture++;
    }
    total += batch.size;
  }
  return { shape: shape / total, texture: texture / total };
}

/** Writes a pre-trained backbone as safetensors (temp file, then rename). */
export async function writeBackbone(
  path: string,
  result: Pick<PretrainResult, "params" | "metadata">,
): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  await writeSafetensors(path, result.params, { metadata: result.metadata });
}
