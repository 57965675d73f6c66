import assert from "node:assert/strict";
import {
  DINOV2_MODELS,
  dinov2MaxBytes,
  dinov2Source,
  fetchHfFileInfo,
  MEDMNIST_ANY_MAX_BYTES,
  medmnistMaxBytes,
  medmnistSource,
} from "../lib/prepare/sources.ts";

Deno.test("medmnistSource() caps a download at what the archive's pixels can fill", () => {
  // 224 px BloodMNIST: 17,092 RGB images hold 2,572,824,576 bytes of pixels.
  const blood = medmnistSource("bloodmnist", 224).maxBytes!;
  assert.ok(blood > 17_092 * 224 * 224 * 3, `${blood}`);
  assert.ok(blood < 17_092 * 224 * 224 * 3 * 1.002 + 2 ** 20, `${blood}`);
  assert.equal(blood, medmnistMaxBytes("bloodmnist", 224));
  // Grayscale OrganCMNIST at 28 px: 23,583 images of 784 bytes.
  const organ = medmnistMaxBytes("organcmnist", 28);
  assert.ok(organ > 23_583 * 784 && organ < 23_583 * 784 * 1.02 + 2 ** 20);
  // Sizes grow with the image side; unknown flags get the generic cap.
  assert.ok(medmnistMaxBytes("organcmnist", 64) > organ);
  assert.equal(
    medmnistSource("pathmnist", 224, { md5: "0".repeat(32) }).maxBytes,
    MEDMNIST_ANY_MAX_BYTES,
  );
});

Deno.test("dinov2MaxBytes() bounds a checkpoint by its float32 parameter count", () => {
  // Exact counts of the published ViT-S/B/L 14 backbones (21 M, 86 M, 300 M).
  const params = { dinov2_vits14: 22_056_576, dinov2_vitb14: 86_580_480 };
  for (const [name, n] of Object.entries(params)) {
    const cap = dinov2MaxBytes(name as keyof typeof DINOV2_MODELS);
    assert.equal(cap, Math.ceil(4 * n * 1.01) + 2 ** 20, name);
  }
  assert.equal(dinov2MaxBytes("dinov2_vits14"), 90_157_144);
  assert.ok(dinov2MaxBytes("dinov2_vitl14") > 4 * 300e6);
  for (const source of ["meta", "hf"] as const) {
    assert.equal(
      dinov2Source("dinov2_vitb14", source).maxBytes,
      dinov2MaxBytes("dinov2_vitb14"),
    );
  }
});

Deno.test("fetchHfFileInfo() gives up on a Hub that does not answer", async () => {
  const never: typeof fetch = (_url, init) =>
    new Promise((_, reject) =>
      init?.signal?.addEventListener(
        "abort",
        () => reject(new Error("aborted")),
      )
    );
  await assert.rejects(
    fetchHfFileInfo("https://huggingface.co/x/resolve/main/model.safetensors", {
      fetch: never,
      timeoutMs: 50,
    }),
    (e: Error) =>
      e.message ===
        "Cannot reach Hugging Face at https://huggingface.co/x/resolve/main/model.safetensors: no answer for 0.05 s",
  );
});
