import assert from "node:assert/strict";
import { type Batch, BatchLoader } from "../lib/data/loader.ts";
import type { Dataset } from "../lib/data/dataset.ts";
import type { RawImage } from "../lib/data/image.ts";
import { makeSynthetic } from "../lib/data/synthetic.ts";
import {
  cropNormalize,
  resizeSquare,
  testTransform,
} from "../lib/data/transforms.ts";

const transform = { resize: 12, crop: 8 };
const per = 8 * 8 * 3;

function synthetic(size = 10): Dataset {
  return makeSynthetic({ numClasses: 3, size, imageSize: 16, seed: 1 });
}

/** A dataset wrapper that counts calls, can delay, and can fail some indices. */
function instrumented(
  base: Dataset,
  opts: { fail?: Set<number>; delayMs?: number } = {},
) {
  const stats = {
    calls: 0,
    inFlight: 0,
    maxInFlight: 0,
    perIndex: new Map<number, number>(),
  };
  const ds: Dataset = {
    ...base,
    labels: base.labels,
    describe: (i) => `img${i}.png`,
    async image(i: number): Promise<RawImage> {
      stats.calls++;
      stats.perIndex.set(i, (stats.perIndex.get(i) ?? 0) + 1);
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      try {
        await new Promise((r) => setTimeout(r, opts.delayMs ?? 0));
        if (opts.fail?.has(i)) {
          throw new Error(
            `Cannot read image "img${i}.png": the file is truncated or corrupt`,
          );
        }
        return await base.image(i);
      } finally {
        stats.inFlight--;
      }
    },
  };
  return { ds, stats };
}

async function collect(loader: BatchLoader, e: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.epoch(e)) out.push(b);
  return out;
}

Deno.test("BatchLoader yields every sample once, in order without shuffle", async () => {
  const ds = synthetic(10);
  const loader = new BatchLoader(ds, { batchSize: 4, transform });
  assert.equal(loader.batchesPerEpoch(), 3);
  const batches = await collect(loader, 0);
  assert.deepEqual(batches.map((b) => b.size), [4, 4, 2]);
  assert.deepEqual(batches.flatMap((b) => Array.from(b.indices)), [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
  ]);
  assert.deepEqual(Array.from(batches[2].labels), [ds.labels[8], ds.labels[9]]);
  assert.equal(batches[2].images.length, 2 * per);
  const dropped = new BatchLoader(ds, {
    batchSize: 4,
    transform,
    dropLast: true,
  });
  assert.equal(dropped.batchesPerEpoch(), 2);
  assert.equal((await collect(dropped, 0)).length, 2);
});

Deno.test("BatchLoader without augmentation applies the test transform", async () => {
  const ds = synthetic(5);
  const [batch] = await collect(
    new BatchLoader(ds, { batchSize: 5, transform }),
    0,
  );
  for (let i = 0; i < 5; i++) {
    const expected = new Float32Array(per);
    await testTransform(await ds.image(i), expected, 0, transform);
    assert.deepEqual(batch.images.subarray(i * per, (i + 1) * per), expected);
  }
});

Deno.test("BatchLoader reshuffles per epoch, reproducibly from (seed, epoch)", async () => {
  const ds = synthetic(30);
  const make = (seed: number) =>
    new BatchLoader(ds, { batchSize: 7, shuffle: true, seed, transform });
  const a = make(5);
  const e0 = Array.from(a.epochOrder(0));
  assert.deepEqual(
    [...e0].sort((x, y) => x - y),
    Array.from({ length: 30 }, (_, i) => i),
  );
  assert.notDeepEqual(e0, Array.from({ length: 30 }, (_, i) => i));
  assert.notDeepEqual(e0, Array.from(a.epochOrder(1)));
  assert.deepEqual(e0, Array.from(make(5).epochOrder(0)));
  assert.notDeepEqual(e0, Array.from(make(6).epochOrder(0)));
  const batches = await collect(a, 0);
  assert.deepEqual(batches.flatMap((b) => Array.from(b.indices)), e0);
  assert.deepEqual(
    batches.flatMap((b) => Array.from(b.labels)),
    e0.map((i) => ds.labels[i]),
  );
});

Deno.test("BatchLoader's augmented batches do not depend on prefetch, concurrency or cache", async () => {
  const ds = synthetic(12);
  const run = async (
    prefetch: number,
    concurrency: number,
    cache: boolean,
    delayMs: number,
  ) => {
    const { ds: slow } = instrumented(ds, { delayMs });
    const loader = new BatchLoader(slow, {
      batchSize: 5,
      shuffle: true,
      augment: true,
      seed: 9,
      transform,
      prefetch,
      concurrency,
      cache,
    });
    const epochs = [];
    for (const e of [0, 1]) epochs.push(await collect(loader, e));
    return epochs;
  };
  const reference = await run(0, 1, false, 0);
  assert.deepEqual(await run(3, 4, false, 2), reference);
  assert.deepEqual(await run(1, 2, true, 1), reference);
  assert.notDeepEqual(reference[0][0].images, reference[1][0].images);
});

Deno.test("BatchLoader augments with a flip and a crop of the resized image", async () => {
  const ds = synthetic(6);
  const loader = new BatchLoader(ds, {
    batchSize: 6,
    augment: true,
    transform,
    seed: 2,
  });
  const seen = new Set<string>();
  for (const e of [0, 1, 2]) {
    const [batch] = await collect(loader, e);
    for (let i = 0; i < 6; i++) {
      const resized = resizeSquare(await ds.image(i), 12);
      const got = batch.images.subarray(i * per, (i + 1) * per);
      let match = "";
      for (const flip of [false, true]) {
        for (let top = 0; top <= 4; top++) {
          for (let left = 0; left <= 4; left++) {
            const want = new Float32Array(per);
            cropNormalize(resized, { top, left, flip }, want, 0, { crop: 8 });
            if (want.every((v, j) => v === got[j])) {
              match = `${flip},${top},${left}`;
            }
          }
        }
      }
      assert.notEqual(
        match,
        "",
        `sample ${i} in epoch ${e} is no flip/crop of its image`,
      );
      seen.add(match);
    }
  }
  assert.ok(seen.size > 6, `only ${seen.size} distinct placements in 18 draws`);
});

Deno.test("BatchLoader hands out the labels it is given", async () => {
  const ds = synthetic(6);
  const noisy = Int32Array.from([2, 2, 2, 0, 0, 0]);
  const batches = await collect(
    new BatchLoader(ds, { batchSize: 4, labels: noisy, transform }),
    0,
  );
  assert.deepEqual(batches.flatMap((b) => Array.from(b.labels)), [
    2,
    2,
    2,
    0,
    0,
    0,
  ]);
  assert.throws(
    () => new BatchLoader(ds, { batchSize: 4, labels: new Int32Array(5) }),
    /option "labels" must be one label per sample of "synthetic" \(6\), got 5 labels/,
  );
  assert.throws(
    () =>
      new BatchLoader(ds, {
        batchSize: 4,
        labels: Int32Array.from([0, 0, 3, 0, 0, 0]),
      }),
    /option "labels" must be 0 to 2, got 3 at index 2/,
  );
});

Deno.test("BatchLoader loads the next batches while the current one is used", async () => {
  const { ds, stats } = instrumented(synthetic(20));
  const loader = new BatchLoader(ds, { batchSize: 4, prefetch: 2, transform });
  const it = loader.epoch(0)[Symbol.asyncIterator]();
  await it.next();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(stats.calls, 12, "batch 0 plus two batches ahead");
  await it.next();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(stats.calls, 16);
  await it.return?.(undefined);
});

Deno.test("BatchLoader bounds the images in flight and caches decoded ones", async () => {
  const { ds, stats } = instrumented(synthetic(12), { delayMs: 2 });
  const loader = new BatchLoader(ds, {
    batchSize: 6,
    prefetch: 1,
    concurrency: 3,
    cache: true,
    transform,
  });
  await collect(loader, 0);
  await collect(loader, 1);
  assert.ok(stats.maxInFlight <= 3, `${stats.maxInFlight} images in flight`);
  assert.equal(stats.maxInFlight, 3);
  assert.equal(stats.calls, 12, "each image decoded once over two epochs");
});

Deno.test("BatchLoader with skipBad drops unreadable samples and counts them once", async () => {
  const { ds } = instrumented(synthetic(8), { fail: new Set([1, 6]) });
  const loader = new BatchLoader(ds, {
    batchSize: 4,
    skipBad: true,
    transform,
  });
  const reference = await collect(
    new BatchLoader(synthetic(8), { batchSize: 8, transform }),
    0,
  );
  for (const e of [0, 1]) {
    const batches = await collect(loader, e);
    assert.deepEqual(batches.map((b) => b.size), [3, 3]);
    assert.deepEqual(batches.map((b) => Array.from(b.indices)), [[0, 2, 3], [
      4,
      5,
      7,
    ]]);
    assert.equal(batches[0].images.length, 3 * per);
    assert.deepEqual(
      batches[1].images.subarray(2 * per),
      reference[0].images.subarray(7 * per),
      "compacted in order",
    );
  }
  assert.equal(loader.skipped, 2);
  assert.equal(loader.skippedSamples.length, 2);
  assert.match(
    loader.skippedSamples[0],
    /^img1\.png: Cannot read image "img1\.png": the file is truncated/,
  );
});

Deno.test("BatchLoader with skipBad hands out no empty batch", async () => {
  const { ds } = instrumented(synthetic(6), { fail: new Set([2, 3]) });
  const loader = new BatchLoader(ds, {
    batchSize: 2,
    skipBad: true,
    transform,
  });
  const batches = await collect(loader, 0);
  assert.deepEqual(batches.map((b) => Array.from(b.indices)), [[0, 1], [4, 5]]);
  assert.equal(loader.skipped, 2);
});

Deno.test("BatchLoader without skipBad fails the epoch naming the file", async () => {
  const { ds } = instrumented(synthetic(12), { fail: new Set([9]) });
  const loader = new BatchLoader(ds, { batchSize: 4, prefetch: 2, transform });
  const seen: number[] = [];
  await assert.rejects(async () => {
    for await (const b of loader.epoch(0)) {
      seen.push(b.size);
      // The failing batch is prefetched meanwhile; its rejection must wait for us.
      await new Promise((r) => setTimeout(r, 10));
    }
  }, /Cannot read image "img9\.png"/);
  assert.deepEqual(seen, [4, 4]);
});

Deno.test("BatchLoader names a bad option", () => {
  const ds = synthetic(4);
  assert.throws(
    () => new BatchLoader(ds, { batchSize: 0 }),
    /option "batchSize" must be a positive integer, got 0/,
  );
  assert.throws(
    () => new BatchLoader(ds, { batchSize: 2, prefetch: -1 }),
    /option "prefetch" must be an integer >= 0, got -1/,
  );
  assert.throws(
    () =>
      new BatchLoader(ds, { batchSize: 2, transform: { resize: 8, crop: 9 } }),
    /option "transform.crop" must be a positive integer <= resize \(8\), got 9/,
  );
  assert.throws(
    () => new BatchLoader(ds, { batchSize: 2 }).epochOrder(-1),
    /Epoch must be an integer >= 0, got -1/,
  );
});
