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

/** Normal(0, std) from a uniform source (Box-Muller), truncated at ±2 std. */
function truncNormal(shape: number[], std: number, rng: Uniform): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let z: number;
    do {
      z = Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
    } while (Math.abs(z) > 2);
    data[i] = z * std;
  }
  return { dtype: "F32", shape, data };
}

function filled(shape: number[], value: number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: "F32", shape, data: new Float32Array(n).fill(value) };
}

/** Sizes of a backbone to initialize. */
export interface BackboneSize {
  patchSize: number;
  embedDim: number;
  depth: number;
  mlpHidden: number;
  /** Side of the position-embedding grid. */
  numPosPatches: number;
}

/**
 * A randomly initialized DINOv2 backbone under the reference names, as
 * DINOv2's own init does: truncated-normal (std 0.02) linears and
 * embeddings, zero biases, unit LayerNorms, LayerScale `layerScale`.
 * For benchmarks (cost does not depend on values) and for pre-training.
 */
export function initBackbone(
  size: BackboneSize,
  rng: Uniform,
  options: { layerScale?: number } = {},
): Map<string, HostTensor> {
  const { patchSize: p, embedDim: d, depth, mlpHidden: f, numPosPatches: m } =
    size;
  const ls = options.layerScale ?? 1e-5;
  const out = new Map<string, HostTensor>();
  out.set("cls_token", truncNormal([1, 1, d], 1e-6, rng));
  out.set("mask_token", filled([1, d], 0));
  out.set("pos_embed", truncNormal([1, m * m + 1, d], 0.02, rng));
  out.set("patch_embed.proj.weight", truncNormal([d, 3, p, p], 0.02, rng));
  out.set("patch_embed.proj.bias", filled([d], 0));
  for (let i = 0; i < depth; i++) {
    const b = `blocks.${i}.`;
    out.set(b + "norm1.weight", filled([d], 1));
    out.set(b + "norm1.bias", filled([d], 0));
    out.set(b + "attn.qkv.weight", truncNormal([3 * d, d], 0.02, rng));
    out.set(b + "attn.qkv.bias", filled([3 * d], 0));
    out.set(b + "attn.proj.weight", truncNormal([d, d], 0.02, rng));
    out.set(b + "attn.proj.bias", filled([d], 0));
    out.set(b + "ls1.gamma", filled([d], ls));
    out.set(b + "norm2.weight", filled([d], 1));
    out.set(b + "norm2.bias", filled([d], 0));
    out.set(b + "mlp.fc1.weight", truncNormal([f, d], 0.02, rng));
    out.set(b + "mlp.fc1.bias", filled([f], 0));
    out.set(b + "mlp.fc2.weight", truncNormal([d, f], 0.02, rng));
    out.set(b + "mlp.fc2.bias", filled([d], 0));
    out.set(b + "ls2.gamma", filled([d], ls));
  }
  out.set("norm.weight", filled([d], 1));
  out.set("norm.bias", filled([d], 0));
  return out;
}

/**
 * Fresh trainable parameters of a method, under the reference names:
 * `linear` -> [linear.*]; `rein` -> [reins.*, linear_rein.*, linear.*];
 * `cufit` -> [model 1: linear.*, reins.*, linear_rein.*; model 2: reins.*, linear_rein.*].
 */
export function initTrainable(
  method: "linear" | "rein" | "cufit",
  size: {
    depth: number;
    embedDim: number;
    patchSize: number;
    numClasses: number;
  },
  rng: Uniform,
): Map<string, HostTensor>[] {
  const { embedDim: d, numClasses: k } = size;
  const reinModel = (withLinear: boolean) => {
    const m = new Map<string, HostTensor>();
    if (withLinear) {
      for (const [n, t] of initLinear("linear", d, k, rng)) m.set(n, t);
    }
    for (const [n, t] of initRein(size, rng)) m.set(n, t);
    for (const [n, t] of initLinear("linear_rein", d, k, rng)) m.set(n, t);
    return m;
  };
  if (method === "linear") return [initLinear("linear", d, k, rng)];
  if (method === "rein") return [reinModel(true)];
  return [reinModel(true), reinModel(false)];
}
