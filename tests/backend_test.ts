import assert from "node:assert/strict";
import {
  BackendUnavailableError,
  initBackend,
  installHint,
} from "../lib/backend/backend.ts";
import { tf } from "../lib/backend/tf.ts";
import { isRealGpu, probeAdapter } from "../lib/backend/webgpu/adapter.ts";

Deno.test("initBackend() names the install steps when tfjs-node is missing", async () => {
  for (const name of ["tensorflow", "tensorflow-gpu"] as const) {
    await assert.rejects(
      () => initBackend(name, { log: () => {} }),
      (err: Error) => {
        assert.ok(err instanceof BackendUnavailableError);
        assert.match(
          err.message,
          /deno install --allow-scripts=npm:@tensorflow\/tfjs-node/,
        );
        assert.match(err.message, /--allow-ffi/);
        return true;
      },
    );
  }
  assert.match(installHint("tensorflow-gpu"), /CUDA 11\.2/);
});

Deno.test("initBackend() rejects an unknown name and lists the choices", async () => {
  await assert.rejects(
    () => initBackend("metal" as never, { log: () => {} }),
    /Unknown backend "metal": expected one of auto, webgpu, tensorflow-gpu, tensorflow, wasm, cpu/,
  );
});

Deno.test("initBackend('auto') picks wasm here (no hardware GPU) and says why", async () => {
  const adapter = await probeAdapter();
  const lines: string[] = [];
  const info = await initBackend("auto", {
    log: (l) => lines.push(l),
    native: false,
  });
  if (isRealGpu(adapter)) {
    assert.equal(info.name, "webgpu");
    assert.match(
      lines[0],
      /^backend: webgpu \(auto: tensorflow-gpu not installed; webgpu chosen: /,
    );
    return;
  }
  assert.equal(info.name, "wasm");
  assert.equal(tf.getBackend(), "wasm");
  assert.match(
    lines[0],
    /^backend: wasm \(auto: tensorflow-gpu not installed; webgpu skipped: [^;]+; tensorflow not installed; wasm chosen\), tfjs 4\.22\.0/,
  );
  if (adapter.found) {
    assert.match(
      lines[0],
      /; adapter: vendor .* \((fallback adapter|software renderer), runs on the CPU\)$/,
    );
  }
});

/** Runs `fn` with `navigator.gpu` replaced by `gpu`. */
async function withGpu(gpu: unknown, fn: () => Promise<void>) {
  Object.defineProperty(navigator, "gpu", { value: gpu, configurable: true });
  try {
    await fn();
  } finally {
    delete (navigator as unknown as Record<string, unknown>).gpu;
  }
}

Deno.test("initBackend('webgpu') without an adapter says how to get one; 'auto' falls back and says why", async () => {
  for (
    const [gpu, reason] of [
      [undefined, /no navigator\.gpu/],
      [{ requestAdapter: () => Promise.resolve(null) }, /no WebGPU adapter/],
    ] as const
  ) {
    await withGpu(gpu, async () => {
      await assert.rejects(
        () => initBackend("webgpu", { log: () => {} }),
        (e: Error) => {
          assert.ok(e instanceof BackendUnavailableError);
          assert.match(e.message, reason);
          assert.match(e.message, /Vulkan driver/);
          assert.match(e.message, /--backend wasm/);
          return true;
        },
      );
      const lines: string[] = [];
      const info = await initBackend("auto", {
        log: (l) => lines.push(l),
        native: false,
      });
      assert.equal(info.name, "wasm");
      assert.match(
        lines[0],
        /\(auto: tensorflow-gpu not installed; webgpu skipped: /,
      );
      assert.match(lines[0], /; adapter: none \(/);
    });
  }
});

Deno.test("initBackend('cpu') works without native kernels, and names the adapter too", async () => {
  const lines: string[] = [];
  const info = await initBackend("cpu", {
    log: (l) => lines.push(l),
    native: false,
  });
  assert.equal(info.tfName, "cpu");
  assert.deepEqual(info.nativeKernels, []);
  assert.deepEqual(info.adapter, await probeAdapter());
  assert.match(
    lines[0],
    /^backend: cpu, tfjs 4\.22\.0; native kernels off \(disabled\); adapter: (none \(|vendor )/,
  );
  await initBackend("wasm", { log: () => {} });
});

Deno.test("CUFIT_NATIVE=0 turns the native kernels off", async () => {
  Deno.env.set("CUFIT_NATIVE", "0");
  try {
    await initBackend("wasm", { log: () => {}, native: true });
    const info = await initBackend("wasm", { log: () => {} });
    assert.deepEqual(info.nativeKernels, []);
    assert.equal(info.nativeReason, "disabled");
    const { activeNativeKernels } = await import(
      "../lib/backend/native/kernels.ts"
    );
    assert.deepEqual(activeNativeKernels("wasm"), []);
  } finally {
    Deno.env.delete("CUFIT_NATIVE");
  }
});
