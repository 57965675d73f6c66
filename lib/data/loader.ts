/**
 * Batches of transformed images for training and evaluation, loaded ahead of
 * use.
 *
 * Determinism: with `shuffle`, epoch `e`'s order is a Fisher-Yates
 * permutation drawn from the stream `seededRandom(seed, SHUFFLE, e)`; with
 * `augment`, sample `i`'s flip and crop in epoch `e` come from
 * `seededRandom(seed, AUGMENT, e, i)` (see `_prng.ts`: sfc32 seeded by a
 * MurmurHash3-mixed hash of the keys). Batches therefore depend only on
 * `(seed, epoch)`, never on prefetch depth, concurrency or timing. These are
 * not torch's random streams: the reference's shuffle and crops cannot be
 * reproduced, only their distribution.
 *
 * Work per sample: `dataset.image(i)` (file decoding runs on libuv's thread
 * pool), the bilinear resize (cacheable, since it is deterministic), then
 * flip/crop/normalise straight into the batch's float32 buffer.
 *
 * @module
 */
import { permutation, seededRandom } from "./_prng.ts";
import type { Dataset } from "./dataset.ts";
import type { RawImage } from "./image.ts";
import {
  centerPlacement,
  cropNormalize,
  defaults as transformDefaults,
  normalizeTable,
  randomPlacement,
  resizeSquare,
  type TransformOptions,
} from "./transforms.ts";

const SHUFFLE = 1;
const AUGMENT = 2;

/** One batch. Arrays hold exactly `size` samples. */
export interface Batch {
  /** `[size, crop, crop, 3]` NHWC normalised pixels. */
  images: Float32Array;
  /** Labels used for training (the `labels` option, else the clean ones). */
  labels: Int32Array;
  /** Dataset indices of the samples. */
  indices: Int32Array;
  /** Number of samples (smaller for a last partial batch or skipped files). */
  size: number;
}

/** Options of {@linkcode BatchLoader}. */
export interface BatchLoaderOptions {
  /** Samples per batch. */
  batchSize: number;
  /**
   * Labels to hand out, e.g. noisy ones (one per sample, 0 to numClasses - 1).
   * @default dataset.labels
   */
  labels?: Int32Array;
  /**
   * Reshuffle every epoch (seeded).
   * @default false
   */
  shuffle?: boolean;
  /**
   * Seed of the shuffle and the augmentation.
   * @default 0
   */
  seed?: number;
  /**
   * Random flip and crop (the train transform) instead of the center crop.
   * @default false
   */
  augment?: boolean;
  /**
   * Resize, crop and normalisation settings.
   * @default the reference's: 256, 224, ImageNet mean/std
   */
  transform?: TransformOptions;
  /**
   * Batches loaded ahead while the current one is used.
   * @default 2
   */
  prefetch?: number;
  /**
   * Keep every resized uint8 image in memory (resize^2 * channels bytes each:
   * 192 KiB for RGB at 256) so later epochs skip decoding and resizing.
   * @default false
   */
  cache?: boolean;
  /**
   * Drop the last batch when it is not full.
   * @default false
   */
  dropLast?: boolean;
  /**
   * Skip samples whose image cannot be read, counting them in `skipped`,
   * instead of failing the epoch.
   * @default false
   */
  skipBad?: boolean;
  /**
   * Images decoded and resized at once (bounds the memory of full-size
   * decoded images in flight).
   * @default 4
   */
  concurrency?: number;
}

/** Defaults of {@linkcode BatchLoaderOptions}. */
export const defaults = {
  shuffle: false,
  seed: 0,
  augment: false,
  prefetch: 2,
  cache: false,
  dropLast: false,
  skipBad: false,
  concurrency: 4,
} as const;

/** Loads a dataset in seeded, prefetched batches. */
export class BatchLoader {
  readonly dataset: Dataset;
  readonly batchSize: number;
  /** Crop size: batches are `[size, crop, crop, 3]`. */
  readonly crop: number;
  /** Samples skipped as unreadable so far (each counted once). */
  skipped = 0;
  /** `describe(i)` and reason of each skipped sample. */
  readonly skippedSamples: string[] = [];

  #labels: Int32Array;
  #shuffle: boolean;
  #seed: number;
  #augment: boolean;
  #resize: number;
  #lut: Float32Array;
  #prefetch: number;
  #cache: Map<number, RawImage> | null;
  #dropLast: boolean;
  #skipBad: boolean;
  #bad = new Set<number>();
  #slots: number;
  #waiting: (() => void)[] = [];

  constructor(dataset: Dataset, options: BatchLoaderOptions) {
    const o = { ...defaults, ...options };
    const bad = (key: string, v: unknown, want: string) =>
      new RangeError(`BatchLoader option "${key}" must be ${want}, got ${v}`);
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) {
      throw bad("batchSize", o.batchSize, "a positive integer");
    }
    if (!Number.isInteger(o.prefetch) || o.prefetch < 0) {
      throw bad("prefetch", o.prefetch, "an integer >= 0");
    }
    if (!Number.isInteger(o.concurrency) || o.concurrency < 1) {
      throw bad("concurrency", o.concurrency, "a positive integer");
    }
    if (!Number.isSafeInteger(o.seed)) throw bad("seed", o.seed, "an integer");
    const labels = o.labels ?? dataset.labels;
    if (labels.length !== dataset.length) {
      throw bad(
        "labels",
        `${labels.length} labels`,
        `one label per sample of "${dataset.name}" (${dataset.length})`,
      );
    }
    for (let i = 0; i < labels.length; i++) {
      if (labels[i] < 0 || labels[i] >= dataset.numClasses) {
        throw bad(
          "labels",
          `${labels[i]} at index ${i}`,
          `0 to ${dataset.numClasses - 1}`,
        );
      }
    }
    this.dataset = dataset;
    this.batchSize = o.batchSize;
    this.#labels = labels;
    this.#shuffle = o.shuffle;
    this.#seed = o.seed;
    this.#augment = o.augment;
    this.#resize = o.transform?.resize ?? transformDefaults.resize;
    this.crop = o.transform?.crop ?? transformDefaults.crop;
    if (!Number.isInteger(this.#resize) || this.#resize < 1) {
      throw bad("transform.resize", this.#resize, "a positive integer");
    }
    if (
      !Number.isInteger(this.crop) || this.crop < 1 || this.crop > this.#resize
    ) {
      throw bad(
        "transform.crop",
        this.crop,
        `a positive integer <= resize (${this.#resize})`,
      );
    }
    this.#lut = normalizeTable(o.transform);
    this.#prefetch = o.prefetch;
    this.#cache = o.cache ? new Map() : null;
    this.#dropLast = o.dropLast;
    this.#skipBad = o.skipBad;
    this.#slots = o.concurrency;
  }

  /** Number of batches an epoch yields (before any skipped samples). */
  batchesPerEpoch(): number {
    const n = this.dataset.length;
    return this.#dropLast
      ? Math.floor(n / this.batchSize)
      : Math.ceil(n / this.batchSize);
  }

  /** The dataset indices of epoch `e` in the order they are batched. */
  epochOrder(e: number): Int32Array {
    if (!Number.isSafeInteger(e) || e < 0) {
      throw new RangeError(`Epoch must be an integer >= 0, got ${e}`);
    }
    const n = this.dataset.length;
    if (this.#shuffle) {
      return permutation(n, seededRandom(this.#seed, SHUFFLE, e));
    }
    return Int32Array.from({ length: n }, (_, i) => i);
  }

  /**
   * The batches of epoch `e`; the next `prefetch` batches load while the
   * consumer works on the current one. Each batch has its own arrays.
   */
  async *epoch(e: number): AsyncGenerator<Batch> {
    const order = this.epochOrder(e);
    const count = this.batchesPerEpoch();
    const pending: Promise<Batch>[] = [];
    let launched = 0;
    const launch = () => {
      if (launched >= count) return;
      const start = launched++ * this.batchSize;
      const p = this.#loadBatch(
        order.subarray(start, Math.min(start + this.batchSize, order.length)),
        e,
      );
      // Marked handled now; the error surfaces when this batch is awaited.
      p.catch(() => {});
      pending.push(p);
    };
    for (let i = 0; i <= this.#prefetch; i++) launch();
    while (pending.length > 0) {
      const batch = await pending.shift()!;
      // A batch whose samples were all skipped is not handed out.
      if (batch.size > 0) yield batch;
      launch();
    }
  }

  async #loadBatch(indices: Int32Array, e: number): Promise<Batch> {
    const per = this.crop * this.crop * 3;
    const images = new Float32Array(indices.length * per);
    const ok = new Uint8Array(indices.length);
    await Promise.all(Array.from(indices, async (index, slot) => {
      if (this.#bad.has(index)) return;
      const resized = await this.#resized(index);
      if (!resized) return;
      const place = this.#augment
        ? randomPlacement(
          seededRandom(this.#seed, AUGMENT, e, index),
          this.#resize,
          this.crop,
        )
        : centerPlacement(this.#resize, this.crop);
      cropNormalize(resized, place, images, slot * per, {
        crop: this.crop,
        lut: this.#lut,
      });
      ok[slot] = 1;
    }));
    // Close the gaps left by skipped samples, keeping batch order.
    let size = 0;
    const kept = new Int32Array(indices.length);
    for (let slot = 0; slot < indices.length; slot++) {
      if (!ok[slot]) continue;
      if (size !== slot) {
        images.copyWithin(size * per, slot * per, (slot + 1) * per);
      }
      kept[size++] = indices[slot];
    }
    const keptIndices = kept.slice(0, size);
    return {
      images: size === indices.length ? images : images.subarray(0, size * per),
      labels: Int32Array.from(keptIndices, (i) => this.#labels[i]),
      indices: keptIndices,
      size,
    };
  }

  /** The resized image of a sample, or null when skipped as unreadable. */
  async #resized(index: number): Promise<RawImage | null> {
    const hit = this.#cache?.get(index);
    if (hit) return hit;
    await this.#acquire();
    let img: RawImage;
    try {
      img = resizeSquare(await this.dataset.image(index), this.#resize);
    } catch (err) {
      if (!this.#skipBad) throw err;
      if (!this.#bad.has(index)) {
        this.#bad.add(index);
        this.skipped++;
        const why = err instanceof Error ? err.message : String(err);
        this.skippedSamples.push(`${this.dataset.describe(index)}: ${why}`);
      }
      return null;
    } finally {
      this.#release();
    }
    this.#cache?.set(index, img);
    return img;
  }

  #acquire(): Promise<void> {
    if (this.#slots > 0) {
      this.#slots--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#slots++;
  }
}
