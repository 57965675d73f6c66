import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveWeightsFile } from "../lib/train/data.ts";

Deno.test("resolveWeightsFile() says how to get weights, and for generated data names the demo backbone", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const plain = () =>
      resolveWeightsFile({ weights: null, netsize: "s" }, { weightsDir: dir });
    assert.throws(
      plain,
      /^Error: No DINOv2 weights for --netsize s in ".*" \(looked for dinov2_vits14_pretrain\.pth, .*\): run `deno task fetch:weights dinov2_vits14` or pass --weights FILE$/,
    );
    assert.throws(
      () =>
        resolveWeightsFile(
          { weights: null, netsize: "s", dataset: { kind: "synthetic" } },
          { weightsDir: dir },
        ),
      /or pass --weights FILE \(for generated data: --weights data\/demo\/backbone\.safetensors\)$/,
    );
    const file = join(dir, "dinov2_vits14_pretrain.pth");
    await Deno.writeTextFile(file, "");
    assert.equal(plain(), file);
    assert.throws(
      () => resolveWeightsFile({ weights: join(dir, "x.pth"), netsize: "s" }),
      /^Error: Weights file ".*x\.pth" does not exist$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
