import assert from "node:assert/strict";
import { crc32 } from "../lib/io/zip.ts";
import { loadMedmnist } from "../lib/data/medmnist.ts";
import { FIXTURES_URL } from "./_fixtures.ts";

const fixtures = FIXTURES_URL.pathname;

function npy(descr: string, shape: number[], data: Uint8Array): Uint8Array {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let text =
    `{'descr': '${descr}', 'fortran_order': False, 'shape': ${dims}, }`;
  while ((10 + text.length + 1) % 64 !== 0) text += " ";
  const h = new TextEncoder().encode(text + "\n");
  const out = new Uint8Array(10 + h.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, h.length, true);
  out.set(h, 10);
  out.set(data, 10 + h.length);
  return out;
}

/** A stored (uncompressed) zip, enough for `np.savez`-like test files. */
function zip(members: Record<string, Uint8Array>): Uint8Array {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(members)) {
    const n = enc.encode(name);
    const crc = crc32(data);
    const local = new Uint8Array(30 + n.length + data.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, data.length, true);
    lv.setUint16(26, n.length, true);
    local.set(n, 30);
    local.set(data, 30 + n.length);
    const central = new Uint8Array(46 + n.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, data.length, true);
    cv.setUint16(28, n.length, true);
    cv.setUint32(42, offset, true);
    central.set(n, 46);
    locals.push(local);
    centrals.push(central);
    offset += local.length;
  }
  const cdSize = centrals.reduce((a, c) => a + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, centrals.length, true);
  ev.setUint16(10, centrals.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const parts = [...locals, ...centrals, eocd];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadMedmnist() reads an RGB split in file order, as views", async () => {
  await withDir(async (dir) => {
    await Deno.copyFile(
      `${fixtures}bloodmnist_tiny.npz`,
      `${dir}/bloodmnist.npz`,
    );
    const ds = await loadMedmnist(dir, { flag: "bloodmnist", split: "train" });
    assert.equal(ds.length, 12);
    assert.equal(ds.numClasses, 8);
    assert.equal(ds.classes[7], "platelet");
    assert.deepEqual(Array.from(ds.labels), [
      6,
      3,
      3,
      3,
      0,
      4,
      4,
      7,
      5,
      0,
      3,
      4,
    ]);
    const a = await ds.image(0);
    const b = await ds.image(1);
    assert.deepEqual([a.width, a.height, a.channels, a.data.length], [
      28,
      28,
      3,
      28 * 28 * 3,
    ]);
    assert.deepEqual(Array.from(a.data.subarray(0, 4)), [99, 206, 239, 189]);
    assert.deepEqual(Array.from(b.data.subarray(0, 4)), [169, 37, 116, 133]);
    assert.equal(a.data.buffer, b.data.buffer, "images are views of one array");
    assert.equal(ds.describe(3), "bloodmnist.npz:train[3]");
    const test = await loadMedmnist(dir, { flag: "bloodmnist", split: "test" });
    assert.deepEqual(Array.from(test.labels), [4, 0, 3, 5, 7, 5]);
    await assert.rejects(test.image(6), /has no sample 6 \(it has 6\)/);
  });
});

Deno.test("loadMedmnist() keeps grayscale images as one channel", async () => {
  await withDir(async (dir) => {
    await Deno.copyFile(
      `${fixtures}organcmnist_tiny.npz`,
      `${dir}/organcmnist_28.npz`,
    );
    const ds = await loadMedmnist(dir, {
      flag: "organcmnist",
      split: "test",
      size: 28,
    });
    assert.equal(ds.numClasses, 11);
    assert.deepEqual(Array.from(ds.labels), [7, 1, 3, 9, 8]);
    const img = await ds.image(0);
    assert.deepEqual([img.width, img.height, img.channels], [28, 28, 1]);
    assert.deepEqual(Array.from(img.data.subarray(0, 4)), [118, 92, 243, 211]);
  });
});

Deno.test("loadMedmnist() prefers the 224 file and accepts an explicit path", async () => {
  await withDir(async (dir) => {
    await Deno.copyFile(
      `${fixtures}bloodmnist_tiny.npz`,
      `${dir}/bloodmnist_224.npz`,
    );
    await Deno.copyFile(
      `${fixtures}organcmnist_tiny.npz`,
      `${dir}/bloodmnist.npz`,
    );
    assert.equal(
      (await loadMedmnist(dir, { flag: "bloodmnist", split: "train" })).length,
      12,
    );
    const explicit = await loadMedmnist("/nowhere", {
      flag: "organcmnist",
      split: "val",
      file: `${fixtures}organcmnist_tiny.npz`,
    });
    assert.equal(explicit.length, 3);
    await assert.rejects(
      loadMedmnist(dir, { flag: "organcmnist", split: "train", size: 64 }),
      /MedMNIST "organcmnist" not found: expected ".*\/organcmnist_64\.npz"; download it with `deno task fetch:medmnist organcmnist --size 64`$/,
    );
  });
});

Deno.test("loadMedmnist() names the file and key of a missing or malformed member", async () => {
  await withDir(async (dir) => {
    const images = npy("|u1", [2, 4, 4], new Uint8Array(32));
    const labels = npy("|u1", [2, 1], Uint8Array.from([1, 0]));
    const write = (members: Record<string, Uint8Array>) =>
      Deno.writeFile(`${dir}/bloodmnist.npz`, zip(members));
    const load = () =>
      loadMedmnist(dir, { flag: "bloodmnist", split: "train" });

    await write({ "train_images.npy": images, "train_labels.npy": labels });
    assert.equal(
      (await load()).length,
      2,
      "the hand-made file itself is valid",
    );

    await write({ "train_images.npy": images });
    await assert.rejects(
      load(),
      /MedMNIST file ".*bloodmnist\.npz" has no key "train_labels" \(it has train_images\)/,
    );

    const floats = npy("<f4", [2, 4, 4], new Uint8Array(128));
    await write({ "train_images.npy": floats, "train_labels.npy": labels });
    await assert.rejects(
      load(),
      /".*bloodmnist\.npz" key "train_images" has dtype '<f4', expected uint8/,
    );

    const fl = npy("<f8", [2, 1], new Uint8Array(16));
    await write({ "train_images.npy": images, "train_labels.npy": fl });
    await assert.rejects(
      load(),
      /key "train_labels" has dtype '<f8', expected an integer dtype/,
    );

    await write({
      "train_images.npy": npy("|u1", [2, 4, 4, 2], new Uint8Array(64)),
      "train_labels.npy": labels,
    });
    await assert.rejects(
      load(),
      /key "train_images" has shape \(2, 4, 4, 2\), expected N x H x W or N x H x W x 3/,
    );

    await write({
      "train_images.npy": images,
      "train_labels.npy": npy("|u1", [3, 1], new Uint8Array(3)),
    });
    await assert.rejects(
      load(),
      /key "train_labels" has 3 labels for 2 images/,
    );

    await write({
      "train_images.npy": images,
      "train_labels.npy": npy("|u1", [2, 1], Uint8Array.from([0, 8])),
    });
    await assert.rejects(
      load(),
      /key "train_labels" has label 8 at index 1, expected 0 to 7/,
    );
  });
});

Deno.test("loadMedmnist() passes its inflate limits to the zip reader and names the file", async () => {
  await withDir(async (dir) => {
    const images = npy("|u1", [2, 4, 4], new Uint8Array(32));
    const labels = npy("|u1", [2, 1], Uint8Array.from([1, 0]));
    await Deno.writeFile(
      `${dir}/bloodmnist.npz`,
      zip({ "train_images.npy": images, "train_labels.npy": labels }),
    );
    await assert.rejects(
      loadMedmnist(dir, {
        flag: "bloodmnist",
        split: "train",
        maxMemberBytes: images.length - 1,
      }),
      (e: Error) =>
        e.message ===
          `Cannot read "train_images.npy" from zip "${dir}/bloodmnist.npz": it declares ${images.length} uncompressed bytes, more than the limit of ${
            images.length - 1
          } per member (option maxMemberBytes)`,
    );
    await assert.rejects(
      loadMedmnist(dir, {
        flag: "bloodmnist",
        split: "train",
        maxTotalBytes: images.length,
      }),
      /"train_labels\.npy" from zip ".*bloodmnist\.npz": its \d+ bytes would bring this archive's total to \d+, more than the limit of \d+ \(option maxTotalBytes\)/,
    );
  });
});
