/**
 * The plumbing of `gpu:check` on whatever adapter is here (lavapipe in CI),
 * with a tiny model and grid: the real sizes are for a GPU machine.
 */
import assert from "node:assert/strict";
import { main } from "../tasks/gpu_check.ts";
import type { GpuCheckReport } from "../lib/bench/gpu_check.ts";
import { FIXTURES_URL } from "./_fixtures.ts";
import { NO_WEBGPU } from "./_webgpu.ts";

const fixtures = decodeURIComponent(new URL(FIXTURES_URL).pathname);
const TINY = [
  "--fixtures",
  fixtures,
  "--methods",
  "linear,cufit",
  "--sizes",
  "28",
  "--batches",
  "2,4",
  "--steps",
  "1",
  "--dim",
  "32",
  "--depth",
  "2",
  "--heads",
  "2",
];

async function run(args: string[]): Promise<[number, GpuCheckReport]> {
  let out = "";
  const code = await main(args, (s) => (out += s + "\n"));
  return [code, JSON.parse(out)];
}

Deno.test({
  name:
    "gpu:check reports the adapter, webgpu parity, and webgpu next to wasm for every cell, with GPU memory and kernel times",
  ignore: NO_WEBGPU,
  fn: async () => {
    const [code, r] = await run([...TINY, "--budget", "300"]);
    assert.equal(code, 0);
    assert.ok(r.adapter.found);
    assert.equal(typeof r.adapter.vendor, "string");
    assert.equal(r.realGpu, !r.adapter.cpu);
    assert.ok(
      "passed" in r.parity && r.parity.passed,
      JSON.stringify(r.parity),
    );
    assert.match(
      (r.parity as { summary: string }).summary,
      /^parity: \d+ keys computed; \d+ compared, 0 failed/,
    );
    assert.deepEqual(
      r.bench.map((b) => `${b.method} ${b.img} ${b.batch}`),
      ["linear 28 2", "cufit 28 2", "linear 28 4", "cufit 28 4"],
    );
    for (const row of r.bench) {
      assert.ok("images_per_s" in row.webgpu, JSON.stringify(row));
      assert.ok("images_per_s" in row.wasm, JSON.stringify(row));
      assert.equal(row.webgpu.backend, "webgpu");
      assert.match(row.wasm.backend, /^wasm/);
      assert.ok(row.webgpu.images_per_s > 0 && row.wasm.images_per_s > 0);
      assert.ok(row.webgpu.peak_gpu_mb! > 0);
      assert.equal(row.wasm.peak_gpu_mb, null);
      assert.equal(
        row.speedup,
        Math.round(row.webgpu.images_per_s / row.wasm.images_per_s * 100) /
          100,
      );
    }
    // The CUFIT step at the largest size and middle batch is profiled.
    assert.equal(r.kernels?.method, "cufit");
    assert.equal(r.kernels?.batch, 2);
    assert.ok(r.kernels!.top.length > 0);
    assert.ok(r.kernels!.top.some((k) => /MatMul/.test(k.kernel)));
    assert.ok(r.seconds <= r.budgetSeconds);
  },
});

Deno.test({
  name: "gpu:check reports what its time budget leaves out as skipped",
  ignore: NO_WEBGPU,
  fn: async () => {
    const [code, r] = await run([...TINY, "--budget", "1"]);
    assert.equal(code, 1);
    assert.ok("passed" in r.parity && !r.parity.passed);
    assert.equal(r.bench.length, 4);
    for (const row of r.bench) {
      assert.deepEqual(row.webgpu, { skipped: "time budget" });
      assert.deepEqual(row.wasm, { skipped: "time budget" });
    }
  },
});

Deno.test("gpu:check refuses a malformed size list naming the option", async () => {
  await assert.rejects(
    () => main(["--sizes", "112,x"], () => {}),
    /--sizes must be positive integers separated by commas, got "112,x"/,
  );
});
