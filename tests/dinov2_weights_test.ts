import assert from "node:assert/strict";
import { join } from "node:path";
import type { HostTensor } from "../lib/weights/host_tensor.ts";
import {
  detectWeightsFormat,
  loadDinov2Weights,
} from "../lib/weights/dinov2_weights.ts";
import {
  fromHuggingFace,
  isHuggingFaceNaming,
} from "../lib/weights/hf_names.ts";
import {
  readSafetensors,
  writeSafetensors,
} from "../lib/weights/safetensors.ts";
import {
  backboneShapes,
  inferVariant,
  validateBackbone,
} from "../lib/weights/variant.ts";
import { FIXTURES_URL } from "./_fixtures.ts";

const FIXTURES = FIXTURES_URL;
const PTH = new URL("dinov2_backbone.pth", FIXTURES).pathname;
const BACKBONE = new URL("dinov2_backbone.safetensors", FIXTURES).pathname;
const REIN_MODEL = new URL("rein_model.safetensors", FIXTURES).pathname;

const TINY = {
  patchSize: 14,
  embedDim: 32,
  depth: 2,
  numHeads: 2,
  mlpHidden: 128,
  numPosPatches: 37,
  imgSize: 518,
};

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function backbone(): Promise<Map<string, HostTensor>> {
  return (await readSafetensors(BACKBONE)).tensors;
}

/** Splits a [3D, ...] tensor into its three [D, ...] row blocks. */
function thirds(t: HostTensor): HostTensor[] {
  const n = t.data.length / 3;
  const rows = t.shape[0] / 3;
  return [0, 1, 2].map((j) => ({
    dtype: t.dtype,
    shape: [rows, ...t.shape.slice(1)],
    data: (t.data as Float32Array).slice(j * n, (j + 1) * n),
  }));
}

/** Renames reference tensors the way Hugging Face's checkpoint names them. */
function toHfByHand(
  ref: Map<string, HostTensor>,
  prefix = "",
): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  const put = (k: string, t: HostTensor) => out.set(prefix + k, t);
  for (const [k, t] of ref) {
    const fixed: Record<string, string> = {
      cls_token: "embeddings.cls_token",
      mask_token: "embeddings.mask_token",
      pos_embed: "embeddings.position_embeddings",
      "patch_embed.proj.weight":
        "embeddings.patch_embeddings.projection.weight",
      "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
      "norm.weight": "layernorm.weight",
      "norm.bias": "layernorm.bias",
    };
    if (k in fixed) {
      put(fixed[k], t);
      continue;
    }
    const m = /^blocks\.(\d+)\.(.+)$/.exec(k)!;
    const layer = `encoder.layer.${m[1]}`;
    const rest = m[2];
    const qkv = /^attn\.qkv\.(weight|bias)$/.exec(rest);
    if (qkv) {
      const [q, kk, v] = thirds(t);
      put(`${layer}.attention.attention.query.${qkv[1]}`, q);
      put(`${layer}.attention.attention.key.${qkv[1]}`, kk);
      put(`${layer}.attention.attention.value.${qkv[1]}`, v);
      continue;
    }
    const renamed = rest
      .replace(/^attn\.proj\./, "attention.output.dense.")
      .replace(/^ls1\.gamma$/, "layer_scale1.lambda1")
      .replace(/^ls2\.gamma$/, "layer_scale2.lambda1");
    put(`${layer}.${renamed}`, t);
  }
  return out;
}

Deno.test("loadDinov2Weights() reads the .pth release format and infers the variant", async () => {
  const w = await loadDinov2Weights(PTH, { numHeads: 2 });
  assert.equal(w.format, "pth");
  assert.equal(w.naming, "reference");
  assert.deepEqual(w.variant, TINY);
  assert.deepEqual(w.metadata, {});
  const ref = await backbone();
  assert.deepEqual([...w.params.keys()].sort(), [...ref.keys()].sort());
  for (const [k, t] of ref) assert.deepEqual(w.params.get(k), t, k);
});

Deno.test("loadDinov2Weights() keeps a full model's extra keys and reads num_heads from its metadata", async () => {
  const w = await loadDinov2Weights(REIN_MODEL);
  assert.equal(w.format, "safetensors");
  assert.deepEqual(w.variant, TINY);
  assert.equal(w.metadata.num_classes, "3");
  for (
    const k of [
      "reins.learnable_tokens",
      "reins.scale",
      "linear.weight",
      "linear_rein.bias",
    ]
  ) {
    assert.ok(w.params.has(k), k);
  }
});

Deno.test("loadDinov2Weights() asks for numHeads when the width is not one of Meta's", async () => {
  await assert.rejects(
    loadDinov2Weights(BACKBONE),
    /Cannot load DINOv2 weights ".*dinov2_backbone\.safetensors": cannot infer the DINOv2 variant: no head count is known for width 32 \(expected 384, 768, 1024, 1536\); pass numHeads/,
  );
  await assert.rejects(
    loadDinov2Weights(REIN_MODEL, { numHeads: 4 }),
    /option numHeads is 4 but the weights' "variant" metadata says num_heads 2/,
  );
});

Deno.test("loadDinov2Weights() maps Hugging Face names back to the reference exactly", async () => {
  await withTemp(async (dir) => {
    const ref = await backbone();
    const hf = toHfByHand(ref);
    assert.ok(isHuggingFaceNaming(hf.keys()));
    assert.ok(!isHuggingFaceNaming(ref.keys()));
    assert.ok(hf.has("encoder.layer.1.attention.attention.value.bias"));
    const path = join(dir, "model.safetensors");
    await writeSafetensors(path, hf);
    const w = await loadDinov2Weights(path, { numHeads: 2 });
    assert.equal(w.naming, "huggingface");
    assert.deepEqual(w.variant, TINY);
    assert.deepEqual([...w.params.keys()].sort(), [...ref.keys()].sort());
    for (const [k, t] of ref) assert.deepEqual(w.params.get(k), t, k);
  });
});

Deno.test("fromHuggingFace() strips the classifier model's prefix and keeps its head", async () => {
  const ref = await backbone();
  const hf = toHfByHand(ref, "dinov2.");
  const head: HostTensor = {
    dtype: "F32",
    shape: [3, 64],
    data: new Float32Array(192),
  };
  hf.set("classifier.weight", head);
  const out = fromHuggingFace(hf);
  assert.equal(out.get("classifier.weight"), head);
  assert.deepEqual(
    out.get("blocks.0.attn.qkv.weight"),
    ref.get("blocks.0.attn.qkv.weight"),
  );
  assert.equal(out.size, ref.size + 1);
});

Deno.test("fromHuggingFace() names a missing query/key/value part and an unknown backbone key", async () => {
  const hf = toHfByHand(await backbone());
  hf.delete("encoder.layer.1.attention.attention.key.weight");
  assert.throws(
    () => fromHuggingFace(hf),
    /Cannot build "blocks\.1\.attn\.qkv\.weight": Hugging Face weight "encoder\.layer\.1\.attention\.attention\.key\.weight" is missing/,
  );
  const swiglu = toHfByHand(await backbone());
  swiglu.set("encoder.layer.0.mlp.weights_in.weight", {
    dtype: "F32",
    shape: [1],
    data: new Float32Array(1),
  });
  assert.throws(
    () => fromHuggingFace(swiglu),
    /Cannot map Hugging Face weight "encoder\.layer\.0\.mlp\.weights_in\.weight": it has no reference name/,
  );
});

Deno.test("loadDinov2Weights() names the key, expected and found shape of a wrong tensor", async () => {
  await withTemp(async (dir) => {
    const params = await backbone();
    params.set("blocks.1.attn.proj.weight", {
      dtype: "F32",
      shape: [32, 16],
      data: new Float32Array(512),
    });
    const path = join(dir, "bad.safetensors");
    await writeSafetensors(path, params);
    await assert.rejects(
      loadDinov2Weights(path, { numHeads: 2 }),
      /Cannot load DINOv2 weights ".*bad\.safetensors": backbone weight "blocks\.1\.attn\.proj\.weight" has shape \[32,16\], expected \[32,32\]/,
    );
  });
});

Deno.test("loadDinov2Weights() names a missing backbone key", async () => {
  await withTemp(async (dir) => {
    const params = await backbone();
    params.delete("blocks.1.ls2.gamma");
    const path = join(dir, "missing.safetensors");
    await writeSafetensors(path, params);
    await assert.rejects(
      loadDinov2Weights(path, { numHeads: 2 }),
      /backbone weight "blocks\.1\.ls2\.gamma" is missing \(expected shape \[32\]\)/,
    );
  });
});

Deno.test("loadDinov2Weights() refuses weights with register tokens", async () => {
  await withTemp(async (dir) => {
    const params = await backbone();
    params.set("register_tokens", {
      dtype: "F32",
      shape: [1, 4, 32],
      data: new Float32Array(128),
    });
    const path = join(dir, "reg.safetensors");
    await writeSafetensors(path, params);
    await assert.rejects(
      loadDinov2Weights(path, { numHeads: 2 }),
      /"register_tokens" \[1,4,32\] belongs to a DINOv2 model with registers, which is not supported/,
    );
    // The same under Hugging Face naming.
    const hf = toHfByHand(await backbone());
    hf.set("embeddings.register_tokens", params.get("register_tokens")!);
    await writeSafetensors(path, hf);
    await assert.rejects(
      loadDinov2Weights(path, { numHeads: 2 }),
      /register_tokens/,
    );
  });
});

Deno.test("loadDinov2Weights() reports truncated files and files of neither format", async () => {
  await withTemp(async (dir) => {
    const cutPth = join(dir, "cut.pth");
    const pth = await Deno.readFile(PTH);
    await Deno.writeFile(cutPth, pth.subarray(0, pth.length - 5000));
    assert.equal(await detectWeightsFormat(cutPth), "pth");
    await assert.rejects(
      loadDinov2Weights(cutPth),
      /cut\.pth.*(truncated|end-of-central-directory)/,
    );

    const cutSt = join(dir, "cut.safetensors");
    const st = await Deno.readFile(BACKBONE);
    await Deno.writeFile(cutSt, st.subarray(0, st.length - 64));
    assert.equal(await detectWeightsFormat(cutSt), "safetensors");
    await assert.rejects(
      loadDinov2Weights(cutSt),
      /cut\.safetensors": tensor ".*".*truncated file/,
    );

    const junk = join(dir, "junk.bin");
    await Deno.writeTextFile(junk, "not weights at all");
    await assert.rejects(
      loadDinov2Weights(junk),
      /Cannot load weights ".*junk\.bin": it is neither a torch\.save zip \(\.pth\) nor a safetensors file/,
    );
  });
});

Deno.test("inferVariant() rejects a non-square position grid and metadata that disagrees with the shapes", async () => {
  const params = await backbone();
  assert.deepEqual(inferVariant(params, { numHeads: 2 }), TINY);
  const odd = new Map(params);
  odd.set("pos_embed", {
    dtype: "F32",
    shape: [1, 1000, 32],
    data: new Float32Array(32000),
  });
  assert.throws(
    () => inferVariant(odd, { numHeads: 2 }),
    /"pos_embed" has shape \[1,1000,32\], expected \[1,N\+1,D\] with N a square number of patches/,
  );
  assert.throws(
    () =>
      inferVariant(params, {
        metadata: { variant: '{"num_heads": 2, "depth": 12}' },
      }),
    /the "variant" metadata says depth 12, but the weights' shapes give 2/,
  );
  assert.throws(
    () => inferVariant(params, { numHeads: 3 }),
    /numHeads 3 does not divide the width 32/,
  );
  const gap = new Map([...params].filter(([k]) => !k.startsWith("blocks.0.")));
  assert.throws(
    () => inferVariant(gap, { numHeads: 2 }),
    /"blocks\.0\.\*" is missing/,
  );
});

Deno.test("validateBackbone() accepts exactly the shapes backboneShapes() lists", async () => {
  const params = await backbone();
  const shapes = backboneShapes(TINY);
  assert.equal(shapes.size, params.size);
  assert.deepEqual(shapes.get("blocks.1.mlp.fc2.weight"), [32, 128]);
  validateBackbone(params, TINY);
  const ints = new Map(params);
  ints.set("norm.bias", {
    dtype: "I32",
    shape: [32],
    data: new Int32Array(32),
  });
  assert.throws(
    () => validateBackbone(ints, TINY),
    /Backbone weight "norm\.bias" has dtype I32, expected F32/,
  );
});
