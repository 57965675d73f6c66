/**
 * Adam exactly as `torch.optim.Adam` (1.13, single-tensor path), including its
 * *L2* weight decay: `weight_decay * param` is added to the gradient before the
 * moments (this is not AdamW).
 *
 * @module
 */
import { tf } from "../backend/tf.ts";
import type { Tensor, Variable } from "../backend/tf.ts";
import type { HostTensor } from "../weights/host_tensor.ts";
import type { ParamSet } from "../models/params.ts";

/** Adam's hyper-parameters. */
export interface AdamOptions {
  /** @default 1e-3 */
  lr?: number;
  /** @default [0.9, 0.999] */
  betas?: [number, number];
  /** @default 1e-8 */
  eps?: number;
  /** L2 penalty added to the gradient. @default 0 */
  weightDecay?: number;
}

interface Slot {
  step: number;
  m: Variable;
  v: Variable;
}

/** JSON-able optimizer state; the moments travel as host tensors. */
export interface AdamState {
  lr: number;
  steps: Record<string, number>;
  moments: Map<string, HostTensor>;
}

/** Adam over the variables of a {@linkcode ParamSet}. */
export class Adam {
  readonly params: ParamSet;
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly #slots = new Map<string, Slot>();

  constructor(params: ParamSet, options: AdamOptions = {}) {
    this.params = params;
    this.lr = options.lr ?? 1e-3;
    [this.beta1, this.beta2] = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
  }

  /**
   * One step. Only parameters present in `grads` move (torch skips parameters
   * whose `.grad` is None, so their step counts do not advance either).
   */
  step(grads: Map<string, Tensor> | Record<string, Tensor>): void {
    const entries = grads instanceof Map ? [...grads] : Object.entries(grads);
    for (const [name, grad] of entries) {
      const param = this.params.get(name);
      let slot = this.#slots.get(name);
      if (!slot) {
        slot = {
          step: 0,
          m: tf.variable(tf.zerosLike(param), false),
          v: tf.variable(tf.zerosLike(param), false),
        };
        this.#slots.set(name, slot);
      }
      slot.step += 1;
      const { m, v } = slot;
      const biasCorrection1 = 1 - this.beta1 ** slot.step;
      const biasCorrection2Sqrt = Math.sqrt(1 - this.beta2 ** slot.step);
      const stepSize = this.lr / biasCorrection1;
      tf.tidy(() => {
        const g = this.weightDecay !== 0
          ? tf.add(grad, tf.mul(param, this.weightDecay))
          : grad;
        m.assign(tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1)));
        v.assign(
          tf.add(tf.mul(v, this.beta2), tf.mul(tf.mul(g, g), 1 - this.beta2)),
        );
        const denom = tf.add(tf.div(tf.sqrt(v), biasCorrection2Sqrt), this.eps);
        param.assign(tf.sub(param, tf.mul(tf.div(m, denom), stepSize)));
      });
    }
  }

  /** The moment tensors (to read them to the host before {@linkcode Adam.state}). */
  slotTensors(): Variable[] {
    return [...this.#slots.values()].flatMap((s) => [s.m, s.v]);
  }

  /** A copy of the state, for checkpoints. */
  state(): AdamState {
    const steps: Record<string, number> = {};
    const moments = new Map<string, HostTensor>();
    for (const [name, slot] of this.#slots) {
      steps[name] = slot.step;
      for (
        const [kind, t] of [["exp_avg", slot.m], [
          "exp_avg_sq",
          slot.v,
        ]] as const
      ) {
        moments.set(`${kind}.${name}`, {
          dtype: "F32",
          shape: [...t.shape],
          data: new Float32Array(t.dataSync() as Float32Array),
        });
      }
    }
    return { lr: this.lr, steps, moments };
  }

  /** Restores a state made by {@linkcode Adam.state}. */
  loadState(state: AdamState): void {
    this.disposeSlots();
    this.lr = state.lr;
    for (const [name, step] of Object.entries(state.steps)) {
      const param = this.params.get(name);
      const load = (kind: string) => {
        const t = state.moments.get(`${kind}.${name}`);
        if (!t || t.shape.join(",") !== param.shape.join(",")) {
          throw new Error(
            `Optimizer state: "${kind}.${name}" is missing or has the wrong shape`,
          );
        }
        return tf.variable(
          tf.tensor(t.data as Float32Array, t.shape, "float32"),
          false,
        );
      };
      this.#slots.set(name, {
        step,
        m: load("exp_avg"),
        v: load("exp_avg_sq"),
      });
    }
  }

  /** Frees the moment buffers. */
  disposeSlots(): void {
    for (const s of this.#slots.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.#slots.clear();
  }
}
