import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../lib/backend/backend.ts";
import { makeSynthetic } from "../lib/data/synthetic.ts";
import {
  PRETEXT_CLASSES,
  pretextTargets,
  pretrainBackbone,
  pretrainLr,
  type PretrainOptions,
  sinCosPosEmbed,
  writeBackbone,
} from "../lib/demo/pretrain.ts";
import { loadDinov2Weights } from "../lib/weights/dinov2_weights.ts";

await initBackend("wasm", { log: () => {} });

const TINY: PretrainOptions = {
  embedDim: 16,
  depth: 1,
  numHeads: 2,
  perClass: 2,
  epochs: 1,
  batchSize: 8,
  maxBatches: 2,
  log: () => {},
};

Deno.test("pretrainBackbone() gives identical weights for the same seed and others for another", async () => {
  const a = await pretrainBackbone(TINY);
  const b = await pretrainBackbone(TINY);
  const c = await pretrainBackbone({ ...TINY, seed: 1 });
  assert.deepEqual([...a.params.keys()].sort(), [...b.params.keys()].sort());
  for (const [k, t] of a.params) {
    assert.deepEqual(t.data, b.params.get(k)!.data, `tensor "${k}" differs`);
  }
  assert.notDeepEqual(
    a.params.get("blocks.0.attn.qkv.weight")!.data,
    c.params.get("blocks.0.attn.qkv.weight")!.data,
  );
});

Deno.test("pretrainBackbone() lowers the pretext loss and reports held-out accuracy", async () => {
  const r = await pretrainBackbone({
    ...TINY,
    perClass: 4,
    epochs: 5,
    maxBatches: null,
  });
  assert.equal(r.history.length, 5);
  const first = r.history[0];
  const last = r.history[r.history.length - 1];
  assert.ok(
    last.loss < first.loss,
    `loss went from ${first.loss} to ${last.loss}`,
  );
  for (const e of r.history) {
    assert.ok(e.shapeAcc >= 0 && e.shapeAcc <= 1);
    assert.ok(e.textureAcc >= 0 && e.textureAcc <= 1);
  }
  assert.equal(r.variant.imgSize, 28);
  assert.equal(r.variant.numPosPatches, 2);
});

Deno.test("writeBackbone() writes weights loadDinov2Weights() reads with their head count", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await pretrainBackbone(TINY);
    const path = join(dir, "sub", "backbone.safetensors");
    await writeBackbone(path, r);
    // 16 is not a width of Meta's releases: num_heads must come from the metadata.
    const w = await loadDinov2Weights(path);
    assert.equal(w.variant.numHeads, 2);
    assert.equal(w.variant.embedDim, 16);
    assert.equal(w.variant.depth, 1);
    assert.equal(JSON.parse(w.metadata.variant).num_heads, 2);
    assert.equal(JSON.parse(w.metadata.pretext).classes, PRETEXT_CLASSES);
    assert.deepEqual(
      w.params.get("pos_embed")!.data,
      sinCosPosEmbed(2, 16).data,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pretrainBackbone() rejects bad options naming the option", async () => {
  await assert.rejects(
    () => pretrainBackbone({ ...TINY, numHeads: 3 }),
    /option "numHeads" must be a divisor of embedDim \(16\), got 3/,
  );
  await assert.rejects(
    () => pretrainBackbone({ ...TINY, crop: 30 }),
    /option "crop" must be a positive multiple of 14 \(the patch size\), got 30/,
  );
  await assert.rejects(
    () => pretrainBackbone({ ...TINY, imageSize: 20 }),
    /option "imageSize" must be at least crop \(28\), got 20/,
  );
  await assert.rejects(
    () => pretrainBackbone({ ...TINY, lr: 0 }),
    /option "lr" must be a positive number, got 0/,
  );
});

Deno.test("sinCosPosEmbed() leaves the CLS slot zero and gives every patch its own code", () => {
  const t = sinCosPosEmbed(3, 8);
  assert.deepEqual(t.shape, [1, 10, 8]);
  const d = t.data as Float32Array;
  assert.deepEqual([...d.subarray(0, 8)], new Array(8).fill(0));
  const rows = new Set<string>();
  for (let i = 1; i < 10; i++) {
    rows.add([...d.subarray(i * 8, i * 8 + 8)].join());
  }
  assert.equal(rows.size, 9);
  assert.throws(() => sinCosPosEmbed(2, 6), /multiple of 4, got 6/);
});

Deno.test("pretextTargets() names the shape and texture the generator draws for a class", () => {
  const { classes } = makeSynthetic({ numClasses: PRETEXT_CLASSES });
  const shapes = ["disc", "ring", "ellipse", "lobed"];
  const textures = ["smooth", "stripes", "speckles"];
  for (let k = 0; k < PRETEXT_CLASSES; k++) {
    const t = pretextTargets(k);
    assert.equal(classes[k], `${shapes[t.shape]}-${textures[t.texture]}`);
  }
});

Deno.test("pretrainLr() halves the rate at half and again at three quarters", () => {
  assert.deepEqual(
    [0, 4, 5, 6, 7, 9].map((e) => pretrainLr(e, 10, 1e-3)),
    [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4],
  );
});

Deno.test("the committed demo backbone loads, is small, and says how it was made", async () => {
  const path = new URL("../data/demo/backbone.safetensors", import.meta.url);
  const { size } = await Deno.stat(path);
  assert.ok(size < 2 * 1024 * 1024, `${size} bytes`);
  const w = await loadDinov2Weights(path.pathname);
  assert.equal(w.variant.patchSize, 14);
  const pretext = JSON.parse(w.metadata.pretext);
  // The pretext images are not the demo's.
  const demo = JSON.parse(
    await Deno.readTextFile(new URL("../conf/demo.json", import.meta.url)),
  );
  assert.notEqual(pretext.data_seed, demo.synthetic.seed);
  assert.match(pretext.task, /shape .* texture/);
  // The demo's classes hinge on the stripes' direction, never a pretext target.
  assert.equal(demo.synthetic.cue, "orientation");
});

Deno.test("pretrain:demo names a bad flag on one line with a --help hint and exits 2", async () => {
  const { main } = await import("../tasks/pretrain_demo.ts");
  const errors: string[] = [];
  const original = console.error;
  console.error = (line: string) => errors.push(line);
  try {
    assert.equal(await main(["--epoch", "2"]), 2);
    assert.equal(await main(["--epochs", "x"]), 2);
  } finally {
    console.error = original;
  }
  assert.deepEqual(errors, [
    "pretrain:demo: Unknown option '--epoch' (did you mean --epochs?); see `deno task pretrain:demo --help`",
    'pretrain:demo: Option --epochs must be a positive integer, got "x"; see `deno task pretrain:demo --help`',
  ]);
});
