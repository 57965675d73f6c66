/**
 * The size of a DINOv2 ViT, read off its weights, and the check that a set of
 * weights holds every backbone tensor that size needs.
 *
 * @module
 */
import type { HostTensor } from "./host_tensor.ts";

/** The hyper-parameters that fix a DINOv2 backbone's tensor shapes. */
export interface DinoVariant {
  /** Side of a square patch in pixels (14 for every DINOv2 release). */
  patchSize: number;
  /** Token width D (384 ViT-S, 768 ViT-B, 1024 ViT-L, 1536 ViT-g). */
  embedDim: number;
  /** Number of transformer blocks. */
  depth: number;
  numHeads: number;
  /** Hidden width of each block's MLP (4D for the MLP variants). */
  mlpHidden: number;
  /** Side of the grid the position embedding was trained on (37). */
  numPosPatches: number;
  /** numPosPatches * patchSize (518). */
  imgSize: number;
}

/** Heads per embedding width in Meta's DINOv2 releases. */
const HEADS_BY_WIDTH: Record<number, number> = {
  384: 6,
  768: 12,
  1024: 16,
  1536: 24,
};

/** Options for {@linkcode inferVariant}. */
export interface InferVariantOptions {
  /**
   * Attention heads, for widths outside Meta's releases.
   * @default the `variant` metadata's `num_heads`, else 384->6, 768->12, 1024->16, 1536->24
   */
  numHeads?: number;
  /**
   * Safetensors `__metadata__`; its `variant` JSON (as in
   * `rein_model.safetensors`) supplies `num_heads` and is checked against
   * the shapes.
   * @default {}
   */
  metadata?: Record<string, string>;
}

function shapeOf(
  params: Map<string, HostTensor>,
  key: string,
  expected: string,
): number[] {
  const t = params.get(key);
  if (!t) {
    throw new Error(
      `Cannot infer the DINOv2 variant: weight "${key}" ${expected} is missing`,
    );
  }
  return t.shape;
}

/** Reads a backbone's sizes from its tensor shapes (reference names). */
export function inferVariant(
  params: Map<string, HostTensor>,
  options: InferVariantOptions = {},
): DinoVariant {
  const reg = params.get("register_tokens");
  if (reg) {
    throw new Error(
      `Cannot use these weights: "register_tokens" [${reg.shape}] belongs to a DINOv2 model with registers, which is not supported (use the plain dinov2_vit*14 weights)`,
    );
  }
  const w = shapeOf(params, "patch_embed.proj.weight", "[D,3,P,P]");
  if (w.length !== 4 || w[1] !== 3 || w[2] !== w[3] || w[2] < 1) {
    throw new Error(
      `Cannot infer the DINOv2 variant: "patch_embed.proj.weight" has shape [${w}], expected [D,3,P,P]`,
    );
  }
  const [embedDim, , patchSize] = w;

  const blocks = new Set<number>();
  for (const key of params.keys()) {
    const m = /^blocks\.(\d+)\./.exec(key);
    if (m) blocks.add(Number(m[1]));
  }
  const depth = blocks.size;
  if (depth === 0) {
    throw new Error(
      `Cannot infer the DINOv2 variant: no "blocks.{i}.*" weights found`,
    );
  }
  for (let i = 0; i < depth; i++) {
    if (!blocks.has(i)) {
      throw new Error(
        `Cannot infer the DINOv2 variant: blocks ${
          [...blocks].sort((a, b) => a - b).join(",")
        } are present but "blocks.${i}.*" is missing`,
      );
    }
  }

  const pos = shapeOf(params, "pos_embed", "[1,N+1,D]");
  const side = Math.round(Math.sqrt(pos[1] - 1));
  if (pos.length !== 3 || pos[1] < 2 || side * side !== pos[1] - 1) {
    throw new Error(
      `Cannot infer the DINOv2 variant: "pos_embed" has shape [${pos}], expected [1,N+1,D] with N a square number of patches`,
    );
  }
  const fc1 = shapeOf(params, "blocks.0.mlp.fc1.weight", "[H,D]");
  if (fc1.length !== 2) {
    throw new Error(
      `Cannot infer the DINOv2 variant: "blocks.0.mlp.fc1.weight" has shape [${fc1}], expected [H,D]`,
    );
  }

  const meta = parseVariantMetadata(options.metadata);
  let numHeads = options.numHeads;
  if (numHeads !== undefined && meta.num_heads !== undefined) {
    if (numHeads !== meta.num_heads) {
      throw new Error(
        `Cannot infer the DINOv2 variant: option numHeads is ${numHeads} but the weights' "variant" metadata says num_heads ${meta.num_heads}`,
      );
    }
  }
  numHeads ??= meta.num_heads ?? HEADS_BY_WIDTH[embedDim];
  if (numHeads === undefined) {
    throw new Error(
      `Cannot infer the DINOv2 variant: no head count is known for width ${embedDim} (expected ${
        Object.keys(HEADS_BY_WIDTH).join(", ")
      }); pass numHeads`,
    );
  }
  if (!Number.isInteger(numHeads) || numHeads < 1 || embedDim % numHeads) {
    throw new Error(
      `Cannot infer the DINOv2 variant: numHeads ${numHeads} does not divide the width ${embedDim}`,
    );
  }
  const variant: DinoVariant = {
    patchSize,
    embedDim,
    depth,
    numHeads,
    mlpHidden: fc1[0],
    numPosPatches: side,
    imgSize: side * patchSize,
  };
  const declared: [keyof typeof meta, number][] = [
    ["patch_size", patchSize],
    ["embed_dim", embedDim],
    ["depth", depth],
    ["img_size", variant.imgSize],
  ];
  for (const [key, found] of declared) {
    if (meta[key] !== undefined && meta[key] !== found) {
      throw new Error(
        `Cannot infer the DINOv2 variant: the "variant" metadata says ${key} ${
          meta[key]
        }, but the weights' shapes give ${found}`,
      );
    }
  }
  return variant;
}

interface VariantMetadata {
  num_heads?: number;
  patch_size?: number;
  embed_dim?: number;
  depth?: number;
  img_size?: number;
}

function parseVariantMetadata(
  metadata: Record<string, string> | undefined,
): VariantMetadata {
  const text = metadata?.variant;
  if (text === undefined) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error(
      `Cannot infer the DINOv2 variant: metadata "variant" is not JSON: ${
        text.slice(0, 80)
      }`,
    );
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(
      `Cannot infer the DINOv2 variant: metadata "variant" is not a JSON object`,
    );
  }
  const out: VariantMetadata = {};
  for (
    const key of [
      "num_heads",
      "patch_size",
      "embed_dim",
      "depth",
      "img_size",
    ] as const
  ) {
    const v = (raw as Record<string, unknown>)[key];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || (v as number) < 1) {
      throw new Error(
        `Cannot infer the DINOv2 variant: metadata "variant" has ${key} ${
          JSON.stringify(v)
        }, expected a positive integer`,
      );
    }
    out[key] = v as number;
  }
  return out;
}

/** Every backbone tensor a variant needs, with its shape (reference names). */
export function backboneShapes(variant: DinoVariant): Map<string, number[]> {
  const { embedDim: d, patchSize: p, mlpHidden: h, numPosPatches: n } = variant;
  const shapes = new Map<string, number[]>([
    ["cls_token", [1, 1, d]],
    ["mask_token", [1, d]],
    ["pos_embed", [1, n * n + 1, d]],
    ["patch_embed.proj.weight", [d, 3, p, p]],
    ["patch_embed.proj.bias", [d]],
  ]);
  for (let i = 0; i < variant.depth; i++) {
    const b = `blocks.${i}`;
    shapes.set(`${b}.norm1.weight`, [d]);
    shapes.set(`${b}.norm1.bias`, [d]);
    shapes.set(`${b}.attn.qkv.weight`, [3 * d, d]);
    shapes.set(`${b}.attn.qkv.bias`, [3 * d]);
    shapes.set(`${b}.attn.proj.weight`, [d, d]);
    shapes.set(`${b}.attn.proj.bias`, [d]);
    shapes.set(`${b}.ls1.gamma`, [d]);
    shapes.set(`${b}.norm2.weight`, [d]);
    shapes.set(`${b}.norm2.bias`, [d]);
    shapes.set(`${b}.mlp.fc1.weight`, [h, d]);
    shapes.set(`${b}.mlp.fc1.bias`, [h]);
    shapes.set(`${b}.mlp.fc2.weight`, [d, h]);
    shapes.set(`${b}.mlp.fc2.bias`, [d]);
    shapes.set(`${b}.ls2.gamma`, [d]);
  }
  shapes.set("norm.weight", [d]);
  shapes.set("norm.bias", [d]);
  return shapes;
}

/**
 * Checks that `params` holds every backbone tensor of `variant` as F32 with
 * the expected shape; the first problem is thrown, naming the key.
 */
export function validateBackbone(
  params: Map<string, HostTensor>,
  variant: DinoVariant,
): void {
  for (const [key, expected] of backboneShapes(variant)) {
    const t = params.get(key);
    if (!t) {
      throw new Error(
        `Backbone weight "${key}" is missing (expected shape [${expected}])`,
      );
    }
    if (
      t.shape.length !== expected.length ||
      t.shape.some((s, i) => s !== expected[i])
    ) {
      throw new Error(
        `Backbone weight "${key}" has shape [${t.shape}], expected [${expected}]`,
      );
    }
    if (t.dtype !== "F32") {
      throw new Error(
        `Backbone weight "${key}" has dtype ${t.dtype}, expected F32`,
      );
    }
  }
}
