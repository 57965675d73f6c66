/**
 * Where the public inputs come from: MedMNIST v3 archives and DINOv2 weights.
 *
 * The MedMNIST MD5s are those published by the MedMNIST authors in
 * `medmnist/info.py` of `medmnist` 3.0.2 (Zenodo record 10519652; the v2
 * record held different files). Upstream names a 28 px archive `<flag>.npz`
 * and the others `<flag>_<size>.npz`; these files keep that naming.
 *
 * DINOv2 weights have no checksums published beside them: a download is
 * checked against the server's size, and for Hugging Face against the LFS
 * SHA-256 the Hub announces in its `X-Linked-Etag` header.
 *
 * @module
 */

/** Zenodo record of MedMNIST v3. */
export const MEDMNIST_BASE_URL = "https://zenodo.org/records/10519652/files";

/** Image sizes MedMNIST v3 publishes for its 2D datasets. */
export const MEDMNIST_SIZES = [28, 64, 128, 224] as const;

/** One of {@linkcode MEDMNIST_SIZES}. */
export type MedmnistSize = typeof MEDMNIST_SIZES[number];

/** Published MD5 of every archive, by flag and size. */
export const MEDMNIST_MD5: Readonly<
  Record<string, Readonly<Record<MedmnistSize, string>>>
> = {
  bloodmnist: {
    28: "7053d0359d879ad8a5505303e11de1dc",
    64: "2b94928a2ae4916078ca51e05b6b800b",
    128: "adace1e0ed228fccda1f39692059dd4c",
    224: "b718ff6835fcbdb22ba9eacccd7b2601",
  },
  organcmnist: {
    28: "b9ceb9546e10131b32923c5bbeaea2b1",
    64: "3ce34a8724ea6f548e6db4744d03b6a9",
    128: "773c1f009daa3fe5d9a2a201b2a7ed94",
    224: "050f5e875dc056f6768abf94ec9995d1",
  },
};

/** A file to fetch: where from, what to call it, what to check. */
export interface Source {
  url: string;
  fileName: string;
  md5?: string;
  sha256?: string;
  /** Most bytes the file can have: a longer download is stopped. */
  maxBytes?: number;
}

/**
 * Images (train + val + test) and channels of the recorded flags, from the
 * MedMNIST v2 paper's Table 1: they bound the size of every archive.
 */
export const MEDMNIST_COUNTS: Readonly<
  Record<string, { images: number; channels: 1 | 3 }>
> = {
  bloodmnist: { images: 11_959 + 1_712 + 3_421, channels: 3 },
  organcmnist: { images: 12_975 + 2_392 + 8_216, channels: 1 },
};

/**
 * The cap for a flag without recorded counts: 16 GiB, above every 2D MedMNIST
 * archive even uncompressed (the largest, 224 px PathMNIST, holds 16.1 GB of
 * pixels).
 */
export const MEDMNIST_ANY_MAX_BYTES = 16 * 2 ** 30;

/**
 * Most bytes a MedMNIST archive can have: its uint8 pixels and labels
 * uncompressed, plus deflate's worst case (5 bytes per stored 64 KiB block,
 * bounded here by 1 per 8 KiB) and 1 MiB for the zip and `.npy` headers. The
 * real files are smaller (they are compressed); the bound only has to stop a
 * server that sends more than any such file could hold.
 */
export function medmnistMaxBytes(flag: string, size: number): number {
  const counts = MEDMNIST_COUNTS[flag];
  if (!counts) return MEDMNIST_ANY_MAX_BYTES;
  const raw = counts.images * (size * size * counts.channels + 8);
  return raw + Math.ceil(raw / 8192) + 2 ** 20;
}

/** Options of {@linkcode medmnistSource}. */
export interface MedmnistSourceOptions {
  /** Mirror (or test server) holding the same file names. @default MEDMNIST_BASE_URL */
  baseUrl?: string;
  /** MD5 for a flag missing from {@linkcode MEDMNIST_MD5}. @default undefined */
  md5?: string;
}

/** URL, file name and MD5 of one MedMNIST v3 archive. */
export function medmnistSource(
  flag: string,
  size: number,
  options: MedmnistSourceOptions = {},
): Source {
  if (!/^[a-z0-9]+$/.test(flag)) {
    throw new Error(
      `MedMNIST flag "${flag}": expected lowercase letters and digits, e.g. bloodmnist`,
    );
  }
  if (!(MEDMNIST_SIZES as readonly number[]).includes(size)) {
    throw new Error(
      `MedMNIST size ${size}: expected one of ${MEDMNIST_SIZES.join(", ")}`,
    );
  }
  const md5 = options.md5 ?? MEDMNIST_MD5[flag]?.[size as MedmnistSize];
  if (md5 === undefined) {
    throw new Error(
      `MedMNIST flag "${flag}" has no recorded MD5: expected one of ` +
        `${Object.keys(MEDMNIST_MD5).join(", ")}, or give its MD5 explicitly`,
    );
  }
  const fileName = size === 28 ? `${flag}.npz` : `${flag}_${size}.npz`;
  const base = trimSlash(options.baseUrl ?? MEDMNIST_BASE_URL);
  return {
    url: `${base}/${fileName}?download=1`,
    fileName,
    md5,
    maxBytes: medmnistMaxBytes(flag, size),
  };
}

/**
 * DINOv2 backbones this project loads, with their Hugging Face repositories,
 * width and depth.
 */
export const DINOV2_MODELS = {
  dinov2_vits14: { hfRepo: "facebook/dinov2-small", embed: 384, depth: 12 },
  dinov2_vitb14: { hfRepo: "facebook/dinov2-base", embed: 768, depth: 12 },
  dinov2_vitl14: { hfRepo: "facebook/dinov2-large", embed: 1024, depth: 24 },
} as const;

/**
 * Most bytes a DINOv2 checkpoint can have: its float32 parameters (the
 * published 21 M / 86 M / 300 M, counted exactly from the architecture) plus
 * 1% and 1 MiB for the container (zip entries and pickle, or the
 * safetensors header). ViT-S/14: 22,056,576 parameters, 88.2 MB.
 */
export function dinov2MaxBytes(name: Dinov2Name): number {
  const { embed: d, depth } = DINOV2_MODELS[name];
  // Patch embedding (3*14*14*D + D), CLS and mask tokens (2D), 37*37+1
  // position embeddings, final norm (2D); each block 12D^2 + 15D (two
  // norms, qkv, projection, two layer scales, the 4D MLP).
  const params = (588 + 1 + 2 + 1370 + 2) * d +
    depth * (12 * d * d + 15 * d);
  return Math.ceil(4 * params * 1.01) + 2 ** 20;
}

/** A key of {@linkcode DINOV2_MODELS}. */
export type Dinov2Name = keyof typeof DINOV2_MODELS;

/** Where DINOv2 weights come from: Meta's torch hub files or Hugging Face. */
export type WeightsSource = "meta" | "hf";

/** Meta's download host. */
export const META_BASE_URL = "https://dl.fbaipublicfiles.com";
/** The Hugging Face Hub. */
export const HF_BASE_URL = "https://huggingface.co";

/** Options of {@linkcode dinov2Source}. */
export interface Dinov2SourceOptions {
  /** Mirror (or test server) standing in for the host. @default META_BASE_URL or HF_BASE_URL */
  baseUrl?: string;
}

/**
 * URL and local file name of a DINOv2 checkpoint: Meta's
 * `<name>_pretrain.pth` (the reference's torch hub file) or the Hub's
 * `model.safetensors`, saved as `<name>_hf.safetensors`.
 */
export function dinov2Source(
  name: string,
  source: WeightsSource,
  options: Dinov2SourceOptions = {},
): Source {
  if (!Object.hasOwn(DINOV2_MODELS, name)) {
    throw new Error(
      `DINOv2 model "${name}": expected one of ${
        Object.keys(DINOV2_MODELS).join(", ")
      }`,
    );
  }
  const model = DINOV2_MODELS[name as Dinov2Name];
  if (source === "meta") {
    const base = trimSlash(options.baseUrl ?? META_BASE_URL);
    return {
      url: `${base}/dinov2/${name}/${name}_pretrain.pth`,
      fileName: `${name}_pretrain.pth`,
      maxBytes: dinov2MaxBytes(name as Dinov2Name),
    };
  }
  if (source === "hf") {
    const base = trimSlash(options.baseUrl ?? HF_BASE_URL);
    return {
      url: `${base}/${model.hfRepo}/resolve/main/model.safetensors`,
      fileName: `${name}_hf.safetensors`,
      maxBytes: dinov2MaxBytes(name as Dinov2Name),
    };
  }
  throw new Error(`Weights source "${source}": expected meta or hf`);
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

/** What the Hub announces about a file before redirecting to its storage. */
export interface HfFileInfo {
  /** SHA-256 of an LFS file, from `X-Linked-Etag`. */
  sha256?: string;
  /** Size in bytes, from `X-Linked-Size`. */
  size?: number;
}

/** Options of {@linkcode fetchHfFileInfo}. */
export interface FetchHfFileInfoOptions {
  /** Fetch implementation, for tests. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Give up when the Hub has not answered after this long. @default 60000 */
  timeoutMs?: number;
}

/**
 * Asks the Hub (HEAD, redirects not followed) for the SHA-256 and size of a
 * `resolve/` URL. The storage host the Hub redirects to does not repeat these
 * headers, so they must be read from the Hub's own answer.
 */
export async function fetchHfFileInfo(
  url: string,
  options: FetchHfFileInfoOptions = {},
): Promise<HfFileInfo> {
  const fetchFn = options.fetch ?? globalThis.fetch;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let response: Response;
  try {
    response = await fetchFn(url, {
      method: "HEAD",
      redirect: "manual",
      signal: abort.signal,
    });
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new Error(
      `Cannot reach Hugging Face at ${url}: ${
        abort.signal.aborted
          ? `no answer for ${timeoutMs / 1000} s`
          : (error as Error).message
      }`,
    );
  } finally {
    clearTimeout(timer);
  }
  await response.body?.cancel();
  if (response.status >= 400) {
    throw new Error(
      `Hugging Face answered HTTP ${response.status} for ${url}`,
    );
  }
  const etag = (response.headers.get("x-linked-etag") ?? "")
    .replace(/^W\//, "")
    .replaceAll('"', "")
    .toLowerCase();
  const size = Number(response.headers.get("x-linked-size") ?? NaN);
  return {
    sha256: /^[0-9a-f]{64}$/.test(etag) ? etag : undefined,
    size: Number.isSafeInteger(size) && size > 0 ? size : undefined,
  };
}
