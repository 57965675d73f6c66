import assert from "node:assert/strict";
import { loadDataset } from "../lib/data/dataset.ts";
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

Deno.test("loadDataset() opens HAM10000's prepared split folders", async () => {
  await withDir(async (dir) => {
    for (const f of ["train/NV/b.jpg", "train/MEL/a.jpg", "test/NV/c.jpg"]) {
      await Deno.mkdir(`${dir}/${f.slice(0, f.lastIndexOf("/"))}`, {
        recursive: true,
      });
      await Deno.writeFile(`${dir}/${f}`, new Uint8Array());
    }
    const train = await loadDataset("ham10000", { root: dir, split: "train" });
    assert.equal(train.name, "ham10000");
    assert.deepEqual(train.classes, ["MEL", "NV"]);
    assert.deepEqual(Array.from(train.labels), [0, 1]);
    const test = await loadDataset("ham10000", {
      root: `${dir}/`,
      split: "test",
    });
    assert.deepEqual([test.length, test.describe(0)], [
      1,
      `${dir}/test/NV/c.jpg`,
    ]);
  });
});

Deno.test("loadDataset() opens MedMNIST flags, APTOS and synthetic data by name", async () => {
  await withDir(async (dir) => {
    await Deno.copyFile(
      `${fixtures}organcmnist_tiny.npz`,
      `${dir}/organcmnist.npz`,
    );
    const organ = await loadDataset("organcmnist", {
      root: dir,
      split: "train",
    });
    assert.deepEqual([organ.name, organ.numClasses, organ.length], [
      "organcmnist",
      11,
      10,
    ]);
    await Deno.writeTextFile(`${dir}/test.csv`, "id_code,diagnosis\nq,2\n");
    const aptos = await loadDataset("APTOS", { root: dir, split: "test" });
    assert.deepEqual([aptos.name, Array.from(aptos.labels)], ["aptos", [2]]);
    const syn = await loadDataset("synthetic", {
      root: "",
      split: "test",
      numClasses: 3,
      perClass: 2,
      imageSize: 16,
    });
    assert.deepEqual([syn.name, syn.length, syn.describe(0)], [
      "synthetic",
      6,
      "synthetic:test[0]",
    ]);
  });
});

Deno.test("loadDataset() treats other names as image folders and explains a missing one", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/train/x`, { recursive: true });
    await Deno.writeFile(`${dir}/train/x/1.png`, new Uint8Array());
    assert.equal(
      (await loadDataset("mine", { root: dir, split: "train" })).name,
      "mine",
    );
    await assert.rejects(
      loadDataset("mine", { root: dir, split: "test" }),
      /Dataset "mine": folder ".*\/test" does not exist, expected .*\/\{train,test\}\/<CLASS>\/<image> \(known datasets: ham10000, aptos/,
    );
    await assert.rejects(
      loadDataset("ham10000", { root: `${dir}/none`, split: "train" }),
      /Dataset "ham10000": folder ".*\/none\/train" does not exist, .*; build it from the ISIC 2018 files with `deno task prepare:ham10000` \(see its --help\)$/,
    );
    await assert.rejects(
      loadDataset("ham10000", { root: dir, split: "val" as "train" }),
      /Dataset split "val" is not "train" or "test"/,
    );
  });
});

Deno.test("loadDataset() refuses an image folder whose class links out of the dataset root", async () => {
  await withDir(async (dir) => {
    for (
      const f of ["x/train/b/one.jpg", "x/shared/two.jpg", "out/three.jpg"]
    ) {
      await Deno.mkdir(`${dir}/${f.slice(0, f.lastIndexOf("/"))}`, {
        recursive: true,
      });
      await Deno.writeFile(`${dir}/${f}`, new Uint8Array());
    }
    const real = await Deno.realPath(dir);
    // Inside the dataset root (x), a link between its folders is fine.
    await Deno.symlink(`${dir}/x/shared`, `${dir}/x/train/a`);
    const ds = await loadDataset("x", { root: `${dir}/x`, split: "train" });
    assert.deepEqual(ds.classes, ["a", "b"]);
    // `data/x/train/c -> <outside>`, like `-> /etc`: refused, naming it.
    await Deno.symlink(`${dir}/out`, `${dir}/x/train/c`);
    await assert.rejects(
      loadDataset("x", { root: `${dir}/x`, split: "train" }),
      (e: Error) =>
        e.message ===
          `Image folder "${dir}/x/train": "${dir}/x/train/c" is a symlink to "${real}/out", outside "${real}/x" (refused; allowOutsideLinks follows it)`,
    );
    const all = await loadDataset("x", {
      root: `${dir}/x`,
      split: "train",
      allowOutsideLinks: true,
    });
    assert.deepEqual(all.classes, ["a", "b", "c"]);
  });
});
