/**
 * Decoding image files into plain uint8 pixels, the way the reference's
 * `PIL.Image.open(path).convert("RGB")` sees them.
 *
 * sharp (libvips) does the decoding, on libuv's thread pool. What differs from
 * a plain `sharp(file).raw()` is chosen to match PIL:
 * - embedded ICC profiles are ignored and EXIF orientation is not applied
 *   (PIL does neither);
 * - alpha is dropped, not composited (PIL's RGBA/LA -> RGB conversions);
 * - grayscale stays one channel here: PIL's L -> RGB repeats the value, which
 *   the transforms do after resizing (same pixels, a third of the work);
 * - 16-bit PNGs: RGB keeps the high byte (PIL's "RGB;16B" raw mode),
 *   grayscale clips to 255 (PIL opens it as mode "I" and clips on convert);
 * - CMYK JPEGs use PIL's naive `cmyk2rgb` formula, not a colour profile;
 * - a truncated file is an error, as in PIL without `LOAD_TRUNCATED_IMAGES`.
 *
 * @module
 */
import sharp from "sharp";
import { resolveLimit } from "../io/_limits.ts";

/**
 * Pillow's decompression-bomb limit: `Image.open` refuses an image above
 * twice `Image.MAX_IMAGE_PIXELS` (89,478,485), about 179 megapixels.
 */
export const MAX_IMAGE_PIXELS = 2 * 89_478_485;

/** Decoded pixels, row-major HWC, uint8. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
}

/** Options of {@linkcode decodeImage}. */
export interface DecodeImageOptions {
  /**
   * Most pixels (width x height) an image may declare; larger ones are
   * refused from their header, before any decoding.
   * @default the `CUFIT_MAX_IMAGE_PIXELS` environment variable when it is set and readable, else {@linkcode MAX_IMAGE_PIXELS}
   */
  maxPixels?: number;
}

/**
 * Read and decode a JPEG or PNG file (any format sharp reads is accepted).
 *
 * @throws Error naming the file when it is missing, truncated, corrupt, or
 * declares more pixels than `maxPixels`.
 */
export async function decodeImage(
  path: string,
  options: DecodeImageOptions = {},
): Promise<RawImage> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`Cannot read image "${path}": ${messageOf(e)}`);
  }
  return await decodeImageBytes(bytes, { ...options, name: path });
}

/** Options of {@linkcode decodeImageBytes}. */
export interface DecodeOptions extends DecodeImageOptions {
  /**
   * What to call the image in errors (a path, a zip entry).
   * @default "image"
   */
  name?: string;
}

/** Decode an encoded image held in memory; see {@linkcode decodeImage}. */
export async function decodeImageBytes(
  bytes: Uint8Array,
  options: DecodeOptions = {},
): Promise<RawImage> {
  const name = options.name ?? "image";
  const limit = resolveLimit(
    "maxPixels",
    options.maxPixels,
    "CUFIT_MAX_IMAGE_PIXELS",
    MAX_IMAGE_PIXELS,
  );
  if (bytes.length === 0) {
    throw new Error(`Cannot read image "${name}": the file is empty`);
  }
  let meta: sharp.Metadata;
  try {
    // The header only: nothing is decoded yet.
    meta = await sharp(bytes, { ...inputOptions, limitInputPixels: false })
      .metadata();
  } catch (e) {
    throw new Error(`Cannot read image "${name}": ${describeFailure(e)}`);
  }
  const pixels = (meta.width ?? 0) * (meta.height ?? 0);
  if (pixels > limit.value) {
    throw new Error(
      `Cannot read image "${name}": it declares ${meta.width} x ${meta.height} = ${pixels} pixels, more than the limit of ${limit.value} (${limit.how})`,
    );
  }
  try {
    return await decode(bytes, meta, limit.value);
  } catch (e) {
    throw new Error(`Cannot read image "${name}": ${describeFailure(e)}`);
  }
}

const inputOptions = { failOn: "truncated", ignoreIcc: true } as const;

async function decode(
  bytes: Uint8Array,
  meta: sharp.Metadata,
  maxPixels: number,
): Promise<RawImage> {
  // libvips checks the same limit again while decoding.
  const input = { ...inputOptions, limitInputPixels: maxPixels };
  const wide = meta.depth === "ushort";
  const space = meta.space;
  if (space === "b-w" || space === "grey16") {
    const { data, info } = await sharp(bytes, input)
      .toColourspace(wide ? "grey16" : "b-w")
      .raw({ depth: wide ? "ushort" : "uchar" })
      .toBuffer({ resolveWithObject: true });
    // PIL: 16-bit gray is mode "I" (clipped on convert), 16-bit gray+alpha is
    // "LA" from the high byte.
    const samples = wide
      ? narrow(data, info.channels === 2 ? "high" : "clip")
      : u8(data);
    const gray = firstChannels(samples, info.channels, 1);
    return { data: gray, width: info.width, height: info.height, channels: 1 };
  }
  if (space === "cmyk") {
    // Kept CMYK end to end: libvips would otherwise convert with a profile.
    const { data, info } = await sharp(bytes, input)
      .pipelineColourspace("cmyk")
      .toColourspace("cmyk")
      .raw()
      .toBuffer({ resolveWithObject: true });
    return {
      data: cmykToRgb(u8(data), info.channels),
      width: info.width,
      height: info.height,
      channels: 3,
    };
  }
  const { data, info } = await sharp(bytes, input)
    .toColourspace(wide ? "rgb16" : "srgb")
    .raw({ depth: wide ? "ushort" : "uchar" })
    .toBuffer({ resolveWithObject: true });
  const rgb = wide
    ? firstChannels(narrow(data, "high"), info.channels, 3)
    : firstChannels(u8(data), info.channels, 3);
  return { data: rgb, width: info.width, height: info.height, channels: 3 };
}

function u8(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** 16-bit samples to 8 bits, in PIL's way for the mode at hand. */
function narrow(b: Uint8Array, how: "high" | "clip"): Uint8Array {
  const n = b.byteLength >> 1;
  const words = new Uint16Array(n);
  new Uint8Array(words.buffer).set(b.subarray(0, n * 2));
  const out = new Uint8Array(n);
  if (how === "high") {
    for (let i = 0; i < n; i++) out[i] = words[i] >> 8;
  } else {
    for (let i = 0; i < n; i++) out[i] = words[i] > 255 ? 255 : words[i];
  }
  return out;
}

/** Keep the first `keep` of `channels` interleaved channels (drop alpha). */
function firstChannels(
  src: Uint8Array,
  channels: number,
  keep: 1 | 3,
): Uint8Array {
  if (channels === keep) return src;
  if (keep === 3 && channels < 3) {
    // Gray(+alpha) reported in an RGB space: repeat the gray value.
    const n = src.length / channels;
    const out = new Uint8Array(n * 3);
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      const v = src[i * channels];
      out[j] = v;
      out[j + 1] = v;
      out[j + 2] = v;
    }
    return out;
  }
  const n = src.length / channels;
  const out = new Uint8Array(n * keep);
  if (keep === 1) {
    for (let i = 0; i < n; i++) out[i] = src[i * channels];
  } else {
    for (let i = 0, s = 0, d = 0; i < n; i++, s += channels, d += 3) {
      out[d] = src[s];
      out[d + 1] = src[s + 1];
      out[d + 2] = src[s + 2];
    }
  }
  return out;
}

/** Pillow's `cmyk2rgb`: `255 - k - c * (255 - k) / 255`, rounded as Pillow does. */
function cmykToRgb(src: Uint8Array, channels: number): Uint8Array {
  const n = src.length / channels;
  const out = new Uint8Array(n * 3);
  for (let i = 0, s = 0, d = 0; i < n; i++, s += channels, d += 3) {
    const nk = 255 - src[s + 3];
    out[d] = nk - mulDiv255(src[s], nk);
    out[d + 1] = nk - mulDiv255(src[s + 1], nk);
    out[d + 2] = nk - mulDiv255(src[s + 2], nk);
  }
  return out;
}

/** Pillow's MULDIV255: a rounded a*b/255 in integers. */
function mulDiv255(a: number, b: number): number {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

function messageOf(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file";
  if (e instanceof Deno.errors.IsADirectory) {
    return "a folder, not an image file";
  }
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  return e instanceof Error ? e.message : String(e);
}

/** libvips' messages, shortened to what a user can act on. */
function describeFailure(e: unknown): string {
  const text = (e instanceof Error ? e.message : String(e)).split("\n")[0];
  if (/unsupported image format/i.test(text)) {
    return "not a JPEG or PNG (or another format sharp reads)";
  }
  if (/pixel limit/i.test(text)) return `the image is too large (${text})`;
  if (/premature end|truncat|read error|unexpected end/i.test(text)) {
    return `the file is truncated or corrupt (${text})`;
  }
  return `the file is corrupt (${text})`;
}
