import assert from "node:assert/strict";
import { join } from "node:path";
import {
  defaults,
  loadDatasetConfig,
  lrAt,
  milestones,
  resolveConfig,
} from "../lib/train/config.ts";
import { openDatasets } from "../lib/train/data.ts";

async function confFile(obj: unknown): Promise<string> {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "mine.json");
  await Deno.writeTextFile(file, JSON.stringify(obj));
  return file;
}

const HAM = {
  epoch: "100",
  id_dataset: "./data/ham10000",
  batch_size: 32,
  save_path: "./checkpoints/HAM10000/",
  num_classes: 7,
};

const TOY = { train_per_class: 1, test_per_class: 1, size: 8, seed: 0 };

Deno.test("loadDatasetConfig() reads the four reference datasets by name", () => {
  const expected = {
    ham10000: [7, "image_folder", "./data/ham10000", "./checkpoints/HAM10000/"],
    aptos: [5, "aptos", "./data/APTOS-2019", "./checkpoints/APTOS2019/"],
    bloodmnist: [8, "medmnist", "./data/medmnist", "./checkpoints/BLOODMNIST/"],
    organcmnist: [
      11,
      "medmnist",
      "./data/medmnist",
      "./checkpoints/ORGANCMNIST/",
    ],
  };
  for (const [name, [k, kind, root, save]] of Object.entries(expected)) {
    const d = loadDatasetConfig(name);
    assert.equal(d.name, name);
    assert.deepEqual(
      [d.numClasses, d.kind, d.root, d.savePath, d.epochs, d.batchSize],
      [k, kind, root, save, 100, 32],
    );
  }
});

Deno.test("conf files keep the reference's keys and its string epoch", async () => {
  for (const name of ["ham10000", "aptos", "bloodmnist", "organcmnist"]) {
    const raw = JSON.parse(
      await Deno.readTextFile(new URL(`../conf/${name}.json`, import.meta.url)),
    );
    assert.equal(raw.epoch, "100", name);
    for (
      const key of ["id_dataset", "batch_size", "save_path", "num_classes"]
    ) {
      assert.ok(key in raw, `${name} lacks ${key}`);
    }
  }
});

Deno.test("loadDatasetConfig() reads the synthetic set with small images", () => {
  const d = loadDatasetConfig("synthetic");
  assert.equal(d.kind, "synthetic");
  assert.deepEqual(d.synthetic, {
    trainPerClass: 16,
    testPerClass: 8,
    size: 32,
    seed: 0,
  });
  const c = resolveConfig("cufit", d);
  assert.equal(c.dataset.synthetic?.difficulty, undefined);
  assert.equal(c.crop, 28);
  assert.equal(c.resize, 32);
  assert.equal(c.epochs, 3);
});

Deno.test("loadDatasetConfig() accepts epoch as a number or a string", async () => {
  const asNumber = loadDatasetConfig(await confFile({ ...HAM, epoch: 7 }));
  const asString = loadDatasetConfig(await confFile({ ...HAM, epoch: "7" }));
  assert.equal(asNumber.epochs, 7);
  assert.equal(asString.epochs, 7);
  assert.equal(asNumber.name, "mine");
  assert.equal(asNumber.kind, "image_folder");
});

Deno.test("loadDatasetConfig() infers the loader from the name like the reference", async () => {
  const dir = await Deno.makeTempDir();
  for (const name of ["aptos", "pathmnist", "isic"]) {
    await Deno.writeTextFile(join(dir, `${name}.json`), JSON.stringify(HAM));
  }
  const kinds = ["aptos", "pathmnist", "isic"].map((n) =>
    loadDatasetConfig(n, { confDir: dir }).kind
  );
  assert.deepEqual(kinds, ["aptos", "medmnist", "image_folder"]);
});

Deno.test("loadDatasetConfig() names the file and key of an unknown key", async () => {
  const file = await confFile({ ...HAM, epochs: 3 });
  assert.throws(
    () => loadDatasetConfig(file),
    new RegExp(`Dataset config "${file}" has unknown key "epochs"`),
  );
});

Deno.test("loadDatasetConfig() names the key and expected type of a wrong value", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { ...HAM, epoch: "ten" },
      /key "epoch" must be a positive integer or a string of one, got "ten"/,
    ],
    [
      { ...HAM, batch_size: "32" },
      /key "batch_size" must be a positive integer, got "32"/,
    ],
    [
      { ...HAM, num_classes: 1 },
      /key "num_classes" must be an integer >= 2, got 1/,
    ],
    [
      { ...HAM, id_dataset: 5 },
      /key "id_dataset" must be a non-empty string, got 5/,
    ],
    [
      { ...HAM, dataset: "folder" },
      /key "dataset" must be one of "image_folder", "aptos", "medmnist", "synthetic", got "folder"/,
    ],
    [{
      ...HAM,
      synthetic: { train_per_class: 1, test_per_class: 1, size: 8, seed: -1 },
    }, /key "synthetic.seed" must be an integer from 0/],
    [
      { ...HAM, dataset: "synthetic" },
      /"dataset": "synthetic" but lacks key "synthetic"/,
    ],
    [
      { ...HAM, synthetic: { ...TOY, difficulty: 2 } },
      /key "synthetic.difficulty" must be a number in \[0, 1\], got 2/,
    ],
    [
      { ...HAM, synthetic: { ...TOY, shape: 2 } },
      /key "synthetic" has unknown key "shape": expected train_per_class, test_per_class, size, seed, difficulty, cue/,
    ],
    [
      { ...HAM, synthetic: { ...TOY, cue: "colour" } },
      /key "synthetic.cue" must be one of "texture", "orientation", got "colour"/,
    ],
  ];
  for (const [obj, pattern] of cases) {
    const file = await confFile(obj);
    assert.throws(() => loadDatasetConfig(file), pattern);
  }
});

Deno.test("loadDatasetConfig() names a missing key", async () => {
  const { num_classes: _, ...rest } = HAM;
  const file = await confFile(rest);
  assert.throws(
    () => loadDatasetConfig(file),
    /lacks key "num_classes" \(an integer >= 2\)/,
  );
});

Deno.test("loadDatasetConfig() lists the known names when a name is not found", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "alpha.json"), JSON.stringify(HAM));
  assert.throws(
    () => loadDatasetConfig("beta", { confDir: dir }),
    /Dataset config "beta" not found: no file ".*beta\.json"; known datasets: alpha/,
  );
});

Deno.test("loadDatasetConfig() reports invalid JSON with the file name", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "bad.json");
  await Deno.writeTextFile(file, "{epoch: 1}");
  assert.throws(
    () => loadDatasetConfig(file),
    /Cannot parse dataset config ".*bad\.json"/,
  );
});

Deno.test("resolveConfig() uses the reference's defaults", () => {
  const c = resolveConfig("rein", loadDatasetConfig("ham10000"));
  assert.equal(c.lr, 1e-3);
  assert.equal(c.weightDecay, 1e-5);
  assert.deepEqual(c.betas, [0.9, 0.999]);
  assert.equal(c.eps, 1e-8);
  assert.deepEqual(c.noise, {
    mode: "symmetric",
    rate: 0.2,
    seed: 0,
    matrix: null,
  });
  assert.equal(c.epochs, 100);
  assert.equal(c.batchSize, 32);
  assert.equal(c.saveName, "rein-noise0.2");
  assert.equal(c.netsize, "s");
  assert.deepEqual([c.resize, c.crop], [256, 224]);
  // Resolved configs are JSON round-trippable (they go into config.json).
  assert.deepEqual(JSON.parse(JSON.stringify(c)), c);
});

Deno.test("resolveConfig() lets overrides replace the dataset file and defaults", () => {
  const c = resolveConfig("linear", loadDatasetConfig("ham10000"), {
    noise: 0.4,
    save: "run1",
    epochs: 5,
    batchSize: 4,
    lr: 0.01,
    seed: 3,
    dataRoot: "/tmp/ham",
    augment: false,
    cacheFeatures: true,
    maxBatches: 2,
    netsize: "b",
    backend: "wasm",
    gpu: 1,
  });
  assert.equal(c.noise.rate, 0.4);
  assert.equal(c.saveName, "run1");
  assert.deepEqual([c.epochs, c.batchSize, c.lr, c.seed], [5, 4, 0.01, 3]);
  assert.equal(c.dataset.root, "/tmp/ham");
  assert.deepEqual([c.augment, c.shuffle, c.cacheFeatures], [
    false,
    true,
    true,
  ]);
  assert.deepEqual([c.maxBatches, c.netsize, c.backend, c.gpu], [
    2,
    "b",
    "wasm",
    1,
  ]);
});

Deno.test("resolveConfig() does not share arrays with defaults", () => {
  const c = resolveConfig("rein", loadDatasetConfig("ham10000"));
  c.betas[0] = 0;
  c.milestoneFractions.push(1);
  assert.deepEqual(defaults.betas, [0.9, 0.999]);
  assert.deepEqual(defaults.milestoneFractions, [0.5, 0.75, 0.9]);
});

Deno.test("resolveConfig() refuses bad overrides naming the option", () => {
  const d = loadDatasetConfig("ham10000");
  assert.throws(
    () => resolveConfig("rein", d, { noise: 1.5 }),
    /Option "noise" must be a number in \[0, 1\], got 1.5/,
  );
  assert.throws(
    () => resolveConfig("rein", d, { epochs: 0 }),
    /Option "epochs" must be a positive integer, got 0/,
  );
  assert.throws(
    () => resolveConfig("rein", d, { lr: -1 }),
    /Option "lr" must be a positive number, got -1/,
  );
  assert.throws(
    () => resolveConfig("rein", d, { save: "a/b" }),
    /Option "save" must be a folder name without slashes, got "a\/b"/,
  );
  assert.throws(
    () => resolveConfig("rein", d, { batchsize: 3 } as never),
    /Unknown option "batchsize"/,
  );
  assert.throws(
    () => resolveConfig("cufit", d, { cacheFeatures: true }),
    /Option "cacheFeatures" works only with method "linear", got method "cufit"/,
  );
  assert.throws(
    () => resolveConfig("fully" as never, d),
    /Method must be one of "linear", "rein", "cufit", got "fully"/,
  );
});

Deno.test("resolveConfig() checks a noise matrix against the class count", () => {
  const d = loadDatasetConfig("aptos");
  const eye = Array.from(
    { length: 5 },
    (_, i) => Array.from({ length: 5 }, (_, j) => (i === j ? 1 : 0)),
  );
  const c = resolveConfig("rein", d, { noiseMode: "matrix", noiseMatrix: eye });
  assert.deepEqual(c.noise.matrix, eye);
  assert.throws(
    () => resolveConfig("rein", d, { noiseMode: "matrix" }),
    /"noiseMatrix" is not given/,
  );
  assert.throws(
    () => resolveConfig("rein", d, { noiseMode: "matrix", noiseMatrix: [[1]] }),
    /Option "noiseMatrix" must be a 5 x 5 matrix/,
  );
});

Deno.test("resolveConfig() refuses a crop that is not a multiple of the patch size", async () => {
  const d = loadDatasetConfig(
    await confFile({ ...HAM, image_size: 30, resize: 32 }),
  );
  assert.throws(
    () => resolveConfig("rein", d),
    /key "image_size" must be a multiple of 14 \(the ViT patch size\), got 30/,
  );
});

Deno.test("milestones() truncates like Python's int()", () => {
  assert.deepEqual(milestones(100), [50, 75, 90]);
  assert.deepEqual(milestones(10), [5, 7, 9]);
  assert.deepEqual(milestones(3), [1, 2, 2]);
  assert.deepEqual(milestones(1), [0, 0, 0]);
  assert.throws(
    () => milestones(0),
    /Epochs must be a positive integer, got 0/,
  );
});

Deno.test("lrAt() follows MultiStepLR stepped once per epoch", () => {
  const c = {
    lr: 1e-3,
    gamma: 0.1,
    epochs: 100,
    milestoneFractions: [0.5, 0.75, 0.9],
  };
  // torch's chained products, as Python prints them.
  assert.equal(lrAt(0, c), 0.001);
  assert.equal(lrAt(49, c), 0.001);
  assert.equal(lrAt(50, c), 0.0001);
  assert.equal(lrAt(74, c), 0.0001);
  assert.equal(lrAt(75, c), 1e-05);
  assert.equal(lrAt(90, c), 1.0000000000000002e-06);
  assert.equal(lrAt(99, c), 1.0000000000000002e-06);
});

Deno.test("lrAt() applies repeated milestones at once, like torch's Counter", () => {
  // E = 3: milestones [1, 2, 2], so epoch 2 decays by gamma^2 in one step.
  const c = {
    lr: 1e-3,
    gamma: 0.1,
    epochs: 3,
    milestoneFractions: [0.5, 0.75, 0.9],
  };
  assert.deepEqual([0, 1, 2].map((e) => lrAt(e, c)), [
    0.001,
    0.0001,
    0.0001 * 0.1 ** 2,
  ]);
  // E = 1: three milestones at 0 fire when the scheduler is built.
  assert.equal(lrAt(0, { ...c, epochs: 1 }), 0.001 * 0.1 ** 3);
});

Deno.test("loadDatasetConfig() passes an optional synthetic difficulty through", async () => {
  const d = loadDatasetConfig(
    await confFile({
      ...HAM,
      dataset: "synthetic",
      synthetic: { ...TOY, difficulty: 0.5 },
    }),
  );
  assert.equal(d.synthetic?.difficulty, 0.5);
  assert.equal(resolveConfig("rein", d).dataset.synthetic?.difficulty, 0.5);
});

Deno.test("loadDatasetConfig() passes an optional synthetic cue through to the generator", async () => {
  const d = loadDatasetConfig(
    await confFile({
      ...HAM,
      num_classes: 8,
      dataset: "synthetic",
      synthetic: { ...TOY, cue: "orientation" },
    }),
  );
  assert.equal(d.synthetic?.cue, "orientation");
  const config = resolveConfig("rein", d);
  assert.equal(config.dataset.synthetic?.cue, "orientation");
  const { train } = await openDatasets(config);
  assert.equal(train.classes[4], "disc-horizontal");
  const plain = loadDatasetConfig("synthetic");
  assert.equal(plain.synthetic?.cue, undefined);
});
