import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  kernelGroup,
  profileTable,
  summarizeKernels,
} from "../lib/bench/step_profile.ts";
import { BENCH_PERMISSIONS } from "../tasks/bench_all.ts";
import { TINY_BENCH } from "./_bench_args.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

Deno.test("kernelGroup() counts matmuls as blas only when they are native", () => {
  assert.equal(kernelGroup("BatchMatMul", ["BatchMatMul"]), "blas");
  assert.equal(kernelGroup("BatchMatMul", []), "serial");
  assert.equal(kernelGroup("Transpose", ["Transpose"]), "copy");
  assert.equal(kernelGroup("Softmax", ["BatchMatMul"]), "serial");
  // The C kernels' ones only when the C kernels are loaded.
  assert.equal(kernelGroup("GeluParts", ["BatchMatMul"]), "serial");
  assert.equal(kernelGroup("GeluParts", ["BatchMatMul"], true), "threaded");
  assert.equal(kernelGroup("LayerNormGrad", [], true), "threaded");
  assert.equal(kernelGroup("Softmax", [], true), "serial");
  assert.equal(kernelGroup("Softmax (C)", [], true), "threaded");
});

Deno.test("summarizeKernels() sums calls per kernel and puts the rest of the step in host", () => {
  const p = summarizeKernels(
    [
      { name: "BatchMatMul", ms: 30 },
      { name: "Softmax", ms: 10 },
      { name: "BatchMatMul", ms: 20 },
      { name: "Slice", ms: 5 },
    ],
    100,
    ["BatchMatMul"],
  );
  assert.deepEqual(p.kernels[0], {
    name: "BatchMatMul",
    group: "blas",
    calls: 2,
    ms: 50,
  });
  assert.deepEqual(p.groups, {
    blas: 50,
    threaded: 0,
    copy: 5,
    serial: 10,
    host: 35,
  });
  assert.equal(p.serialFraction, 0.5);
  // With the C kernels, their calls count as threaded, not serial.
  const c = summarizeKernels(
    [
      { name: "BatchMatMul", ms: 30 },
      { name: "Softmax (C)", ms: 10 },
      { name: "GeluParts", ms: 20 },
      { name: "Softmax", ms: 5 },
    ],
    100,
    ["BatchMatMul"],
    true,
  );
  assert.deepEqual(c.groups, {
    blas: 30,
    threaded: 30,
    copy: 0,
    serial: 5,
    host: 35,
  });
  assert.equal(c.serialFraction, 0.4);
  const table = profileTable(p, 1);
  assert.match(table, /\| BatchMatMul \| blas \| 2 \| 0\.05 \| 50\.0% \|/);
  assert.match(table, /\| 2 other kernels \| \| 2 \| 0\.01 \| 15\.0% \|/);
  assert.match(table, /\| \*\*host\*\* \| \| \| 0\.04 \| 35\.0% \|/);
});

Deno.test("bench --profile prints the profile table, and with --json the profile and CPU time on the line before the result", async () => {
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      ...BENCH_PERMISSIONS,
      "tasks/bench.ts",
      "--method",
      "cufit",
      ...TINY_BENCH,
      "--threads",
      "1",
      "--profile",
      "--json",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.match(stderr, /serial fraction 0\.\d+/);
  assert.match(stderr, /\| \*\*step\*\* \| \| \| [\d.]+ \| 100% \|/);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  const { details: { profile, cpu_seconds } } = JSON.parse(lines.at(-2)!);
  assert.ok(cpu_seconds > 0, `cpu_seconds ${cpu_seconds}`);
  const names = profile.kernels.map((k: { name: string }) => k.name);
  assert.ok(names.includes("Softmax"), names.join(","));
  assert.ok(profile.stepMs > 0);
  assert.equal(JSON.parse(lines.at(-1)!).method, "cufit");
});
