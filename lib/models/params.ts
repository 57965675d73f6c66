/**
 * Trainable parameters under the reference's names (`reins.scale`,
 * `linear_rein.weight`, ...), as tfjs variables.
 *
 * @module
 */
import { tf } from "../backend/tf.ts";
import type { Variable } from "../backend/tf.ts";
import type { HostTensor } from "../weights/host_tensor.ts";

/** A named set of trainable variables. */
export class ParamSet {
  readonly vars: Map<string, Variable>;

  constructor(vars: Map<string, Variable> = new Map()) {
    this.vars = vars;
  }

  /** Variables made from host tensors (copied). */
  static fromHost(tensors: Iterable<[string, HostTensor]>): ParamSet {
    const vars = new Map<string, Variable>();
    for (const [name, t] of tensors) {
      vars.set(
        name,
        tf.variable(
          tf.tensor(t.data as Float32Array, t.shape, "float32"),
          true,
        ),
      );
    }
    return new ParamSet(vars);
  }

  /** The variable `name`; throws naming it when absent. */
  get(name: string): Variable {
    const v = this.vars.get(name);
    if (!v) {
      throw new Error(
        `No parameter "${name}" (have: ${[...this.vars.keys()].join(", ")})`,
      );
    }
    return v;
  }

  /** Names, in insertion order. */
  names(): string[] {
    return [...this.vars.keys()];
  }

  /** Replaces the values of the variables named in `tensors` (shapes must match). */
  assign(
    tensors: Map<string, HostTensor>,
    options: { prefix?: string } = {},
  ): void {
    const prefix = options.prefix ?? "";
    for (const [name, v] of this.vars) {
      const t = tensors.get(prefix + name);
      if (!t) throw new Error(`Missing parameter "${prefix + name}"`);
      if (t.shape.join(",") !== v.shape.join(",")) {
        throw new Error(
          `Parameter "${
            prefix + name
          }": expected shape [${v.shape}], found [${t.shape}]`,
        );
      }
      v.assign(tf.tensor(t.data as Float32Array, t.shape, "float32"));
    }
  }

  /** Copies every variable to the host. */
  toHost(options: { prefix?: string } = {}): Map<string, HostTensor> {
    const out = new Map<string, HostTensor>();
    for (const [name, v] of this.vars) {
      out.set((options.prefix ?? "") + name, {
        dtype: "F32",
        shape: [...v.shape],
        data: new Float32Array(v.dataSync() as Float32Array),
      });
    }
    return out;
  }

  /** Frees the variables. */
  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}
