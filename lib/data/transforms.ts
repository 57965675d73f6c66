/**
 * The reference's image transforms, writing normalised float32 NHWC pixels
 * straight into a batch buffer.
 *
 * - test: `Resize((256, 256))` -> `CenterCrop(224)` -> `ToTensor` -> `Normalize`;
 * - train: `Resize((256, 256))` -> `RandomHorizontalFlip(0.5)` ->
 *   `RandomCrop(224)` -> `ToTensor` -> `Normalize`.
 *
 * Resize is Pillow's bilinear ({@linkcode resizeBilinear}); `ToTensor` and
 * `Normalize` are done in float32 as torch does them (`x / 255`, then
 * `(x - mean) / std`, each rounded to float32), through a 256-entry table per
 * channel. Grayscale input is repeated to three channels, as PIL's
 * `convert("RGB")` would.
 *
 * @module
 */
import type { RawImage } from "./image.ts";
import { resizeBilinear } from "./resize.ts";

/** Transform settings; the defaults are the reference's. */
export interface TransformOptions {
  /**
   * Side of the square `Resize((resize, resize))`.
   * @default 256
   */
  resize?: number;
  /**
   * Side of the (center or random) crop.
   * @default 224
   */
  crop?: number;
  /**
   * Per-channel mean of `Normalize` (ImageNet).
   * @default [0.485, 0.456, 0.406]
   */
  mean?: readonly [number, number, number];
  /**
   * Per-channel standard deviation of `Normalize` (ImageNet).
   * @default [0.229, 0.224, 0.225]
   */
  std?: readonly [number, number, number];
}

/** The reference's transform settings. */
export const defaults = {
  resize: 256,
  crop: 224,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
} as const satisfies Required<TransformOptions>;

/** Where and how to cut the crop out of the resized image. */
export interface CropPlacement {
  top: number;
  left: number;
  /** Mirror left-right before cropping (RandomHorizontalFlip). */
  flip: boolean;
}

interface Resolved {
  resize: number;
  crop: number;
  lut: Float32Array;
}

const lutCache = new Map<string, Float32Array>();

function resolve(options: TransformOptions = {}): Resolved {
  const resize = options.resize ?? defaults.resize;
  const crop = options.crop ?? defaults.crop;
  if (!Number.isInteger(resize) || resize <= 0) {
    throw new RangeError(
      `Transform option "resize" must be a positive integer, got ${resize}`,
    );
  }
  if (!Number.isInteger(crop) || crop <= 0 || crop > resize) {
    throw new RangeError(
      `Transform option "crop" must be a positive integer <= resize (${resize}), got ${crop}`,
    );
  }
  return { resize, crop, lut: normalizeTable(options) };
}

/**
 * The float32 value `Normalize(ToTensor(v))` for every uint8 `v` and channel:
 * entry `channel * 256 + v`.
 */
export function normalizeTable(
  options: Pick<TransformOptions, "mean" | "std"> = {},
): Float32Array {
  const mean = options.mean ?? defaults.mean;
  const std = options.std ?? defaults.std;
  const key = `${mean}|${std}`;
  const hit = lutCache.get(key);
  if (hit) return hit;
  for (const [name, v] of [["mean", mean], ["std", std]] as const) {
    if (v.length !== 3 || v.some((x) => !Number.isFinite(x))) {
      throw new RangeError(
        `Transform option "${name}" must be three finite numbers, got [${v}]`,
      );
    }
  }
  if (std.some((x) => x === 0)) {
    throw new RangeError(
      `Transform option "std" must not contain 0, got [${std}]`,
    );
  }
  const f = Math.fround;
  const lut = new Float32Array(768);
  for (let ch = 0; ch < 3; ch++) {
    const m = f(mean[ch]);
    const s = f(std[ch]);
    for (let v = 0; v < 256; v++) lut[ch * 256 + v] = f(f(f(v / 255) - m) / s);
  }
  lutCache.set(key, lut);
  return lut;
}

/**
 * The deterministic (test-time) transform: resize, center crop, normalise.
 * Writes `crop * crop * 3` floats (NHWC) into `out` from `offset`.
 */
export function testTransform(
  img: RawImage,
  out: Float32Array,
  offset: number,
  options: TransformOptions = {},
): Promise<void> {
  // The work is synchronous; the executor turns a throw into a rejection.
  return new Promise((done) => {
    const r = resolve(options);
    const resized = resizeSquare(img, r.resize);
    const place = centerPlacement(r.resize, r.crop);
    cropNormalize(resized, place, out, offset, r);
    done();
  });
}

/**
 * The training transform: resize, flip with probability 0.5, random crop,
 * normalise. Draws from `rng` (uniform in [0, 1)) in torchvision's order:
 * the flip, then the crop's top, then its left.
 */
export function trainTransform(
  img: RawImage,
  rng: () => number,
  out: Float32Array,
  offset: number,
  options: TransformOptions = {},
): Promise<void> {
  return new Promise((done) => {
    const r = resolve(options);
    const resized = resizeSquare(img, r.resize);
    cropNormalize(
      resized,
      randomPlacement(rng, r.resize, r.crop),
      out,
      offset,
      r,
    );
    done();
  });
}

/**
 * The placement of torchvision's `CenterCrop(crop)` on a `size` x `size`
 * image: `int(round((size - crop) / 2))`, Python's round (half to even).
 */
export function centerPlacement(size: number, crop: number): CropPlacement {
  const start = roundHalfEven((size - crop) / 2);
  return { top: start, left: start, flip: false };
}

/** The flip and crop offsets `trainTransform` draws from `rng`. */
export function randomPlacement(
  rng: () => number,
  size: number,
  crop: number,
): CropPlacement {
  const flip = rng() < 0.5;
  const top = Math.floor(rng() * (size - crop + 1));
  const left = Math.floor(rng() * (size - crop + 1));
  return { top, left, flip };
}

/**
 * The image after `Resize((size, size))` (uint8, channels as given): what a
 * loader can cache, since everything after it is cheap or random.
 */
export function resizeSquare(
  img: RawImage,
  size: number,
  out?: Uint8Array,
): RawImage {
  if (img.width === size && img.height === size) return img;
  return resizeBilinear(img, { width: size, height: size }, { out });
}

/**
 * Crop an already-resized square image, optionally mirrored, and write the
 * normalised NHWC float32 pixels into `out` at `offset`.
 */
export function cropNormalize(
  resized: RawImage,
  place: CropPlacement,
  out: Float32Array,
  offset: number,
  options: TransformOptions & { lut?: Float32Array } = {},
): void {
  const crop = options.crop ?? defaults.crop;
  const lut = options.lut ?? normalizeTable(options);
  const { width: w, height: h, channels: c, data } = resized;
  const { top, left, flip } = place;
  if (top < 0 || left < 0 || top + crop > h || left + crop > w) {
    throw new RangeError(
      `Crop ${crop}x${crop} at (${top}, ${left}) does not fit a ${w}x${h} image`,
    );
  }
  if (offset < 0 || offset + crop * crop * 3 > out.length) {
    throw new RangeError(
      `Output of length ${out.length} has no room for ${crop}x${crop}x3 floats at offset ${offset}`,
    );
  }
  let o = offset;
  // Mirrored: output column x reads source column w - 1 - left - x.
  const step = flip ? -c : c;
  for (let y = 0; y < crop; y++) {
    let p = ((top + y) * w + (flip ? w - 1 - left : left)) * c;
    if (c === 3) {
      for (let x = 0; x < crop; x++, p += step) {
        out[o++] = lut[data[p]];
        out[o++] = lut[256 + data[p + 1]];
        out[o++] = lut[512 + data[p + 2]];
      }
    } else {
      for (let x = 0; x < crop; x++, p += step) {
        const v = data[p];
        out[o++] = lut[v];
        out[o++] = lut[256 + v];
        out[o++] = lut[512 + v];
      }
    }
  }
}

/**
 * NHWC `[size, size, 3]` floats (from `offset`) to a new channel-first
 * `[3, size, size]` array, the layout of the reference's tensors.
 */
export function toChw(
  nhwc: Float32Array,
  size: number,
  offset = 0,
): Float32Array {
  const n = size * size;
  if (offset < 0 || offset + n * 3 > nhwc.length) {
    throw new RangeError(
      `Input of length ${nhwc.length} holds no ${size}x${size}x3 image at offset ${offset}`,
    );
  }
  const chw = new Float32Array(n * 3);
  for (let i = 0, p = offset; i < n; i++, p += 3) {
    chw[i] = nhwc[p];
    chw[n + i] = nhwc[p + 1];
    chw[2 * n + i] = nhwc[p + 2];
  }
  return chw;
}

function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}
