/**
 * Fresh parameters for the trainable modules, initialized as the reference
 * (PyTorch) does, from a caller-supplied uniform RNG so runs are seeded.
 *
 * @module
 */
import type { HostTensor } from "../weights/host_tensor.ts";

/** A source of uniform numbers in [0, 1). */
export type Uniform = () => number;

/** Rein's link-query width (`query_dims`): only sizes the unused `transform`/`merge`. */
export const REIN_QUERY_DIMS = 256;
/** Rein's learnable tokens per layer. */
export const REIN_TOKENS = 100;
/** Rein's initial `scale`. */
export const REIN_SCALE_INIT = 1e-3;

function uniform(shape: number[], bound: number, rng: Uniform): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (rng() * 2 - 1) * bound;
  return { dtype: "F32", shape, data };
}

/**
 * torch's default `nn.Linear(inDim, outDim)` init: weight and bias uniform in
 * ±1/sqrt(inDim) (kaiming_uniform with a = sqrt(5)). Keys `<name>.weight`
 * (`[out, in]`) and `<name>.bias`.
 */
export function initLinear(
  name: string,
  inDim: number,
  outDim: number,
  rng: Uniform,
): Map<string, HostTensor> {
  const bound = 1 / Math.sqrt(inDim);
  return new Map([
    [`${name}.weight`, uniform([outDim, inDim], bound, rng)],
    [`${name}.bias`, uniform([outDim], bound, rng)],
  ]);
}

/**
 * A fresh Rein (`reins.*`) for a backbone of `depth` blocks of width
 * `embedDim`: tokens uniform in ±sqrt(6 / (3 P^2 + D)), scale 1e-3, linears
 * as torch's default.
 */
export function initRein(
  options: {
    depth: number;
    embedDim: number;
    patchSize: number;
    tokens?: number;
  },
  rng: Uniform,
): Map<string, HostTensor> {
  const { depth, embedDim: d, patchSize: p } = options;
  const tokens = options.tokens ?? REIN_TOKENS;
  const bound = Math.sqrt(6 / (3 * p * p + d));
  const out = new Map<string, HostTensor>();
  out.set("reins.learnable_tokens", uniform([depth, tokens, d], bound, rng));
  out.set("reins.scale", {
    dtype: "F32",
    shape: [1],
    data: new Float32Array([REIN_SCALE_INIT]),
  });
  for (const [k, v] of initLinear("reins.mlp_token2feat", d, d, rng)) {
    out.set(k, v);
  }
  for (const [k, v] of initLinear("reins.mlp_delta_f", d, d, rng)) {
    out.set(k, v);
  }
  for (const [k, v] of initLinear("reins.transform", d, REIN_QUERY_DIMS, rng)) {
    out.set(k, v);
  }
  for (
    const [k, v] of initLinear(
      "reins.merge",
      3 * REIN_QUERY_DIMS,
      REIN_QUERY_DIMS,
      rng,
    )
  ) {
    out.set(k, v);
  }
  return out;
}
