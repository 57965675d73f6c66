/**
 * Errors of the webgpu backend a user can act on. The last test destroys
 * the device, so it stays last in this file.
 */
import assert from "node:assert/strict";
import { initBackend } from "../lib/backend/backend.ts";
import { tf } from "../lib/backend/tf.ts";
import {
  checkGpu,
  GpuLostError,
  GpuOutOfMemoryError,
  isMemoryError,
  outOfMemoryMessage,
} from "../lib/backend/webgpu/device.ts";
import { loadDatasetConfig, resolveConfig } from "../lib/train/config.ts";
import { train } from "../lib/train/trainer.ts";
import { tinyWorkspace } from "./_tiny.ts";
import { ADAPTER, NO_WEBGPU } from "./_webgpu.ts";

Deno.test("outOfMemoryMessage() names the batch size and suggests half of it", () => {
  assert.equal(
    outOfMemoryMessage("Buffer size 9 is too big", {
      batchSize: 64,
      where: "epoch 2, batch 5",
      runDir: "runs/x",
    }),
    "Out of GPU memory at batch size 64 at epoch 2, batch 5 (Buffer size 9 is too big): " +
      "try --batch-size 32; the last good checkpoint is kept in runs/x",
  );
  assert.match(
    outOfMemoryMessage("x", { batchSize: 1 }),
    /batch size 1 \(x\): use a smaller input or model$/,
  );
  assert.match(
    outOfMemoryMessage("x", { batchSize: 16, batchFlag: "--batch" }),
    /: try --batch 8$/,
  );
  assert.match(
    outOfMemoryMessage("x", { batchSize: 16, batchFlag: null }),
    /: try a batch size of 8$/,
  );
});

Deno.test("isMemoryError() knows WebGPU's out-of-memory and buffer-limit errors", () => {
  assert.ok(isMemoryError({ name: "GPUOutOfMemoryError", message: "" }));
  assert.ok(isMemoryError({
    message:
      "Buffer binding 0 range 160000000 exceeds `max_*_buffer_binding_size` limit 134217728",
  }));
  assert.ok(isMemoryError({
    message:
      "Buffer size 2800000000 is greater than the maximum buffer size (2147483647)",
  }));
  assert.ok(!isMemoryError({ message: "Shader module is invalid" }));
});

Deno.test({
  name:
    "--backend webgpu names the adapter in its first line, and checkGpu() turns an oversized buffer into an out-of-memory error naming the batch size",
  // The tensor must exceed the adapter's binding limit (128 MiB on lavapipe).
  ignore: NO_WEBGPU || ADAPTER.maxBindingBytes > 2 ** 29,
  fn: async () => {
    const lines: string[] = [];
    const info = await initBackend("webgpu", { log: (l) => lines.push(l) });
    assert.equal(info.name, "webgpu");
    assert.match(
      lines[0],
      /^backend: webgpu, tfjs 4\.22\.0; adapter: vendor \S+, architecture \S+, device \S+/,
    );
    checkGpu(); // Nothing reported yet.
    const n = ADAPTER.maxBindingBytes / 4 + 1024;
    const y = tf.tidy(() => tf.add(tf.fill([n], 1), 1));
    await y.data();
    y.dispose();
    assert.throws(
      () => checkGpu({ batchSize: 64, where: "epoch 0, batch 3" }),
      (e: Error) => {
        assert.ok(e instanceof GpuOutOfMemoryError);
        assert.match(
          e.message,
          /^Out of GPU memory at batch size 64 at epoch 0, batch 3 \(.*limit.*\): try --batch-size 32$/,
        );
        return true;
      },
    );
    checkGpu(); // Reported once.
  },
});

Deno.test({
  name:
    "train() on webgpu stops when the device is lost, keeping the last good checkpoint",
  ignore: NO_WEBGPU,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      await tinyWorkspace({ dir });
      const config = resolveConfig(
        "rein",
        loadDatasetConfig(`${dir}/synthetic.json`),
        { weights: `${dir}/w.safetensors`, backend: "webgpu", save: "lost" },
      );
      const info = await initBackend("webgpu", { log: () => {} });
      const device = (tf.backend() as unknown as { device: GPUDevice }).device;
      await assert.rejects(
        () =>
          train(config, {
            log: () => {},
            progress: false,
            backend: info,
            // What a driver reset looks like to the program: the device goes.
            onEpoch: (m) => m.epoch === 0 && device.destroy(),
          }),
        (e: Error) => {
          assert.ok(e instanceof GpuLostError, String(e));
          assert.match(
            e.message,
            /^The GPU device was lost at epoch 1, batch 0 \(destroyed: .*\); the last good checkpoint is kept in .*runs\/lost \(continue with --resume\)$/,
          );
          return true;
        },
      );
      const last = JSON.parse(
        await Deno.readTextFile(`${dir}/runs/lost/last.json`),
      );
      assert.equal(last.epoch, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
