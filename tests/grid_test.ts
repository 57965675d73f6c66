import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkGrid,
  checkSweepName,
  expandGrid,
  loadGrid,
} from "../lib/sweep/grid.ts";
import { loadDatasetConfig } from "../lib/train/config.ts";

const ROOT = new URL("..", import.meta.url).pathname;

const tiny = {
  datasets: ["demo"],
  noise_rates: [0.2, 0.4],
  methods: ["linear", "cufit"],
  seeds: [0, 1],
};

Deno.test("expandGrid() nests datasets, noise, methods and seeds, seeds fastest, and builds each cell's training command", () => {
  const grid = checkGrid(
    { ...tiny, overrides: { epochs: 3, augment: false, batch_size: 8 } },
    "test",
  );
  const cells = expandGrid(grid, { datasetFile: (d) => `sw/conf/${d}.json` });
  assert.deepEqual(cells.map((c) => c.id), [
    "demo-linear-sym0.2-s0",
    "demo-linear-sym0.2-s1",
    "demo-cufit-sym0.2-s0",
    "demo-cufit-sym0.2-s1",
    "demo-linear-sym0.4-s0",
    "demo-linear-sym0.4-s1",
    "demo-cufit-sym0.4-s0",
    "demo-cufit-sym0.4-s1",
  ]);
  assert.deepEqual(cells.map((c) => c.index), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(cells[3].task, "train:cufit");
  assert.deepEqual(cells[3].args, [
    "-d",
    "sw/conf/demo.json",
    "-n",
    "0.2",
    "-s",
    "demo-cufit-sym0.2-s1",
    "--noise-mode",
    "symmetric",
    "--seed",
    "1",
    "--epochs",
    "3",
    "--batch-size",
    "8",
    "--no-augment",
  ]);
});

Deno.test("checkGrid() refuses unknown keys, wrong types and duplicates, naming the file and key", () => {
  const bad: [unknown, RegExp][] = [
    [
      { ...tiny, colour: 1 },
      /f has unknown key "colour": expected description/,
    ],
    [{ ...tiny, seeds: [0, 0] }, /f key "seeds" lists 0 twice/],
    [{ ...tiny, seeds: [-1] }, /f key "seeds" item 0 must be an integer/],
    [
      { ...tiny, noise_rates: [1.5] },
      /"noise_rates" item 0 must be a number in \[0, 1\], got 1.5/,
    ],
    [
      { ...tiny, methods: ["dino"] },
      /"methods" item 0 must be one of linear, rein, cufit, got "dino"/,
    ],
    [
      { ...tiny, datasets: ["../x"] },
      /"datasets" item 0 must be a dataset name/,
    ],
    [
      { ...tiny, datasets: [] },
      /"datasets" must be a non-empty list, got \[\]/,
    ],
    [
      { ...tiny, noise_modes: ["matrix"] },
      /"noise_modes" item 0 must be one of symmetric, pairflip/,
    ],
    [
      { ...tiny, overrides: { epoch: 3 } },
      /f key "overrides" has unknown key "epoch"/,
    ],
    [
      { ...tiny, overrides: { epochs: "3" } },
      /"overrides.epochs" must be a positive integer, got "3"/,
    ],
    [
      { ...tiny, overrides: { backend: "tpu" } },
      /"overrides.backend" must be one of auto/,
    ],
    [
      { ...tiny, overrides: { weights: "--allow-all" } },
      /"overrides.weights" must be a path/,
    ],
    [[1], /f must hold a JSON object, got \[1\]/],
  ];
  for (const [raw, re] of bad) assert.throws(() => checkGrid(raw, "f"), re);
});

Deno.test("loadGrid() names the file it cannot read or parse", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => loadGrid(join(dir, "no.json")),
      /Sweep file ".*no\.json" not found/,
    );
    await Deno.writeTextFile(join(dir, "bad.json"), "{");
    await assert.rejects(
      () => loadGrid(join(dir, "bad.json")),
      /Cannot parse sweep file ".*bad\.json"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("conf/sweeps/table1.json is the paper's grid and conf/sweeps/demo.json the demo's", async () => {
  const t1 = await loadGrid(join(ROOT, "conf/sweeps/table1.json"));
  assert.deepEqual(t1.datasets, [
    "ham10000",
    "aptos",
    "bloodmnist",
    "organcmnist",
  ]);
  assert.deepEqual(t1.noiseRates, [0.1, 0.2, 0.4, 0.6]);
  assert.deepEqual(t1.methods, ["linear", "rein", "cufit"]);
  assert.equal(t1.overrides.epochs, 100);
  assert.equal(expandGrid(t1).length, 4 * 4 * 3 * t1.seeds.length);
  const demo = await loadGrid(join(ROOT, "conf/sweeps/demo.json"));
  assert.deepEqual(demo.datasets, ["demo"]);
  assert.deepEqual(demo.noiseRates, [0.2, 0.4, 0.6]);
  assert.equal(demo.methods.length, 3);
  assert.equal(demo.seeds.length, 2);
  // Every dataset they name has a valid dataset file.
  for (const d of [...t1.datasets, ...demo.datasets]) loadDatasetConfig(d);
});

Deno.test("checkSweepName() accepts folder names only", () => {
  assert.equal(checkSweepName("table1-run_2.b"), "table1-run_2.b");
  for (const bad of ["", "../x", "a/b", ".hidden", "-x", "a b"]) {
    assert.throws(() => checkSweepName(bad), /Sweep name .* must be letters/);
  }
});
