import assert from "node:assert/strict";
import sharp from "sharp";
import { loadImageFolder } from "../lib/data/image_folder.ts";
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

async function touch(dir: string, rel: string[]): Promise<void> {
  for (const r of rel) {
    const path = `${dir}/${r}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(path, new Uint8Array());
  }
}

Deno.test("loadImageFolder() orders classes and files as torchvision's ImageFolder", async () => {
  await withDir(async (dir) => {
    await touch(dir, [
      "b/x.png",
      "a/z.JPG",
      "a/B.png",
      "a/a10.png",
      "a/a2.jpeg",
      "a/notes.txt",
      "a/sub/c.png",
      "a/sub/a.png",
      "a/sub b/q.png",
      "a/.hidden/h.png",
      "c/d/e.tif",
    ]);
    const ds = await loadImageFolder(dir);
    assert.deepEqual(ds.classes, ["a", "b", "c"]);
    assert.equal(ds.numClasses, 3);
    // os.walk roots sorted ("a" < "a/.hidden" < "a/sub" < "a/sub b"), then files by code point.
    const rel = Array.from(
      { length: ds.length },
      (_, i) => ds.describe(i).slice(dir.length + 1),
    );
    assert.deepEqual(rel, [
      "a/B.png",
      "a/a10.png",
      "a/a2.jpeg",
      "a/z.JPG",
      "a/.hidden/h.png",
      "a/sub/a.png",
      "a/sub/c.png",
      "a/sub b/q.png",
      "b/x.png",
      "c/d/e.tif",
    ]);
    assert.deepEqual(Array.from(ds.labels), [0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
  });
});

Deno.test("loadImageFolder() reproduces the reference's HAM10000 order and labels", async () => {
  const golden =
    JSON.parse(await Deno.readTextFile(`${fixtures}noise_golden.json`))
      .ham10000;
  await withDir(async (dir) => {
    // Shuffled creation order: the listing order of the file system must not matter.
    const files: string[] = [...golden.files];
    for (let i = files.length - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1);
      [files[i], files[j]] = [files[j], files[i]];
    }
    await touch(dir, files);
    const ds = await loadImageFolder(dir, { name: "ham10000" });
    assert.equal(ds.name, "ham10000");
    assert.deepEqual(ds.classes, golden.classes);
    assert.equal(ds.length, 10015);
    const rel = Array.from(
      { length: ds.length },
      (_, i) => ds.describe(i).slice(dir.length + 1),
    );
    assert.deepEqual(rel, golden.files);
    assert.deepEqual(Array.from(ds.labels), golden.clean);
  });
});

Deno.test("loadImageFolder() follows symlinked class folders inside the dataset", async () => {
  await withDir(async (dir) => {
    await touch(dir, ["data/store/one.png", "data/train/real/two.png"]);
    await Deno.symlink(`${dir}/data/store`, `${dir}/data/train/linked`);
    const ds = await loadImageFolder(`${dir}/data/train`, {
      within: `${dir}/data`,
    });
    assert.deepEqual(ds.classes, ["linked", "real"]);
    assert.deepEqual(Array.from(ds.labels), [0, 1]);
  });
});

Deno.test("loadImageFolder() refuses a symlink out of the dataset unless allowed", async () => {
  await withDir(async (dir) => {
    await touch(dir, [
      "elsewhere/one.png",
      "secret/key.png",
      "data/real/two.png",
    ]);
    const real = await Deno.realPath(dir);
    // A class folder linked out (as `data/x/train/a -> /etc` would be).
    await Deno.symlink(`${dir}/elsewhere`, `${dir}/data/linked`);
    await assert.rejects(
      loadImageFolder(`${dir}/data`),
      (e: Error) =>
        e.message ===
          `Image folder "${dir}/data": "${dir}/data/linked" is a symlink to "${real}/elsewhere", outside "${real}/data" (refused; allowOutsideLinks follows it)`,
    );
    const ds = await loadImageFolder(`${dir}/data`, {
      allowOutsideLinks: true,
    });
    assert.deepEqual(ds.classes, ["linked", "real"]);
    assert.deepEqual(Array.from(ds.labels), [0, 1]);

    // A nested folder and a single image file linked out.
    await Deno.remove(`${dir}/data/linked`);
    await Deno.symlink("/etc", `${dir}/data/real/etc`);
    await assert.rejects(
      loadImageFolder(`${dir}/data`),
      /"[^"]*\/data\/real\/etc" is a symlink to "\/etc", outside/,
    );
    await Deno.remove(`${dir}/data/real/etc`);
    await Deno.symlink(`${dir}/secret/key.png`, `${dir}/data/real/key.png`);
    await assert.rejects(
      loadImageFolder(`${dir}/data`),
      /"[^"]*\/data\/real\/key\.png" is a symlink to "[^"]*\/secret\/key\.png", outside/,
    );
  });
});

Deno.test("loadImageFolder() decodes samples on demand", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/cls`);
    await Deno.copyFile(`${fixtures}mnist_like.png`, `${dir}/cls/m.png`);
    const pixels = new Uint8Array(5 * 4 * 3).fill(200);
    await sharp(pixels, { raw: { width: 5, height: 4, channels: 3 } }).png()
      .toFile(`${dir}/cls/n.png`);
    const ds = await loadImageFolder(dir);
    assert.deepEqual((await ds.image(0)).width, 28);
    const n = await ds.image(1);
    assert.deepEqual([n.width, n.height, n.channels, n.data[0]], [
      5,
      4,
      3,
      200,
    ]);
    await assert.rejects(ds.image(2), /has no sample 2 \(it has 2\)/);
  });
});

Deno.test("loadImageFolder() rejects an empty class folder, naming it", async () => {
  await withDir(async (dir) => {
    await touch(dir, ["AKIEC/a.jpg", "BCC/readme.txt"]);
    await assert.rejects(
      loadImageFolder(dir),
      new RegExp(
        `Class folder "${dir}/BCC" has no images \\(expected files ending in \\.jpg, \\.jpeg, \\.png`,
      ),
    );
  });
});

Deno.test("loadImageFolder() rejects a missing folder or one without class folders", async () => {
  await withDir(async (dir) => {
    await assert.rejects(
      loadImageFolder(`${dir}/none`),
      new RegExp(`Image folder "${dir}/none" does not exist`),
    );
    await touch(dir, ["flat/a.png"]);
    await assert.rejects(
      loadImageFolder(`${dir}/flat`),
      /has no class folders \(expected .*\/flat\/<CLASS>\/<image>\)/,
    );
    await assert.rejects(
      loadImageFolder(`${dir}/flat/a.png`),
      /is not a folder/,
    );
  });
});
