import assert from "node:assert/strict";
import {
  adapterLine,
  autoReason,
  describe,
  isRealGpu,
} from "../lib/backend/webgpu/adapter.ts";
import { ADAPTER, NO_WEBGPU } from "./_webgpu.ts";

/** A stand-in for a GPUAdapter with the given info. */
function fakeAdapter(info: Record<string, unknown>, fallback?: boolean) {
  return {
    info,
    ...(fallback === undefined ? {} : { isFallbackAdapter: fallback }),
    limits: { maxStorageBufferBindingSize: 1 << 27, maxBufferSize: 1 << 30 },
  } as unknown as GPUAdapter;
}

Deno.test("describe() reads vendor, architecture and device, and isRealGpu() accepts a hardware adapter", () => {
  const r = describe(fakeAdapter({
    vendor: "nvidia",
    architecture: "hopper",
    device: "0x2335",
    description: "NVIDIA H200",
    isFallbackAdapter: false,
  }));
  assert.equal(r.vendor, "nvidia");
  assert.equal(r.architecture, "hopper");
  assert.equal(r.device, "0x2335");
  assert.equal(r.maxBindingBytes, 1 << 27);
  assert.ok(isRealGpu(r));
  assert.equal(
    adapterLine(r),
    'adapter: vendor nvidia, architecture hopper, device 0x2335 "NVIDIA H200" (GPU)',
  );
  assert.equal(autoReason(r), "webgpu chosen: a hardware GPU adapter");
});

Deno.test("isRealGpu() refuses a fallback adapter, whether info or the adapter says so", () => {
  for (
    const a of [
      fakeAdapter({ vendor: "x", device: "1", isFallbackAdapter: true }),
      fakeAdapter({ vendor: "x", device: "1" }, true),
    ]
  ) {
    const r = describe(a);
    assert.ok(r.fallback);
    assert.ok(!isRealGpu(r));
    assert.match(autoReason(r), /^webgpu skipped: .*fallback/);
    assert.match(adapterLine(r), /\(fallback adapter, runs on the CPU\)$/);
  }
});

Deno.test("isRealGpu() refuses software renderers that do not say they are a fallback", () => {
  for (
    const description of [
      "llvmpipe (LLVM 15.0.6, 256 bits)",
      "SwiftShader Device (Subzero)",
      "Microsoft Basic Render Driver",
    ]
  ) {
    const r = describe(
      fakeAdapter({ vendor: "65541", device: "0", description }),
    );
    assert.ok(!r.fallback);
    assert.ok(r.cpu, description);
    assert.ok(!isRealGpu(r));
    assert.match(autoReason(r), /software renderer on the CPU/);
  }
});

Deno.test("adapterLine() marks what the driver leaves empty", () => {
  const r = describe(
    fakeAdapter({ vendor: "apple", architecture: "", device: "" }),
  );
  assert.equal(
    adapterLine(r),
    "adapter: vendor apple, architecture -, device - (GPU)",
  );
});

Deno.test({
  name: "probeAdapter() needs no Deno permission or flag",
  ignore: NO_WEBGPU,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const script = `${dir}/probe.ts`;
      const mod = new URL("../lib/backend/webgpu/adapter.ts", import.meta.url);
      await Deno.writeTextFile(
        script,
        `import { probeAdapter } from "${mod.href}";\n` +
          "console.log(JSON.stringify(await probeAdapter()));\n",
      );
      const out = await new Deno.Command("deno", {
        args: ["run", "--no-prompt", "--no-config", script],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      const report = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.equal(report.found, true);
      assert.equal(report.description, ADAPTER.description);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
