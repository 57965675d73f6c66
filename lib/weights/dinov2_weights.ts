/**
 * One entry point for DINOv2 weights: Meta's `.pth` release, a safetensors
 * file under the reference names (backbone alone or a full model with
 * `reins.*` and `linear*`), or Hugging Face's `facebook/dinov2-*`.
 *
 * (File digests for run records: `sha256File` in `lib/io/digest.ts`.)
 *
 * @module
 */
import type { HostTensor } from "./host_tensor.ts";
import { fromHuggingFace, isHuggingFaceNaming } from "./hf_names.ts";
import { readPth } from "./pth.ts";
import { readSafetensors } from "./safetensors.ts";
import { type DinoVariant, inferVariant, validateBackbone } from "./variant.ts";
import { readAt } from "../io/read_at.ts";

/** Container formats {@linkcode loadDinov2Weights} reads. */
export type WeightsFormat = "pth" | "safetensors";

/** What {@linkcode loadDinov2Weights} returns. */
export interface Dinov2Weights {
  variant: DinoVariant;
  /** Every tensor under reference names, extra keys (`reins.*`, `linear*`) kept. */
  params: Map<string, HostTensor>;
  format: WeightsFormat;
  /** The naming the file used before mapping. */
  naming: "reference" | "huggingface";
  /** Safetensors `__metadata__` (empty for `.pth`). */
  metadata: Record<string, string>;
}

/** Options for {@linkcode loadDinov2Weights}. */
export interface LoadDinov2WeightsOptions {
  /**
   * Attention heads, for widths outside Meta's releases.
   * @default the file's `variant` metadata, else Meta's table by width
   */
  numHeads?: number;
}

/**
 * Tells a `torch.save` zip from a safetensors file by their first bytes:
 * `PK\x03\x04`, or an 8-byte header length followed by `{`.
 */
export async function detectWeightsFormat(
  path: string,
): Promise<WeightsFormat> {
  using file = await Deno.open(path, { read: true });
  const size = (await file.stat()).size;
  const head = new Uint8Array(9);
  const got = await readAt(file, 0, head);
  if (
    got >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 3 &&
    head[3] === 4
  ) {
    return "pth";
  }
  if (got === 9 && head[8] === 0x7b) {
    const length = new DataView(head.buffer).getBigUint64(0, true);
    if (length >= 2n && length <= BigInt(size - 8)) return "safetensors";
  }
  throw new Error(
    `Cannot load weights "${path}": it is neither a torch.save zip (.pth) nor a safetensors file`,
  );
}

/**
 * Loads DINOv2 weights in any supported format and naming, maps them to the
 * reference names, infers the variant and checks every backbone tensor.
 */
export async function loadDinov2Weights(
  path: string,
  options: LoadDinov2WeightsOptions = {},
): Promise<Dinov2Weights> {
  const format = await detectWeightsFormat(path);
  let params: Map<string, HostTensor>;
  let metadata: Record<string, string> = {};
  if (format === "pth") {
    params = (await readPth(path)).tensors;
  } else {
    ({ tensors: params, metadata } = await readSafetensors(path));
  }
  const naming = isHuggingFaceNaming(params.keys())
    ? "huggingface"
    : "reference";
  try {
    if (naming === "huggingface") params = fromHuggingFace(params);
    const variant = inferVariant(params, {
      numHeads: options.numHeads,
      metadata,
    });
    validateBackbone(params, variant);
    return { variant, params, format, naming, metadata };
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(
      `Cannot load DINOv2 weights "${path}": ${
        msg[0].toLowerCase() + msg.slice(1)
      }`,
    );
  }
}
