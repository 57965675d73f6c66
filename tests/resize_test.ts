import assert from "node:assert/strict";
import { resizeBilinear } from "../lib/data/resize.ts";
import type { RawImage } from "../lib/data/image.ts";

// Expected values are Pillow 9.4's `Image.resize(size, Image.BILINEAR)` output.
const src = Uint8Array.from([
  [0, 50, 100, 150, 200, 250, 30],
  [10, 60, 110, 160, 210, 5, 90],
  [255, 0, 255, 0, 255, 0, 128],
  [7, 77, 177, 27, 227, 127, 17],
].flat());
const gray: RawImage = { data: src, width: 7, height: 4, channels: 1 };

function rows(img: RawImage): number[][] {
  const out: number[][] = [];
  const rowLen = img.width * img.channels;
  for (let y = 0; y < img.height; y++) {
    out.push(Array.from(img.data.subarray(y * rowLen, (y + 1) * rowLen)));
  }
  return out;
}

Deno.test("resizeBilinear() matches Pillow when shrinking both axes", () => {
  assert.deepEqual(rows(resizeBilinear(gray, { width: 3, height: 2 })), [[
    62,
    144,
    117,
  ], [101, 123, 101]]);
});

Deno.test("resizeBilinear() matches Pillow when enlarging both axes", () => {
  assert.deepEqual(rows(resizeBilinear(gray, { width: 10, height: 6 })), [
    [0, 27, 63, 98, 133, 167, 202, 238, 151, 30],
    [5, 32, 68, 103, 138, 172, 201, 147, 97, 60],
    [51, 50, 71, 130, 134, 162, 207, 57, 46, 96],
    [214, 102, 66, 220, 98, 104, 235, 63, 55, 122],
    [131, 80, 83, 207, 84, 93, 232, 108, 68, 73],
    [7, 45, 102, 172, 79, 97, 222, 152, 77, 17],
  ]);
});

Deno.test("resizeBilinear() resamples only the axis whose size changes", () => {
  assert.deepEqual(rows(resizeBilinear(gray, { width: 7, height: 2 })), [
    [41, 47, 126, 133, 212, 109, 70],
    [114, 42, 201, 34, 237, 55, 75],
  ]);
  assert.deepEqual(rows(resizeBilinear(gray, { width: 2, height: 9 })), [
    [79, 164],
    [81, 155],
    [85, 130],
    [92, 108],
    [113, 109],
    [133, 110],
    [118, 113],
    [98, 116],
    [90, 117],
  ]);
});

Deno.test("resizeBilinear() resamples RGB channels independently", () => {
  const rgb = new Uint8Array(src.length * 3);
  for (let i = 0; i < src.length; i++) {
    rgb[i * 3] = src[i];
    rgb[i * 3 + 1] = 255 - src[i];
    rgb[i * 3 + 2] = src[i] >> 1;
  }
  const out = resizeBilinear({ data: rgb, width: 7, height: 4, channels: 3 }, {
    width: 3,
    height: 5,
  });
  assert.equal(out.channels, 3);
  assert.deepEqual(
    rows(out),
    [
      [[43, 212, 21], [150, 105, 75], [161, 94, 80]],
      [[50, 205, 25], [146, 109, 73], [104, 151, 51]],
      [[100, 156, 50], [133, 123, 66], [90, 166, 45]],
      [[124, 131, 62], [119, 136, 60], [103, 152, 51]],
      [[73, 182, 36], [118, 137, 59], [109, 146, 54]],
    ].map((r) => r.flat()),
  );
});

Deno.test("resizeBilinear() copies an image already at the requested size", () => {
  const out = resizeBilinear(gray, { width: 7, height: 4 });
  assert.deepEqual(out.data, src);
  assert.notEqual(out.data, src);
});

Deno.test("resizeBilinear() writes into a given output buffer", () => {
  const buf = new Uint8Array(6);
  const out = resizeBilinear(gray, { width: 3, height: 2 }, { out: buf });
  assert.equal(out.data, buf);
  assert.deepEqual(Array.from(buf), [62, 144, 117, 101, 123, 101]);
});

Deno.test("resizeBilinear() rejects bad sizes and short buffers", () => {
  assert.throws(
    () => resizeBilinear(gray, { width: 0, height: 2 }),
    /width must be a positive integer, got 0/,
  );
  assert.throws(
    () => resizeBilinear(gray, { width: 2, height: 1.5 }),
    /height must be a positive integer, got 1.5/,
  );
  assert.throws(
    () =>
      resizeBilinear({ ...gray, data: src.subarray(0, 10) }, {
        width: 2,
        height: 2,
      }),
    /length 10 is shorter than 7x4x1/,
  );
  assert.throws(
    () =>
      resizeBilinear(gray, { width: 3, height: 2 }, { out: new Uint8Array(5) }),
    /output of length 5 is shorter than 3x2x1/,
  );
});
