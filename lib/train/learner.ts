/**
 * The three methods as one learner over modules and a selection rule.
 *
 * - `linear`: LPM, a linear probe on the final-normed CLS token.
 * - `rein`: Rein + `linear_rein` on the pre-norm CLS token.
 * - `cufit`: model 1 = LPM (on the pre-norm CLS without Rein) + IAM (Rein #1),
 *   model 2 = LAM (Rein #2). IAM trains on the samples LPM agrees with, LAM on
 *   those IAM agrees with; each model has its own Adam. LAM predicts.
 *
 * One training step is {@linkcode Learner.step}; parity checks see the
 * gradients before Adam through its `onGradients`. Everything that returns
 * host values is async: the webgpu backend cannot read synchronously.
 *
 * @module
 */
import { download, readFloats, tf, tidyHostAsync } from "../backend/tf.ts";
import type { Tensor, Variable } from "../backend/tf.ts";
import type { Dinov2 } from "../models/dinov2.ts";
import { dense, perSampleCrossEntropy } from "../models/layers.ts";
import { ParamSet } from "../models/params.ts";
import { Rein } from "../models/rein.ts";
import { Adam, type AdamOptions } from "../optim/adam.ts";
import { argmaxRows } from "./metrics.ts";
import { agreementMask } from "./selection.ts";
import type { HostTensor } from "../weights/host_tensor.ts";

/** The training methods. */
export type Method = "linear" | "rein" | "cufit";

/** A module that predicts: LPM (linear probe), IAM, LAM, or Rein alone. */
export type ModuleName = "lpm" | "iam" | "lam" | "rein";

/** The module whose test accuracy each method reports. */
export const PREDICTOR: Record<Method, ModuleName> = {
  linear: "lpm",
  rein: "rein",
  cufit: "lam",
};

/** Which module selects samples for which, per method (`cufit` only). */
export const SELECTORS: Record<Method, ModuleName[]> = {
  linear: [],
  rein: [],
  cufit: ["lpm", "iam"],
};

/** Per-step outputs, on the host. */
export interface StepOutputs {
  /** Logits `[B, C]` row-major, per module. */
  logits: Partial<Record<ModuleName, Float32Array>>;
  /** Loss terms (batch means), by name: `linear`, `rein`, `rein1`, `rein2`. */
  losses: Record<string, number>;
  /** Agreement masks (argmax == label) of selecting modules: `lpm`, `iam`. */
  masks: Partial<Record<ModuleName, Uint8Array>>;
}

/** The trainable parameters of one optimizer group. */
export interface ParamGroup {
  name: string;
  params: ParamSet;
  optimizer: Adam;
}

/** Names of Rein parameters that classification uses (`transform`, `merge` are unused). */
const REIN_USED = [
  "reins.learnable_tokens",
  "reins.scale",
  "reins.mlp_token2feat.weight",
  "reins.mlp_token2feat.bias",
  "reins.mlp_delta_f.weight",
  "reins.mlp_delta_f.bias",
];
const HEAD = (name: string) => [`${name}.weight`, `${name}.bias`];

/** Whether a reference parameter name trains (the reference's rule). */
export function isTrainableName(name: string): boolean {
  return name.includes("reins") || name.includes("linear");
}

/** `argmax(logits) == labels` per row (first maximum on ties, as torch): the selection mask. */
function agreement(
  logits: Float32Array,
  labels: Int32Array,
  classes: number,
): Uint8Array {
  return agreementMask(argmaxRows(logits, classes), labels);
}

/** Options of {@linkcode Learner}. */
export interface LearnerOptions {
  /** Adam settings for every group. @default lr 1e-3, weight decay 1e-5 */
  adam?: AdamOptions;
}

/**
 * A method's trainable modules over a shared frozen backbone.
 * The learner owns its parameter sets and optimizers, not the backbone.
 */
export class Learner {
  readonly method: Method;
  readonly backbone: Dinov2;
  readonly groups: ParamGroup[];
  readonly numClasses: number;
  readonly #rein1?: Rein;
  readonly #rein2?: Rein;

  /**
   * `groups` holds each group's initial trainable tensors under reference
   * names: `linear`: [linear.*]; `rein`: [reins.*, linear_rein.*, linear.*];
   * `cufit`: [model 1: linear.*, reins.*, linear_rein.*; model 2: reins.*, linear_rein.*].
   */
  constructor(
    method: Method,
    backbone: Dinov2,
    groups: Map<string, HostTensor>[],
    options: LearnerOptions = {},
  ) {
    const expected = method === "cufit" ? 2 : 1;
    if (groups.length !== expected) {
      throw new Error(
        `Method "${method}" needs ${expected} parameter group(s), got ${groups.length}`,
      );
    }
    this.method = method;
    this.backbone = backbone;
    const adam = { lr: 1e-3, weightDecay: 1e-5, ...options.adam };
    this.groups = groups.map((g, i) => {
      const params = ParamSet.fromHost(g);
      return {
        name: expected === 2 ? `model${i + 1}` : "model",
        params,
        optimizer: new Adam(params, adam),
      };
    });
    const head = method === "linear" ? "linear" : "linear_rein";
    const w = this.groups[0].params.get(`${head}.weight`);
    this.numClasses = (w.shape as number[])[0];
    if (method !== "linear") this.#rein1 = new Rein(this.groups[0].params);
    if (method === "cufit") this.#rein2 = new Rein(this.groups[1].params);
  }

  #vars(group: number, names: string[]): Variable[] {
    return names.map((n) => this.groups[group].params.get(n));
  }

  /**
   * The pre-norm CLS token after the last block (and Rein): `[B, H, W, 3]`
   * -> `[B, D]`; the last block runs for the CLS query only.
   */
  #cls(images: Tensor, hook?: Rein): Tensor {
    return tf.tidy(() =>
      this.backbone.forwardCls(this.backbone.embed(images), hook)
    );
  }

  /**
   * What CUFIT's three CLS paths share: the embedded tokens through block 0
   * (before any Rein), computed once without a gradient tape, and the
   * `forwardCls` option that starts the paths after it. A one-block
   * backbone shares the embedding only (its block 0 is the CLS-only one).
   */
  #sharedStart(images: Tensor): { tokens: Tensor; from: { from: number } } {
    const embedded = this.backbone.embed(images);
    if (this.backbone.variant.depth < 2) {
      return { tokens: embedded, from: { from: 0 } };
    }
    return {
      tokens: tf.tidy(() => this.backbone.block(0, embedded)),
      from: { from: 1 },
    };
  }

  #head(group: number, name: string, features: Tensor): Tensor {
    const p = this.groups[group].params;
    return dense(features, p.get(`${name}.weight`), p.get(`${name}.bias`));
  }

  /**
   * Forward and backward of one batch, without touching the parameters.
   * Must run inside a scope (`tidyHostAsync`): the gradients are returned
   * per group. Host reads are awaited (webgpu has no synchronous read).
   */
  async forwardBackward(
    images: Tensor,
    labels: Int32Array,
  ): Promise<{ grads: Map<string, Tensor>[]; outputs: StepOutputs }> {
    const y = tf.tensor1d(labels, "int32");
    const k = this.numClasses;
    const outputs: StepOutputs = { logits: {}, losses: {}, masks: {} };
    const grads: Map<string, Tensor>[] = this.groups.map(() => new Map());
    // variableGrads keys gradients by tfjs's variable names; map them back.
    const collect = (group: number, g: Record<string, Tensor>) => {
      for (const [name, v] of this.groups[group].params.vars) {
        if (g[v.name]) grads[group].set(name, g[v.name]);
      }
    };
    // variableGrads disposes what its function makes; outputs read after it
    // returns are kept here, and disposed with the caller's scope.
    const kept: Tensor[] = [];
    const keep = <T extends Tensor>(t: T): T => {
      kept.push(tf.keep(t));
      return t;
    };
    const scalar = async (t: Tensor) => (await readFloats(t))[0];
    try {
      if (this.method === "linear") {
        // 1. Final-normed CLS of the frozen backbone (train_linear.py's features).
        const features = this.backbone.norm(this.#cls(images));
        let logits!: Tensor;
        const { value, grads: g } = tf.variableGrads(() => {
          logits = keep(this.#head(0, "linear", features));
          return tf.mean(perSampleCrossEntropy(logits, y)) as tf.Scalar;
        }, this.#vars(0, HEAD("linear")));
        collect(0, g);
        outputs.logits.lpm = await readFloats(logits);
        outputs.losses.linear = await scalar(value);
        return { grads, outputs };
      }

      if (this.method === "rein") {
        let logits!: Tensor;
        const { value, grads: g } = tf.variableGrads(() => {
          const cls = this.#cls(images, this.#rein1);
          logits = keep(this.#head(0, "linear_rein", cls));
          return tf.mean(perSampleCrossEntropy(logits, y)) as tf.Scalar;
        }, this.#vars(0, [...REIN_USED, ...HEAD("linear_rein")]));
        collect(0, g);
        outputs.logits.rein = await readFloats(logits);
        outputs.losses.rein = await scalar(value);
        return { grads, outputs };
      }

      // CUFIT.
      // 1. Shared: patch/position embedding and the first block, whose input
      // no Rein has touched yet (run once, outside any gradient tape: nothing
      // trainable comes before it); then the no-Rein CLS (no gradient).
      const { tokens: block0, from: after0 } = this.#sharedStart(images);
      const cls0 = this.backbone.forwardCls(block0, undefined, after0);
      // 2. LPM's agreement mask a1 from the current linear probe.
      const o0 = await readFloats(this.#head(0, "linear", cls0));
      const a1 = agreement(o0, labels, k);
      const a1t = tf.tensor1d(a1, "float32");
      // 3. Model 1: mean(CE(o0)) + mean(a1 * CE(o1)); the means divide by the whole batch.
      let logits1!: Tensor, l0!: Tensor, l1!: Tensor;
      const step1 = tf.variableGrads(
        () => {
          l0 = keep(tf.mean(
            perSampleCrossEntropy(this.#head(0, "linear", cls0), y),
          ));
          const cls1 = this.backbone.forwardCls(block0, this.#rein1, after0);
          logits1 = keep(this.#head(0, "linear_rein", cls1));
          l1 = keep(tf.mean(tf.mul(a1t, perSampleCrossEntropy(logits1, y))));
          return tf.add(l0, l1) as tf.Scalar;
        },
        this.#vars(0, [
          ...HEAD("linear"),
          ...REIN_USED,
          ...HEAD("linear_rein"),
        ]),
      );
      collect(0, step1.grads);
      const o1 = await readFloats(logits1);
      outputs.losses.linear = await scalar(l0);
      outputs.losses.rein1 = await scalar(l1);
      // 4. IAM's agreement mask a2 from model 1's Rein logits (before its update).
      const a2 = agreement(o1, labels, k);
      const a2t = tf.tensor1d(a2, "float32");
      // 5. Model 2: mean(a2 * CE(o2)).
      let logits2!: Tensor;
      const step2 = tf.variableGrads(() => {
        const cls2 = this.backbone.forwardCls(block0, this.#rein2, after0);
        logits2 = keep(this.#head(1, "linear_rein", cls2));
        return tf.mean(
          tf.mul(a2t, perSampleCrossEntropy(logits2, y)),
        ) as tf.Scalar;
      }, this.#vars(1, [...REIN_USED, ...HEAD("linear_rein")]));
      collect(1, step2.grads);
      outputs.logits.lpm = o0;
      outputs.logits.iam = o1;
      outputs.logits.lam = await readFloats(logits2);
      outputs.masks.lpm = a1;
      outputs.masks.iam = a2;
      outputs.losses.rein2 = await scalar(step2.value);
      return { grads, outputs };
    } finally {
      tf.dispose(kept);
    }
  }

  /**
   * One training step: forward, backward, and each group's Adam step.
   * `onGradients` sees each group's gradients before Adam uses them (their
   * values are on the host by then, so `dataSync()` works on every backend).
   */
  step(
    images: Tensor,
    labels: Int32Array,
    options: { onGradients?: (grads: Map<string, Tensor>[]) => void } = {},
  ): Promise<StepOutputs> {
    return tidyHostAsync(async () => {
      const { grads, outputs } = await this.forwardBackward(images, labels);
      if (options.onGradients) {
        await download(grads.flatMap((g) => [...g.values()]));
        options.onGradients(grads);
      }
      this.groups.forEach((g, i) => g.optimizer.step(grads[i]));
      return outputs;
    });
  }

  /**
   * The linear probe's input: final-normed CLS features of the frozen
   * backbone, `[B, H, W, 3]` -> host `[B, D]` (for `--cache-features`).
   */
  features(images: Tensor): Promise<Float32Array> {
    return tidyHostAsync(() =>
      readFloats(this.backbone.norm(this.#cls(images)))
    );
  }

  /** A linear-probe training step on cached features `[B, D]` (method `linear` only). */
  stepOnFeatures(features: Tensor, labels: Int32Array): Promise<StepOutputs> {
    if (this.method !== "linear") {
      throw new Error(
        `stepOnFeatures() is for the linear method, not "${this.method}"`,
      );
    }
    return tidyHostAsync(async () => {
      const y = tf.tensor1d(labels, "int32");
      const outputs: StepOutputs = { logits: {}, losses: {}, masks: {} };
      const params = this.groups[0].params;
      let logits!: Tensor;
      const { value, grads } = tf.variableGrads(() => {
        logits = tf.keep(this.#head(0, "linear", features));
        return tf.mean(perSampleCrossEntropy(logits, y)) as tf.Scalar;
      }, this.#vars(0, HEAD("linear")));
      try {
        outputs.logits.lpm = await readFloats(logits);
      } finally {
        logits.dispose();
      }
      const named = new Map<string, Tensor>();
      for (const [name, v] of params.vars) {
        if (grads[v.name]) named.set(name, grads[v.name]);
      }
      this.groups[0].optimizer.step(named);
      outputs.losses.linear = (await readFloats(value))[0];
      return outputs;
    });
  }

  /** Linear-probe logits of cached features `[B, D]` (method `linear` only). */
  predictFromFeatures(
    features: Tensor,
  ): Promise<Partial<Record<ModuleName, Float32Array>>> {
    return tidyHostAsync(async () => ({
      lpm: await readFloats(this.#head(0, "linear", features)),
    }));
  }

  /**
   * Reads every parameter and Adam moment to the host, so that the
   * synchronous `params.toHost()` and `optimizer.state()` that follow work
   * on every backend (webgpu has no synchronous read).
   */
  async download(): Promise<void> {
    await download(
      this.groups.flatMap((g) => [
        ...g.params.vars.values(),
        ...g.optimizer.slotTensors(),
      ]),
    );
  }

  /** Sets every group's learning rate (the scheduler calls this per epoch). */
  setLearningRate(lr: number): void {
    for (const g of this.groups) g.optimizer.lr = lr;
  }

  /** Test-time logits of every module of the method, on the host. */
  predict(images: Tensor): Promise<Partial<Record<ModuleName, Float32Array>>> {
    return tidyHostAsync(async () => {
      const out: Partial<Record<ModuleName, Float32Array>> = {};
      if (this.method === "linear") {
        out.lpm = await readFloats(
          this.#head(0, "linear", this.backbone.norm(this.#cls(images))),
        );
      } else if (this.method === "rein") {
        out.rein = await readFloats(
          this.#head(0, "linear_rein", this.#cls(images, this.#rein1)),
        );
      } else {
        const { tokens, from } = this.#sharedStart(images);
        const cls0 = this.backbone.forwardCls(tokens, undefined, from);
        out.lpm = await readFloats(this.#head(0, "linear", cls0));
        out.iam = await readFloats(
          this.#head(
            0,
            "linear_rein",
            this.backbone.forwardCls(tokens, this.#rein1, from),
          ),
        );
        out.lam = await readFloats(
          this.#head(
            1,
            "linear_rein",
            this.backbone.forwardCls(tokens, this.#rein2, from),
          ),
        );
      }
      return out;
    });
  }

  /** Frees the parameters and optimizer state (not the backbone). */
  dispose(): void {
    for (const g of this.groups) {
      g.optimizer.disposeSlots();
      g.params.dispose();
    }
  }
}
