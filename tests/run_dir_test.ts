import assert from "node:assert/strict";
import { join } from "node:path";
import { sha256, sha256Labels } from "../lib/io/digest.ts";
import {
  loadDatasetConfig,
  resolveConfig,
  type TrainConfig,
  type TrainOverrides,
} from "../lib/train/config.ts";
import type { EpochMetrics } from "../lib/train/metrics.ts";
import {
  appendMetrics,
  createRunDir,
  keepMetricsThrough,
  readMetrics,
  readRunRecord,
  reconcileMetrics,
  runDirOf,
  writeAvgAcc,
} from "../lib/train/run_dir.ts";

async function setup(
  overrides: TrainOverrides = {},
): Promise<{ tmp: string; config: TrainConfig; weights: string }> {
  const tmp = await Deno.makeTempDir();
  const conf = join(tmp, "toy.json");
  await Deno.writeTextFile(
    conf,
    JSON.stringify({
      epoch: "2",
      id_dataset: join(tmp, "data"),
      batch_size: 4,
      save_path: join(tmp, "checkpoints", "TOY"),
      num_classes: 3,
    }),
  );
  const weights = join(tmp, "w.safetensors");
  await Deno.writeFile(weights, new Uint8Array([1, 2, 3]));
  const config = resolveConfig(
    "cufit",
    loadDatasetConfig(conf),
    { save: "run1", weights, ...overrides },
  );
  return { tmp, config, weights };
}

const rec = (epoch: number, testAcc = 0.5): EpochMetrics => ({
  epoch,
  lr: 1e-3,
  trainLoss: 1,
  trainAcc: 0.5,
  testAcc,
});

Deno.test("createRunDir() writes config.json with config, argv, versions and digests", async () => {
  const { tmp, config, weights } = await setup();
  const labelList = join(tmp, "train.csv");
  await Deno.writeTextFile(labelList, "id_code,diagnosis\na,0\n");
  const dir = await createRunDir(config, {
    argv: ["-d", "toy", "-s", "run1"],
    versions: { tfjs: "4.22.0", backend: "wasm" },
    labelListFile: labelList,
    trainLabels: [0, 1, 2],
    noisyLabels: Int32Array.from([0, 2, 2]),
    now: new Date("2025-01-02T03:04:05Z"),
  });
  assert.equal(dir, join(tmp, "checkpoints", "TOY", "run1"));
  assert.equal(runDirOf(config), dir);
  const r = await readRunRecord(dir);
  assert.deepEqual(r.config, config);
  assert.deepEqual(r.argv, ["-d", "toy", "-s", "run1"]);
  assert.equal(r.createdAt, "2025-01-02T03:04:05.000Z");
  assert.equal(r.cwd, Deno.cwd());
  assert.equal(r.versions.deno, Deno.version.deno);
  assert.equal(r.versions.backend, "wasm");
  assert.deepEqual(r.digests.weights, {
    path: weights,
    sha256: sha256(new Uint8Array([1, 2, 3])),
    bytes: 3,
  });
  assert.equal(r.digests.labelList?.sha256, sha256("id_code,diagnosis\na,0\n"));
  assert.equal(r.digests.trainLabels, sha256("0\n1\n2\n"));
  assert.equal(r.digests.noisyLabels, sha256Labels([0, 2, 2]));
  assert.equal(r.digests.init, null);
  // Written atomically: no temporary file is left beside it.
  const names = [...Deno.readDirSync(dir)].map((e) => e.name);
  assert.deepEqual(names, ["config.json"]);
});

Deno.test("createRunDir() refuses a folder that already holds a run", async () => {
  const { config } = await setup();
  const dir = await createRunDir(config, { argv: [] });
  await appendMetrics(dir, rec(0));
  await assert.rejects(
    () => createRunDir(config, { argv: [] }),
    /Run folder ".*run1" already holds a run .*: choose another save name \(-s\) or pass --resume/,
  );
});

Deno.test("createRunDir() says how to continue a run that stopped before its first epoch", async () => {
  const { config } = await setup();
  const dir = await createRunDir(config, { argv: ["-s", "run1"] });
  await assert.rejects(
    () => createRunDir(config, { argv: [] }),
    /Run folder ".*run1" holds a run that stopped before its first epoch ended: start it over with --resume \(add --skip-bad to skip unreadable images\), or choose another save name \(-s\)/,
  );
  // Nothing was trained: --resume may change settings (here --skip-bad).
  await createRunDir({ ...config, resume: true, skipBad: true }, {
    argv: ["--resume", "--skip-bad"],
  });
  const record = await readRunRecord(dir);
  assert.equal(record.config.skipBad, true);
  assert.deepEqual(record.argv, ["--resume", "--skip-bad"]);
  // Once an epoch is recorded the settings are fixed again.
  await appendMetrics(dir, rec(0));
  await assert.rejects(
    () => createRunDir({ ...config, resume: true, lr: 0.5 }, { argv: [] }),
    /config key "lr" was 0.001, now 0.5/,
  );
});

Deno.test("createRunDir() names a missing weights file", async () => {
  const { config, tmp } = await setup();
  const missing = join(tmp, "nope.pth");
  await assert.rejects(
    () => createRunDir({ ...config, weights: missing }, { argv: [] }),
    new RegExp(`Cannot hash the weights file "${missing}": no such file`),
  );
});

Deno.test("createRunDir() resumes only a run with the same settings", async () => {
  const { config } = await setup();
  const dir = await createRunDir(config, { argv: [] });
  await appendMetrics(dir, rec(0));
  const before = await Deno.readTextFile(join(dir, "config.json"));
  const again = await createRunDir(
    { ...config, resume: true, maxBatches: 1 },
    { argv: [] },
  );
  assert.equal(again, dir);
  assert.equal(await Deno.readTextFile(join(dir, "config.json")), before);
  await assert.rejects(
    () => createRunDir({ ...config, resume: true, lr: 0.5 }, { argv: [] }),
    /Cannot resume run ".*run1": config key "lr" was 0.001, now 0.5/,
  );
  await assert.rejects(
    () =>
      createRunDir({
        ...config,
        resume: true,
        noise: { ...config.noise, rate: 0.4 },
      }, { argv: [] }),
    /config key "noise.rate" was 0.2, now 0.4/,
  );
  await assert.rejects(
    () =>
      createRunDir({ ...config, saveName: "other", resume: true }, {
        argv: [],
      }),
    /Cannot resume run ".*other": ".*config.json" not found/,
  );
});

Deno.test("appendMetrics() and readMetrics() round-trip one line per epoch", async () => {
  const { config } = await setup();
  const dir = await createRunDir(config, { argv: [] });
  assert.deepEqual(await readMetrics(dir), []);
  await appendMetrics(dir, rec(0));
  await appendMetrics(dir, { ...rec(1), selection: undefined, seconds: 2 });
  const text = await Deno.readTextFile(join(dir, "metrics.jsonl"));
  assert.equal(text.split("\n").length, 3);
  assert.deepEqual(await readMetrics(dir), [rec(0), { ...rec(1), seconds: 2 }]);
});

Deno.test("readMetrics() skips a line cut short by a crash, appendMetrics() drops it", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "metrics.jsonl");
  await Deno.writeTextFile(file, JSON.stringify(rec(0)) + '\n{"epoch":1,"lr"');
  assert.deepEqual(await readMetrics(dir), [rec(0)]);
  await appendMetrics(dir, rec(1));
  assert.deepEqual(await readMetrics(dir), [rec(0), rec(1)]);
  assert.equal(
    await Deno.readTextFile(file),
    JSON.stringify(rec(0)) + "\n" + JSON.stringify(rec(1)) + "\n",
  );
});

Deno.test("readMetrics() names the file and line of a corrupt record", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    join(dir, "metrics.jsonl"),
    JSON.stringify(rec(0)) + "\nnot json\n",
  );
  await assert.rejects(
    () => readMetrics(dir),
    /Cannot read ".*metrics\.jsonl" line 2/,
  );
});

Deno.test("keepMetricsThrough() drops the epochs after a checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  for (const e of [0, 1, 2, 3]) await appendMetrics(dir, rec(e));
  assert.deepEqual(await keepMetricsThrough(dir, 1), [rec(0), rec(1)]);
  assert.deepEqual(await readMetrics(dir), [rec(0), rec(1)]);
});

Deno.test("writeAvgAcc() writes the reference's avgacc.txt", async () => {
  const dir = await Deno.makeTempDir();
  const accs = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.5];
  const text = await writeAvgAcc(dir, accs);
  // CPython: sum of the last ten from 0.0, divided by 10.
  assert.equal(text, "0.5900000000000001");
  assert.equal(
    await Deno.readTextFile(join(dir, "avgacc.txt")),
    "0.5900000000000001",
  );
});

Deno.test("readRunRecord() refuses a file that is not a run record", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "config.json"), '{"epoch": "100"}');
  await assert.rejects(
    () => readRunRecord(dir),
    /".*config\.json" is not a run record: expected "format": "cufit-ts-run\/1", got undefined/,
  );
});

Deno.test("createRunDir() --resume refuses inputs whose contents changed, naming the file", async () => {
  const { tmp, config, weights } = await setup();
  const init = join(tmp, "init.safetensors");
  await Deno.writeFile(init, new Uint8Array([4, 5]));
  const withInit = { ...config, init };
  const labels = { trainLabels: [0, 1, 2], noisyLabels: [0, 2, 2] };
  await createRunDir(withInit, { argv: [], ...labels });
  const resume = { ...withInit, resume: true };
  await createRunDir(resume, { argv: [], ...labels });
  await Deno.writeFile(weights, new Uint8Array([1, 2, 4]));
  await assert.rejects(
    () => createRunDir(resume, { argv: [], ...labels }),
    new RegExp(
      `Cannot resume run ".*run1": the weights file "${weights}" changed since the run started \\(recorded sha256 039058c6[0-9a-f]{56}, now [0-9a-f]{64}\\)`,
    ),
  );
  await Deno.writeFile(weights, new Uint8Array([1, 2, 3]));
  await Deno.writeFile(init, new Uint8Array([4, 6]));
  await assert.rejects(
    () => createRunDir(resume, { argv: [], ...labels }),
    new RegExp(`the init file "${init}" changed since the run started`),
  );
  await Deno.writeFile(init, new Uint8Array([4, 5]));
  await assert.rejects(
    () =>
      createRunDir(resume, {
        argv: [],
        ...labels,
        noisyLabels: [0, 1, 2],
      }),
    /the noisy training labels changed since the run started/,
  );
});

Deno.test("createRunDir() --resume starts afresh in the folder of a run killed before its record", async () => {
  const { config } = await setup();
  const dir = runDirOf(config);
  await Deno.mkdir(dir, { recursive: true });
  assert.equal(
    await createRunDir({ ...config, resume: true }, { argv: [] }),
    dir,
  );
  const rec = await readRunRecord(dir);
  assert.equal(rec.config.resume, false);
});

Deno.test("reconcileMetrics() adds the line a kill left out and drops lines after the checkpoint", async () => {
  const { config } = await setup();
  const dir = await createRunDir(config, { argv: [] });
  await appendMetrics(dir, rec(0, 0.1));
  await appendMetrics(dir, rec(1, 0.2));
  // Checkpoint of epoch 2 written, its line not.
  assert.deepEqual(await reconcileMetrics(dir, 2, rec(2, 0.3)), [
    rec(0, 0.1),
    rec(1, 0.2),
    rec(2, 0.3),
  ]);
  assert.deepEqual(await readMetrics(dir), [
    rec(0, 0.1),
    rec(1, 0.2),
    rec(2, 0.3),
  ]);
  // A line past the checkpoint goes; an earlier gap cannot be repaired.
  await appendMetrics(dir, rec(3, 0.4));
  assert.equal((await reconcileMetrics(dir, 2, rec(2, 0.3))).length, 3);
  await assert.rejects(
    () => reconcileMetrics(dir, 5, rec(5)),
    /Cannot resume from ".*metrics\.jsonl": it lacks epochs 3 to 4, which precede the checkpoint of epoch 5/,
  );
});

Deno.test("appendMetrics() on a full disk names metrics.jsonl", async () => {
  const { config } = await setup();
  const dir = await createRunDir(config, { argv: [] });
  await Deno.symlink("/dev/full", join(dir, "metrics.jsonl"));
  await assert.rejects(
    () => appendMetrics(dir, rec(0)),
    new RegExp(
      `^Error: Cannot write "${
        join(dir, "metrics.jsonl")
      }": No space left on device`,
    ),
  );
});

Deno.test("readRunRecord() names an unknown key, a wrong type and a missing key", async () => {
  const { config } = await setup();
  const dir = await createRunDir(config, { argv: [] });
  const file = join(dir, "config.json");
  const good = JSON.parse(await Deno.readTextFile(file));
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ...good, extra: 1 }, /Run record ".*config\.json": unknown key "extra"/],
    [{ ...good, argv: {} }, /key "argv" must be a list, got \{\}/],
    [
      { ...good, config: { ...good.config, lr: "big" } },
      /key "config\.lr" must be a positive number, got "big"/,
    ],
    [
      { ...good, digests: { ...good.digests, init: undefined } },
      /missing key "digests\.init"/,
    ],
  ];
  for (const [raw, error] of cases) {
    await Deno.writeTextFile(file, JSON.stringify(raw));
    await assert.rejects(() => readRunRecord(dir), error);
  }
});
