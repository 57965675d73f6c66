import assert from "node:assert/strict";
import { join } from "node:path";
import { loadDatasetConfig, resolveConfig } from "../lib/train/config.ts";
import { createRunDir } from "../lib/train/run_dir.ts";
import { parseRunRecord } from "../lib/train/run_record.ts";

async function goodRecord(): Promise<Record<string, unknown>> {
  const tmp = await Deno.makeTempDir();
  const conf = join(tmp, "toy.json");
  await Deno.writeTextFile(
    conf,
    JSON.stringify({
      epoch: 2,
      id_dataset: join(tmp, "data"),
      batch_size: 4,
      save_path: join(tmp, "runs"),
      num_classes: 3,
    }),
  );
  const weights = join(tmp, "w.safetensors");
  await Deno.writeFile(weights, new Uint8Array([1]));
  const config = resolveConfig("rein", loadDatasetConfig(conf), {
    save: "r",
    weights,
  });
  const dir = await createRunDir(config, {
    argv: [],
    trainLabels: [0, 1],
    noisyLabels: [1, 1],
  });
  return JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
}

Deno.test("parseRunRecord() accepts what createRunDir() writes", async () => {
  const raw = await goodRecord();
  assert.deepEqual(parseRunRecord(raw, "x.json"), raw);
});

Deno.test("parseRunRecord() names the first bad key path, however deep", async () => {
  const raw = await goodRecord();
  const config = raw.config as Record<string, unknown>;
  const dataset = config.dataset as Record<string, unknown>;
  const cases: [unknown, RegExp][] = [
    [null, /Run record "x\.json" must hold a JSON object, got null$/],
    [{ ...raw, format: "other/1" }, /key "format" must be "cufit-ts-run\/1"/],
    [
      { ...raw, config: { ...config, dataset: { ...dataset, root: "" } } },
      /key "config\.dataset\.root" must be a non-empty string, got ""/,
    ],
    [
      { ...raw, config: { ...config, saveName: "../up" } },
      /key "config\.saveName" must be a folder name without slashes/,
    ],
    [
      { ...raw, config: { ...config, betas: [0.9] } },
      /key "config\.betas" must be a list of 2/,
    ],
    [
      { ...raw, versions: { tfjs: 4 } },
      /key "versions\.tfjs" must be a string or a list of strings, got 4/,
    ],
    [
      { ...raw, digests: { ...(raw.digests as object), extra: null } },
      /unknown key "digests\.extra"/,
    ],
  ];
  for (const [bad, error] of cases) {
    assert.throws(() => parseRunRecord(bad, "x.json"), error);
  }
});

Deno.test("parseRunRecord() accepts a synthetic run with a cue and names a bad one", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const config = resolveConfig("cufit", loadDatasetConfig("demo"), {
      save: "c",
      weights: join(tmp, "w.safetensors"),
    });
    await Deno.writeFile(config.weights!, new Uint8Array([1]));
    const dir = await createRunDir({ ...config, savePath: tmp }, {
      argv: [],
      trainLabels: [0, 1],
      noisyLabels: [1, 1],
    });
    const raw = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
    assert.equal(raw.config.dataset.synthetic.cue, "orientation");
    assert.deepEqual(parseRunRecord(raw, "x.json"), raw);
    raw.config.dataset.synthetic.cue = "colour";
    assert.throws(
      () => parseRunRecord(raw, "x.json"),
      /key "config\.dataset\.synthetic\.cue" must be one of "texture", "orientation", got "colour"/,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
