import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { median, renderBenchmarks } from "../lib/bench/benchmarks_md.ts";
import {
  BENCH_RESULT_KEYS,
  benchTrainStep,
  parseBenchResult,
} from "../lib/bench/train_bench.ts";
import { BENCH_PERMISSIONS, main as benchAll } from "../tasks/bench_all.ts";
import { TINY_BENCH, TINY_BENCH_MODEL } from "./_bench_args.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TINY = TINY_BENCH;
async function bench(args: string[]) {
  const out = await new Deno.Command("deno", {
    args: ["run", ...BENCH_PERMISSIONS, "tasks/bench.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

for (const method of ["linear", "rein", "cufit"] as const) {
  Deno.test(`bench task --json (${method}) prints the contract line last`, async () => {
    const r = await bench(["--method", method, ...TINY, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const last = r.stdout.trim().split("\n").at(-1)!;
    const obj = JSON.parse(last);
    assert.deepEqual(Object.keys(obj), [...BENCH_RESULT_KEYS]);
    assert.equal(obj.method, method);
    assert.equal(obj.img, 28);
    assert.equal(obj.batch, 2);
    assert.match(obj.backend, /^(wasm|cpu|tensorflow)(\+openblas(\+c)?)?$/);
    assert.ok(obj.images_per_s > 0, `images_per_s ${obj.images_per_s}`);
    assert.ok(obj.peak_rss_mb > 10, `peak_rss_mb ${obj.peak_rss_mb}`);
    assert.match(r.stderr, /warm-up: [\d.]+ s/);
    assert.match(r.stderr, /step 1\/1: [\d.]+ s/);
  });
}

Deno.test("bench task --no-native measures the backend's own kernels", async () => {
  const r = await bench([
    "--method",
    "linear",
    "--backend",
    "wasm",
    "--no-native",
    ...TINY,
    "--json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(parseBenchResult(r.stdout).backend, "wasm");
});

Deno.test("bench task rejects an unknown method and a non-integer step count", async () => {
  const bad = await bench(["--method", "lora", ...TINY]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /lora/);
  assert.match(bad.stderr, /linear, rein, cufit/);
  const steps = await bench(["--method", "rein", "--steps", "2.5"]);
  assert.notEqual(steps.code, 0);
  assert.match(
    steps.stderr,
    /--steps must be a non-negative integer, got "2.5"/,
  );
});

Deno.test("benchTrainStep() rejects heads that do not divide the width", async () => {
  await assert.rejects(
    () => benchTrainStep("rein", { dim: 30, heads: 4 }),
    /"heads" must divide "dim" \(30\), got 4/,
  );
  await assert.rejects(
    () => benchTrainStep("rein", { steps: 0 }),
    /"steps" must be an integer >= 1, got 0/,
  );
});

Deno.test("parseBenchResult() names what is wrong with the last line", () => {
  const good =
    '{"method":"rein","img":112,"batch":16,"backend":"wasm+openblas","images_per_s":9.5,"peak_rss_mb":1000}';
  assert.equal(parseBenchResult(`progress\n${good}\n\n`).images_per_s, 9.5);
  assert.throws(() => parseBenchResult(""), /empty/);
  assert.throws(() => parseBenchResult("done"), /not JSON: "done"/);
  assert.throws(
    () => parseBenchResult('{"method":"rein","img":112}'),
    /keys \[method,img\], expected \[method,img,batch,backend,images_per_s,peak_rss_mb\]/,
  );
  assert.throws(
    () => parseBenchResult(good.replace("9.5", '"fast"')),
    /"images_per_s" must be a finite number, got "fast"/,
  );
  assert.throws(
    () => parseBenchResult(good.replace('"rein"', '"lora"')),
    /"method" must be one of linear, rein, cufit, got "lora"/,
  );
});

Deno.test("peak RSS comes from the kernel and grows with a large allocation", async () => {
  // In a process of its own: the test runner's other modules share this
  // process and free or take memory while it measures.
  const peakRss = new URL("../lib/bench/peak_rss.ts", import.meta.url).href;
  const script = `
    import { kernelPeakRss, RssTracker } from ${JSON.stringify(peakRss)};
    const before = kernelPeakRss();
    const bytes = Math.max(0, before - Deno.memoryUsage().rss) + 64 * 2 ** 20;
    const big = new Float32Array(Math.ceil(bytes / 4)).fill(1);
    const after = kernelPeakRss();
    const tracker = new RssTracker();
    tracker.sample();
    console.log(JSON.stringify({ before, after, one: big[7], source: tracker.peak().source }));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const { before, after, one, source } = JSON.parse(text);
  assert.ok(before > 1e6, `peak ${before}`);
  // Enough to pass the earlier peak by 64 MB, whatever ran before.
  assert.ok(after >= before + 32 * 2 ** 20, `${before} -> ${after}`);
  assert.equal(one, 1);
  assert.equal(source, "getrusage");
});

Deno.test("median() of odd and even lists", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.throws(() => median([]), /empty/);
});

const MACHINE = {
  date: "2026-01-02",
  cpu: "Test CPU",
  cores: 2,
  memoryGb: 8,
  os: "linux",
  deno: "2.9.0",
  v8: "1",
  typescript: "5",
  tfjs: "4.22.0",
  openblas: "OpenBLAS 0.3.21",
  command: "deno task bench:all",
};

const run = (
  method: "rein" | "cufit",
  ips: number,
  rss: number,
  img = 112,
  backend = "wasm+openblas",
) => ({
  method,
  img,
  batch: 16,
  backend,
  images_per_s: ips,
  peak_rss_mb: rss,
});

Deno.test("renderBenchmarks() puts medians and every run in brackets, with no ratio without PyTorch runs", () => {
  const text = renderBenchmarks(
    [{
      config: "best",
      steps: 5,
      threads: 2,
      runs: [
        run("rein", 8, 900),
        run("rein", 10, 1000),
        run("rein", 9, 950),
        run("cufit", 3.8, 1040),
      ],
    }],
    MACHINE,
  );
  assert.match(
    text,
    /\| rein \| 112 \| 2 \| best \(5 x 3\) \| wasm\+openblas \| 9\.00 \(8\.00, 10\.00, 9\.00\) \| n\/a \| n\/a \| n\/a \| 950 \| n\/a \|/,
  );
  assert.doesNotMatch(text, /\| linear \|/);
  assert.doesNotMatch(text, /PyTorch 1\.13 \|/);
  assert.match(text, /No PyTorch runs are in this file/);
  assert.match(text, /Machine: Test CPU, 2 cores, 8 GB memory/);
  assert.match(text, /batches of 16 images of 112 x 112 px/);
});

Deno.test("renderBenchmarks() divides by the PyTorch row of the same method, size and threads", () => {
  const text = renderBenchmarks(
    [
      {
        config: "best",
        steps: 2,
        threads: 1,
        runs: [
          { ...run("cufit", 2, 1000, 224), cpu_s_per_image: 0.5 },
          run("cufit", 9, 500, 112),
        ],
      },
      {
        config: "PyTorch",
        steps: 2,
        threads: 1,
        torch: true,
        runs: [
          { ...run("cufit", 1, 4000, 224, "torch 1.13"), cpu_s_per_image: 1.5 },
          run("cufit", 3, 1000, 112, "torch 1.13"),
        ],
      },
      {
        config: "best",
        steps: 2,
        threads: 2,
        runs: [run("cufit", 4, 1000, 224)],
      },
    ],
    { ...MACHINE, torch: "torch 1.13 (python3)" },
  );
  assert.match(
    text,
    /\| cufit \| 224 \| 1 \| best \(2 x 1\) \| wasm\+openblas \| 2\.00 \(2\.00\) \| 2\.00 \| 0\.50 \| 3\.00 \| 1000 \| 0\.25 \|/,
  );
  assert.match(
    text,
    /\| cufit \| 112 \| 1 \| best \(2 x 1\) \| .* \| 3\.00 \| n\/a \| n\/a \| 500 \| 0\.50 \|/,
  );
  assert.match(
    text,
    /\| cufit \| 224 \| 1 \| PyTorch \(2 x 1\) \| torch 1\.13 \| 1\.00 \(1\.00\) \| 1\.00 \| 1\.50 \| 1\.00 \|/,
  );
  // No PyTorch run at 2 threads: no ratio.
  assert.match(
    text,
    /\| cufit \| 224 \| 2 \| best \(2 x 1\) \| .* \| n\/a \| n\/a \| n\/a \| 1000 \| n\/a \|/,
  );
  assert.match(text, /PyTorch: torch 1\.13 \(python3\)/);
  // Hours per epoch at 224 px and 2 threads: HAM10000's 10015 images at 4 images/s.
  assert.match(text, /## Hours per epoch at 224 px, 2 threads/);
  assert.match(text, /\| cufit \| best \| 0\.70 \| 0\.20 \| 0\.83 \| 0\.90 \|/);
});

Deno.test("bench:all rewrites the table file through a temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = join(dir, "BENCHMARKS.md");
    await Deno.writeTextFile(out, "old\n");
    const code = await benchAll([
      "--methods",
      "linear,rein",
      "--configs",
      "best",
      "--repeat",
      "1",
      "--steps",
      "1",
      "--img",
      "28",
      "--batch",
      "2",
      "--threads",
      "1",
      "--out",
      out,
      "--bench-args",
      TINY_BENCH_MODEL.join(" "),
    ]);
    assert.equal(code, 0);
    const text = await Deno.readTextFile(out);
    assert.match(text, /^# Benchmarks/);
    assert.match(text, /\| linear +\| 28 +\| 1 +\| best \(1 x 1\) +\|/);
    assert.match(text, /\| rein +\| 28 +\| 1 +\| best \(1 x 1\) +\|/);
    assert.match(text, /2 images of 28 x 28 px/);
    const check = await new Deno.Command("deno", {
      args: ["fmt", "--check", out],
      cwd: dir,
      stderr: "piped",
    }).output();
    assert.equal(check.code, 0, "the table file passes deno fmt --check");
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name),
      ["BENCHMARKS.md"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench:all rejects an unknown configuration naming it", async () => {
  await assert.rejects(
    () => benchAll(["--configs", "best,gpu"]),
    /--configs must be a comma-separated list of best, noc, avx512, wasm, cpu, got "best,gpu"/,
  );
});
