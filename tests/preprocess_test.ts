import assert from "node:assert/strict";
import sharp from "sharp";
import { preprocessParity } from "../lib/parity/preprocess.ts";
import { readSafetensors } from "../lib/weights/safetensors.ts";
import { FIXTURES_URL } from "./_fixtures.ts";

const fixtures = FIXTURES_URL.pathname;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("preprocessParity() matches preprocess_golden.safetensors within the README's tolerance", async () => {
  const { tensors: golden } = await readSafetensors(
    `${fixtures}preprocess_golden.safetensors`,
  );
  const got = await preprocessParity(fixtures);
  assert.deepEqual([...got.keys()], [
    "aptos_like.png",
    "ham_like.jpg",
    "mnist_like.png",
  ]);
  for (const [name, expected] of golden) {
    const t = got.get(name)!;
    assert.deepEqual([t.dtype, t.shape], ["F32", [3, 224, 224]]);
    const a = t.data as Float32Array;
    const b = expected.data as Float32Array;
    let sum = 0;
    let max = 0;
    for (let i = 0; i < b.length; i++) {
      const d = Math.abs(a[i] - b[i]);
      sum += d;
      max = Math.max(max, d);
    }
    assert.ok(
      sum / b.length <= 0.01 && max <= 0.1,
      `${name}: mean ${sum / b.length}, max ${max}`,
    );
    assert.equal(
      max,
      0,
      `${name} is expected to be bit-exact, max abs error ${max}`,
    );
  }
});

Deno.test("preprocessParity() takes JPEG and PNG files of any case and mode, nothing else", async () => {
  await withDir(async (dir) => {
    const rgba = new Uint8Array(40 * 30 * 4).map((_, i) => (i * 13) % 256);
    await sharp(rgba, { raw: { width: 40, height: 30, channels: 4 } }).png()
      .toFile(`${dir}/a.PNG`);
    await sharp(rgba, { raw: { width: 40, height: 30, channels: 4 } }).png({
      palette: true,
    }).toFile(`${dir}/p.png`);
    await sharp(rgba.subarray(0, 1200), {
      raw: { width: 40, height: 30, channels: 1 },
    }).toColourspace("b-w").jpeg()
      .toFile(`${dir}/g.Jpeg`);
    await Deno.writeTextFile(`${dir}/notes.txt`, "x");
    await Deno.mkdir(`${dir}/sub.png`);
    const got = await preprocessParity(dir);
    assert.deepEqual([...got.keys()], ["a.PNG", "g.Jpeg", "p.png"]);
    for (const t of got.values()) assert.deepEqual(t.shape, [3, 224, 224]);
    // A grayscale image gives three equal channels.
    const g = got.get("g.Jpeg")!.data as Float32Array;
    const n = 224 * 224;
    const unnormalized = (c: number, i: number) =>
      g[c * n + i] * [0.229, 0.224, 0.225][c] + [0.485, 0.456, 0.406][c];
    for (const i of [0, 777, n - 1]) {
      assert.ok(Math.abs(unnormalized(0, i) - unnormalized(2, i)) < 1e-6);
    }
  });
});

Deno.test("preprocessParity() names a missing folder or a corrupt image", async () => {
  await withDir(async (dir) => {
    await assert.rejects(
      preprocessParity(`${dir}/none`),
      /Preprocess parity folder ".*\/none" does not exist/,
    );
    await Deno.writeTextFile(`${dir}/bad.jpg`, "not a jpeg");
    await assert.rejects(
      preprocessParity(dir),
      /Cannot read image ".*\/bad\.jpg": not a JPEG or PNG/,
    );
  });
});
