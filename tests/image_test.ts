import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import sharp from "sharp";
import { decodeImage, decodeImageBytes } from "../lib/data/image.ts";
import { FIXTURES_URL } from "./_fixtures.ts";

const fixtures = FIXTURES_URL.pathname;

/** A minimal PNG encoder, so that modes sharp does not write can be tested. */
function png(
  width: number,
  height: number,
  colorType: 0 | 2 | 3 | 4 | 6,
  bitDepth: 8 | 16,
  samples: number[],
  extra: [string, Uint8Array][] = [],
): Uint8Array {
  const perPixel = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType];
  const bytesPer = bitDepth / 8;
  const rowLen = width * perPixel * bytesPer;
  const raw = new Uint8Array(height * (rowLen + 1));
  const view = new DataView(raw.buffer);
  let i = 0;
  for (let y = 0; y < height; y++) {
    let p = y * (rowLen + 1) + 1;
    for (let x = 0; x < width * perPixel; x++, p += bytesPer) {
      if (bitDepth === 16) view.setUint16(p, samples[i++]);
      else raw[p] = samples[i++];
    }
  }
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr.set([bitDepth, colorType, 0, 0, 0], 8);
  const chunks: [string, Uint8Array][] = [["IHDR", ihdr], ...extra, [
    "IDAT",
    deflateSync(raw),
  ], ["IEND", new Uint8Array()]];
  const parts = [
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  ];
  for (const [type, data] of chunks) {
    const c = new Uint8Array(12 + data.length);
    const dv = new DataView(c.buffer);
    dv.setUint32(0, data.length);
    c.set(new TextEncoder().encode(type), 4);
    c.set(data, 8);
    dv.setUint32(8 + data.length, crc32(c.subarray(4, 8 + data.length)));
    parts.push(c);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
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

function crc32(b: Uint8Array): number {
  let c = ~0;
  for (const byte of b) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

Deno.test("decodeImage() reads an RGB PNG exactly", async () => {
  await withDir(async (dir) => {
    const data = Uint8Array.from(
      { length: 4 * 3 * 3 },
      (_, i) => (i * 29) % 256,
    );
    await sharp(data, { raw: { width: 4, height: 3, channels: 3 } }).png()
      .toFile(
        `${dir}/a.png`,
      );
    const img = await decodeImage(`${dir}/a.png`);
    assert.deepEqual([img.width, img.height, img.channels], [4, 3, 3]);
    assert.deepEqual(Array.from(img.data), Array.from(data));
  });
});

Deno.test("decodeImage() keeps grayscale as one channel", async () => {
  await withDir(async (dir) => {
    await Deno.writeFile(
      `${dir}/g.png`,
      png(3, 2, 0, 8, [0, 10, 20, 30, 40, 255]),
    );
    const img = await decodeImage(`${dir}/g.png`);
    assert.deepEqual([img.width, img.height, img.channels], [3, 2, 1]);
    assert.deepEqual(Array.from(img.data), [0, 10, 20, 30, 40, 255]);
    const fixture = await decodeImage(`${fixtures}mnist_like.png`);
    assert.deepEqual([fixture.width, fixture.height, fixture.channels], [
      28,
      28,
      1,
    ]);
  });
});

Deno.test('decodeImage() drops alpha without compositing, as PIL\'s convert("RGB")', async () => {
  await withDir(async (dir) => {
    await Deno.writeFile(
      `${dir}/rgba.png`,
      png(2, 1, 6, 8, [10, 20, 30, 0, 40, 50, 60, 128]),
    );
    await Deno.writeFile(`${dir}/la.png`, png(2, 1, 4, 8, [7, 0, 9, 255]));
    const rgba = await decodeImage(`${dir}/rgba.png`);
    assert.equal(rgba.channels, 3);
    assert.deepEqual(Array.from(rgba.data), [10, 20, 30, 40, 50, 60]);
    const la = await decodeImage(`${dir}/la.png`);
    assert.equal(la.channels, 1);
    assert.deepEqual(Array.from(la.data), [7, 9]);
  });
});

Deno.test("decodeImage() expands a palette PNG, transparency ignored", async () => {
  await withDir(async (dir) => {
    const plte = Uint8Array.from([255, 0, 0, 0, 255, 0, 1, 2, 3]);
    const trns = Uint8Array.from([0, 255, 255]);
    await Deno.writeFile(
      `${dir}/p.png`,
      png(3, 1, 3, 8, [2, 0, 1], [["PLTE", plte], ["tRNS", trns]]),
    );
    const img = await decodeImage(`${dir}/p.png`);
    assert.equal(img.channels, 3);
    assert.deepEqual(Array.from(img.data), [1, 2, 3, 255, 0, 0, 0, 255, 0]);
  });
});

Deno.test("decodeImage() narrows 16-bit PNGs as PIL does", async () => {
  await withDir(async (dir) => {
    // RGB: PIL keeps the high byte. Gray: PIL opens mode "I" and clips to 255.
    await Deno.writeFile(
      `${dir}/rgb16.png`,
      png(1, 1, 2, 16, [0x1234, 0xff80, 0x00ff]),
    );
    await Deno.writeFile(`${dir}/g16.png`, png(3, 1, 0, 16, [100, 255, 4000]));
    assert.deepEqual(Array.from((await decodeImage(`${dir}/rgb16.png`)).data), [
      0x12,
      0xff,
      0x00,
    ]);
    const g = await decodeImage(`${dir}/g16.png`);
    assert.equal(g.channels, 1);
    assert.deepEqual(Array.from(g.data), [100, 255, 255]);
  });
});

Deno.test("decodeImage() decodes the JPEG fixture at its size", async () => {
  const img = await decodeImage(`${fixtures}ham_like.jpg`);
  assert.deepEqual([img.width, img.height, img.channels, img.data.length], [
    600,
    450,
    3,
    600 * 450 * 3,
  ]);
});

Deno.test("decodeImage() names the file of a truncated JPEG or PNG", async () => {
  await withDir(async (dir) => {
    for (const name of ["ham_like.jpg", "aptos_like.png"]) {
      const bytes = await Deno.readFile(`${fixtures}${name}`);
      await Deno.writeFile(
        `${dir}/${name}`,
        bytes.subarray(0, bytes.length >> 1),
      );
      await assert.rejects(
        decodeImage(`${dir}/${name}`),
        new RegExp(
          `^Error: Cannot read image ".*/${
            name.replace(".", "\\.")
          }": the file is truncated or corrupt`,
        ),
      );
    }
  });
});

Deno.test("decodeImage() rejects missing, empty and non-image files with their names", async () => {
  await withDir(async (dir) => {
    await assert.rejects(
      decodeImage(`${dir}/none.png`),
      /Cannot read image ".*none\.png": no such file/,
    );
    await assert.rejects(
      decodeImage(dir),
      /Cannot read image ".*": a folder, not an image file$/,
    );
    await Deno.writeFile(`${dir}/empty.png`, new Uint8Array());
    await assert.rejects(
      decodeImage(`${dir}/empty.png`),
      /Cannot read image ".*empty\.png": the file is empty/,
    );
    await Deno.writeTextFile(`${dir}/text.jpg`, "not an image at all");
    await assert.rejects(
      decodeImage(`${dir}/text.jpg`),
      /Cannot read image ".*text\.jpg": not a JPEG or PNG/,
    );
  });
});

Deno.test("decodeImageBytes() names the image as told", async () => {
  await assert.rejects(
    decodeImageBytes(Uint8Array.from([1, 2, 3]), { name: "zip:a.png" }),
    /Cannot read image "zip:a\.png"/,
  );
});

/** A 1 x 1 gray PNG whose header then claims `width` x `height`. */
function claimedSize(width: number, height: number): Uint8Array {
  const bytes = png(1, 1, 0, 8, [7]);
  const view = new DataView(bytes.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  view.setUint32(29, crc32(bytes.subarray(12, 29)));
  return bytes;
}

Deno.test("decodeImage() refuses an image above Pillow's pixel limit from its header", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/bomb.png`;
    // 20000 x 10000 = 200 MP declared in a 70-byte file: above 178,956,970
    // (sharp's own default would have let it through to the decoder).
    await Deno.writeFile(path, claimedSize(20000, 10000));
    await assert.rejects(
      decodeImage(path),
      (e: Error) =>
        e.message ===
          `Cannot read image "${path}": it declares 20000 x 10000 = 200000000 pixels, more than the limit of 178956970 (the default; CUFIT_MAX_IMAGE_PIXELS raises it)`,
    );
    // At the limit it is no bomb: what fails is the missing pixel data.
    await Deno.writeFile(path, claimedSize(17895697, 10));
    await assert.rejects(
      decodeImage(path),
      (e: Error) => !e.message.includes("more than the limit"),
    );
  });
});

Deno.test("decodeImage() takes a lower pixel limit from its option or the environment", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/small.png`;
    await Deno.writeFile(path, png(4, 3, 0, 8, new Array(12).fill(9)));
    assert.equal((await decodeImage(path, { maxPixels: 12 })).width, 4);
    await assert.rejects(
      decodeImage(path, { maxPixels: 11 }),
      (e: Error) =>
        e.message ===
          `Cannot read image "${path}": it declares 4 x 3 = 12 pixels, more than the limit of 11 (option maxPixels)`,
    );
    Deno.env.set("CUFIT_MAX_IMAGE_PIXELS", "10");
    try {
      await assert.rejects(
        decodeImageBytes(await Deno.readFile(path), { name: "x.png" }),
        /Cannot read image "x\.png": it declares 4 x 3 = 12 pixels, more than the limit of 10 \(set by CUFIT_MAX_IMAGE_PIXELS\)/,
      );
    } finally {
      Deno.env.delete("CUFIT_MAX_IMAGE_PIXELS");
    }
  });
});
