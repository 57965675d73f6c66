import assert from "node:assert/strict";
import { decodeImage, type RawImage } from "../lib/data/image.ts";
import { readSafetensors } from "../lib/weights/safetensors.ts";
import {
  cropNormalize,
  normalizeTable,
  randomPlacement,
  resizeSquare,
  testTransform,
  toChw,
  trainTransform,
} from "../lib/data/transforms.ts";
import { FIXTURES_URL } from "./_fixtures.ts";

const fixtures = FIXTURES_URL.pathname;

function ramp(width: number, height: number, channels: 1 | 3): RawImage {
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 5)) % 256;
  return { data, width, height, channels };
}

Deno.test("testTransform() reproduces torchvision's test transform on the golden images", async () => {
  const { tensors: golden } = await readSafetensors(
    `${fixtures}preprocess_golden.safetensors`,
  );
  assert.deepEqual([...golden.keys()].sort(), [
    "aptos_like.png",
    "ham_like.jpg",
    "mnist_like.png",
  ]);
  for (const [name, tensor] of golden) {
    const expected = tensor.data as Float32Array;
    const out = new Float32Array(224 * 224 * 3 + 5);
    await testTransform(await decodeImage(fixtures + name), out, 5);
    const chw = toChw(out, 224, 5);
    let sum = 0;
    let max = 0;
    for (let i = 0; i < expected.length; i++) {
      const d = Math.abs(chw[i] - expected[i]);
      sum += d;
      if (d > max) max = d;
    }
    // The project's tolerance is mean <= 0.01, max <= 0.1; this pipeline is exact.
    assert.ok(
      sum / expected.length <= 1e-6,
      `${name}: mean abs error ${sum / expected.length}`,
    );
    assert.ok(max <= 1e-6, `${name}: max abs error ${max}`);
  }
});

Deno.test("normalizeTable() holds torch's float32 (v / 255 - mean) / std", () => {
  const lut = normalizeTable();
  assert.equal(lut.length, 768);
  assert.equal(
    lut[0],
    Math.fround(Math.fround(0 - Math.fround(0.485)) / Math.fround(0.229)),
  );
  assert.equal(
    lut[256 + 255],
    Math.fround(Math.fround(1 - Math.fround(0.456)) / Math.fround(0.224)),
  );
  assert.ok(Math.abs(lut[512 + 128] - (128 / 255 - 0.406) / 0.225) < 1e-6);
  const custom = normalizeTable({ mean: [0, 0, 0], std: [1, 1, 1] });
  assert.equal(custom[255], 1);
  assert.throws(
    () => normalizeTable({ std: [1, 0, 1] }),
    /"std" must not contain 0/,
  );
});

Deno.test("testTransform() center-crops with torchvision's rounding", async () => {
  const img = ramp(10, 10, 3);
  const out = new Float32Array(7 * 7 * 3);
  // (10 - 7) / 2 = 1.5 rounds half to even: 2.
  await testTransform(img, out, 0, { resize: 10, crop: 7 });
  const lut = normalizeTable();
  assert.equal(out[0], lut[img.data[(2 * 10 + 2) * 3]]);
  assert.equal(out[out.length - 1], lut[512 + img.data[(8 * 10 + 8) * 3 + 2]]);
});

Deno.test("testTransform() repeats a grayscale image to three channels", async () => {
  const gray = ramp(30, 20, 1);
  const rgbData = new Uint8Array(30 * 20 * 3);
  for (let i = 0; i < 600; i++) rgbData.fill(gray.data[i], i * 3, i * 3 + 3);
  const a = new Float32Array(16 * 16 * 3);
  const b = new Float32Array(16 * 16 * 3);
  await testTransform(gray, a, 0, { resize: 20, crop: 16 });
  await testTransform(
    { data: rgbData, width: 30, height: 20, channels: 3 },
    b,
    0,
    { resize: 20, crop: 16 },
  );
  assert.deepEqual(a, b);
});

Deno.test("trainTransform() flips then crops at the offsets drawn from rng", async () => {
  const img = ramp(40, 30, 3);
  const resized = resizeSquare(img, 12);
  const draws = [0.1, 0.5, 0.99];
  let k = 0;
  const out = new Float32Array(8 * 8 * 3);
  await trainTransform(img, () => draws[k++], out, 0, { resize: 12, crop: 8 });
  assert.equal(k, 3);
  // flip (0.1 < 0.5), top = floor(0.5 * 5) = 2, left = floor(0.99 * 5) = 4.
  const lut = normalizeTable();
  for (const [y, x] of [[0, 0], [3, 5], [7, 7]]) {
    const src = ((2 + y) * 12 + (12 - 1 - 4 - x)) * 3;
    assert.equal(out[(y * 8 + x) * 3], lut[resized.data[src]]);
    assert.equal(out[(y * 8 + x) * 3 + 2], lut[512 + resized.data[src + 2]]);
  }
  const expected = new Float32Array(out.length);
  cropNormalize(resized, { top: 2, left: 4, flip: true }, expected, 0, {
    crop: 8,
  });
  assert.deepEqual(out, expected);
});

Deno.test("randomPlacement() does not flip at 0.5 and covers every offset", () => {
  assert.deepEqual(randomPlacement(() => 0.5, 256, 224), {
    flip: false,
    top: 16,
    left: 16,
  });
  assert.deepEqual(randomPlacement(() => 0, 256, 224), {
    flip: true,
    top: 0,
    left: 0,
  });
  const last = randomPlacement(() => 1 - 2 ** -53, 256, 224);
  assert.deepEqual([last.top, last.left], [32, 32]);
});

Deno.test("toChw() turns NHWC pixels channel-first", () => {
  const nhwc = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.deepEqual(Array.from(toChw(nhwc, 2)), [
    0,
    3,
    6,
    9,
    1,
    4,
    7,
    10,
    2,
    5,
    8,
    11,
  ]);
  assert.throws(() => toChw(nhwc, 2, 1), /no 2x2x3 image at offset 1/);
});

Deno.test("transforms reject bad options and buffers", async () => {
  const img = ramp(8, 8, 3);
  await assert.rejects(
    async () =>
      await testTransform(img, new Float32Array(12), 0, { resize: 4, crop: 5 }),
    /"crop" must be a positive integer <= resize \(4\), got 5/,
  );
  await assert.rejects(
    async () =>
      await testTransform(img, new Float32Array(12), 0, { resize: 0 }),
    /"resize" must be a positive integer, got 0/,
  );
  await assert.rejects(
    async () =>
      await testTransform(img, new Float32Array(10), 0, { resize: 4, crop: 2 }),
    /Output of length 10 has no room for 2x2x3 floats at offset 0/,
  );
  assert.throws(
    () =>
      cropNormalize(
        img,
        { top: 2, left: 0, flip: false },
        new Float32Array(300),
        0,
        { crop: 7 },
      ),
    /Crop 7x7 at \(2, 0\) does not fit a 8x8 image/,
  );
});
