/**
 * A seeded synthetic "lesion" dataset: small RGB images of a blob on a
 * shaded tissue-coloured background, for tests and for demos that need a
 * learnable task without downloads.
 *
 * What tells classes apart, in order of strength:
 * - the lesion's shape: disc, ring, elongated ellipse, four-lobed blob
 *   (class % 4);
 * - the `cue`:
 *   - `texture` (the default): smooth, stripes, speckles
 *     (floor(class / 4) % 3), the stripes at a random angle;
 *   - `orientation`: every lesion is striped, and the stripes run
 *     near-vertically or near-horizontally (floor(class / 4) % 2), within
 *     ±23° of the axis. Horizontal flips and crops keep the direction.
 * - a weak class tint; classes 4 * (number of cue values) and up differ
 *   from the class that many below only by it.
 * Colour alone is a poor cue on purpose: every sample gets a random
 * brightness and tint, and lesion size varies, so the mean colours of the
 * classes overlap.
 *
 * `difficulty` (0 to 1) adds pixel noise, position and size jitter, blur of
 * the lesion edge, and with probability `difficulty / 3` draws the lesion's
 * shape or texture from another class (overlapping classes).
 *
 * Every image depends only on `(seed, split, index)`; it is rendered when
 * asked for, so a dataset costs nothing until used.
 *
 * @module
 */
import { seededRandom } from "./_prng.ts";
import type { Dataset } from "./dataset.ts";
import type { RawImage } from "./image.ts";

/** Options of {@linkcode makeSynthetic}. */
export interface SyntheticOptions {
  /**
   * Number of classes.
   * @default 4
   */
  numClasses?: number;
  /**
   * Samples per class (labels interleave: sample i has class i % numClasses).
   * Ignored when `size` is given.
   * @default 32
   */
  perClass?: number;
  /**
   * Total number of samples, instead of `perClass`.
   * @default numClasses * perClass
   */
  size?: number;
  /**
   * Side of the square images in pixels.
   * @default 64
   */
  imageSize?: number;
  /**
   * Seed of everything random.
   * @default 0
   */
  seed?: number;
  /**
   * 0 (clean, easy) to 1 (noisy, overlapping classes).
   * @default 0.3
   */
  difficulty?: number;
  /**
   * Which split: train and test draw different images.
   * @default "train"
   */
  split?: "train" | "test";
  /**
   * What tells classes of the same shape apart (see the module doc).
   * @default "texture"
   */
  cue?: SyntheticCue;
}

/** The values of {@linkcode SyntheticOptions.cue}. */
export const SYNTHETIC_CUES = ["texture", "orientation"] as const;
/** What tells classes of the same shape apart. */
export type SyntheticCue = typeof SYNTHETIC_CUES[number];

/** The synthetic dataset's defaults. */
export const defaults = {
  numClasses: 4,
  perClass: 32,
  imageSize: 64,
  seed: 0,
  difficulty: 0.3,
  split: "train",
  cue: "texture",
} as const;

const SHAPES = ["disc", "ring", "ellipse", "lobed"] as const;
const TEXTURES = ["smooth", "stripes", "speckles"] as const;
/** Stripe directions of the `orientation` cue: stripe angle 0 draws vertical stripes. */
const DIRECTIONS = ["vertical", "horizontal"] as const;
/** Width of the band of stripe angles around each direction, in radians (±23°). */
const DIRECTION_SPREAD = 0.8;

/**
 * Make a synthetic dataset.
 *
 * @throws RangeError naming the option that is out of range.
 */
export function makeSynthetic(options: SyntheticOptions = {}): Dataset {
  const numClasses = options.numClasses ?? defaults.numClasses;
  const perClass = options.perClass ?? defaults.perClass;
  const size = options.size ?? numClasses * perClass;
  const imageSize = options.imageSize ?? defaults.imageSize;
  const seed = options.seed ?? defaults.seed;
  const difficulty = options.difficulty ?? defaults.difficulty;
  const split = options.split ?? defaults.split;
  const cue = options.cue ?? defaults.cue;
  const check = (key: string, v: number, ok: boolean, want: string) => {
    if (!ok) {
      throw new RangeError(
        `Synthetic dataset option "${key}" must be ${want}, got ${v}`,
      );
    }
  };
  check(
    "numClasses",
    numClasses,
    Number.isInteger(numClasses) && numClasses >= 2,
    "an integer >= 2",
  );
  check(
    "perClass",
    perClass,
    Number.isInteger(perClass) && perClass >= 1,
    "a positive integer",
  );
  check(
    "size",
    size,
    Number.isInteger(size) && size >= 1,
    "a positive integer",
  );
  check(
    "imageSize",
    imageSize,
    Number.isInteger(imageSize) && imageSize >= 8,
    "an integer >= 8",
  );
  check("seed", seed, Number.isSafeInteger(seed), "an integer");
  check(
    "difficulty",
    difficulty,
    difficulty >= 0 && difficulty <= 1,
    "between 0 and 1",
  );
  if (split !== "train" && split !== "test") {
    throw new RangeError(
      `Synthetic dataset option "split" must be "train" or "test", got ${split}`,
    );
  }
  if (!SYNTHETIC_CUES.includes(cue)) {
    throw new RangeError(
      `Synthetic dataset option "cue" must be ${
        SYNTHETIC_CUES.map((c) => `"${c}"`).join(" or ")
      }, got ${cue}`,
    );
  }
  const splitKey = split === "train" ? 0 : 1;
  const labels = new Int32Array(size);
  for (let i = 0; i < size; i++) labels[i] = i % numClasses;
  const classes = Array.from(
    { length: numClasses },
    (_, k) => className(k, cue),
  );
  return {
    name: "synthetic",
    classes,
    numClasses,
    length: size,
    labels,
    describe: (i) => `synthetic:${split}[${i}]`,
    image(i: number): Promise<RawImage> {
      if (!Number.isInteger(i) || i < 0 || i >= size) {
        return Promise.reject(
          new RangeError(
            `Synthetic ${split} has no sample ${i} (it has ${size})`,
          ),
        );
      }
      const rng = seededRandom(seed, splitKey, i);
      return Promise.resolve(
        render(labels[i], numClasses, imageSize, difficulty, rng, cue),
      );
    },
  };
}

function className(k: number, cue: SyntheticCue): string {
  const values = cue === "texture" ? TEXTURES : DIRECTIONS;
  const period = 4 * values.length;
  const base = `${SHAPES[k % 4]}-${values[Math.floor(k / 4) % values.length]}`;
  return k < period ? base : `${base}-${Math.floor(k / period)}`;
}

/** A fixed, weak tint per class (RGB offsets in [-1, 1]). */
function classTint(k: number): [number, number, number] {
  const a = k * 2.399963; // golden angle: tints spread around the hue circle
  return [Math.cos(a), Math.cos(a + 2.094), Math.cos(a + 4.189)];
}

function render(
  label: number,
  numClasses: number,
  s: number,
  d: number,
  rng: () => number,
  cue: SyntheticCue,
): RawImage {
  const gauss = () =>
    Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const uniform = (a: number, b: number) => a + (b - a) * rng();
  // Overlap: sometimes the shape or the cue comes from another class.
  const other = Math.floor(rng() * numClasses);
  const shape = (rng() < d / 3 ? other : label) % 4;
  const cueOf = Math.floor((rng() < d / 3 ? other : label) / 4);
  const texture = cue === "texture" ? cueOf % 3 : 1;
  const tint = classTint(label);

  // Background: shared tissue colour, random brightness and tint, shading.
  const bright = uniform(-25, 25);
  const bg = [
    200 + bright + uniform(-15, 15),
    150 + bright + uniform(-15, 15),
    145 + bright + uniform(-15, 15),
  ];
  const shadeAmp = uniform(5, 20);
  const shadeFx = uniform(0.5, 2) * Math.PI / s;
  const shadeFy = uniform(0.5, 2) * Math.PI / s;
  const shadePhase = uniform(0, 2 * Math.PI);
  // Lesion: dark brownish, weak class tint, random per-sample colour.
  const lesion = [
    110 + bright + 18 * tint[0] + uniform(-25, 25),
    75 + bright + 18 * tint[1] + uniform(-25, 25),
    70 + bright + 18 * tint[2] + uniform(-25, 25),
  ];
  const jitter = (0.06 + 0.12 * d) * s;
  const cx = s / 2 + gauss() * jitter;
  const cy = s / 2 + gauss() * jitter;
  const r = s * uniform(0.2, 0.3) * (1 + gauss() * 0.1 * d);
  const angle = uniform(0, Math.PI);
  const cosA = Math.cos(angle);
  const sinA = Math.sin(angle);
  const edge = 1 + 2.5 * d; // soft edge width in pixels
  const stripeFreq = (2 * Math.PI) / (s * uniform(0.07, 0.1));
  // The same draw either way, so the default cue's images stay as they were.
  const stripeU = rng();
  const stripeAngle = cue === "texture"
    ? stripeU * Math.PI
    : (cueOf % 2) * (Math.PI / 2) + (stripeU - 0.5) * DIRECTION_SPREAD;
  const stripeCos = Math.cos(stripeAngle);
  const stripeSin = Math.sin(stripeAngle);
  const noise = 4 + 30 * d;
  const speckleSeed = Math.floor(rng() * 2 ** 31);

  const data = new Uint8Array(s * s * 3);
  let o = 0;
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const dx = x + 0.5 - cx;
      const dy = y + 0.5 - cy;
      const u = dx * cosA + dy * sinA;
      const v = -dx * sinA + dy * cosA;
      // Signed distance-like value: negative inside the lesion.
      let dist: number;
      if (shape === 0) {
        dist = Math.hypot(u, v) - r;
      } else if (shape === 1) {
        dist = Math.abs(Math.hypot(u, v) - r * 0.8) - r * 0.28;
      } else if (shape === 2) {
        dist = (Math.hypot(u / 1.7, v * 1.6) - r * 0.85) * 1.2;
      } else {
        const rho = Math.hypot(u, v);
        const theta = Math.atan2(v, u);
        dist = rho - r * (0.85 + 0.35 * Math.cos(4 * theta));
      }
      let m = 0.5 - dist / (2 * edge);
      m = m < 0 ? 0 : m > 1 ? 1 : m;
      let t = 1;
      if (texture === 1) {
        t = 1 + 0.35 * Math.sin((x * stripeCos + y * stripeSin) * stripeFreq);
      } else if (texture === 2) {
        t = speckle(x >> 1, y >> 1, speckleSeed) ? 1.55 : 0.85;
      }
      const shade = shadeAmp * Math.sin(x * shadeFx + y * shadeFy + shadePhase);
      for (let c = 0; c < 3; c++) {
        const val = (bg[c] + shade) * (1 - m) + lesion[c] * t * m +
          gauss() * noise;
        data[o++] = val < 0 ? 0 : val > 255 ? 255 : Math.round(val);
      }
    }
  }
  return { data, width: s, height: s, channels: 3 };
}

/** A fixed pseudo-random dot pattern (about 30% of cells lit). */
function speckle(x: number, y: number, seed: number): boolean {
  let h = Math.imul(x, 0x27d4eb2d) ^ Math.imul(y, 0x165667b1) ^ seed;
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h ^= h >>> 13;
  return (h >>> 0) % 10 < 3;
}
