/**
 * The PyTorch version of the training steps runs only where an interpreter
 * can import torch (Debian: python3-torch); elsewhere these tests are
 * skipped with a message.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BENCH_RESULT_KEYS } from "../lib/bench/train_bench.ts";
import { checkTorch, main as benchAll } from "../tasks/bench_all.ts";
import { TINY_BENCH, TINY_BENCH_MODEL } from "./_bench_args.ts";

const SCRIPT = fileURLToPath(
  new URL("../lib/bench/torch_bench.py", import.meta.url),
);

async function findTorch(): Promise<string | undefined> {
  for (const python of ["python3", "/usr/bin/python3"]) {
    try {
      await checkTorch(python);
      return python;
    } catch {
      // next
    }
  }
  return undefined;
}

const PYTHON = await findTorch();
if (PYTHON === undefined) {
  console.error(
    "torch_bench_test: skipped, no python3 here imports torch (apt-get install python3-torch)",
  );
}
const TINY = TINY_BENCH_MODEL;

for (const method of ["linear", "rein", "cufit"]) {
  Deno.test({
    name: `torch_bench.py (${method}) prints bench's contract line last`,
    ignore: PYTHON === undefined,
    fn: async () => {
      const out = await new Deno.Command(PYTHON!, {
        args: [
          SCRIPT,
          "--method",
          method,
          ...TINY_BENCH,
          "--threads",
          "1",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
      const obj = JSON.parse(lines.at(-1)!);
      assert.ok(JSON.parse(lines.at(-2)!).details.cpu_seconds >= 0);
      assert.deepEqual(Object.keys(obj), [...BENCH_RESULT_KEYS]);
      assert.equal(obj.method, method);
      assert.equal(obj.img, 28);
      assert.match(obj.backend, /^torch \d/);
      assert.ok(obj.images_per_s > 0);
      assert.match(stderr, /step 1\/1: [\d.]+ s/);
    },
  });
}

Deno.test({
  name: "bench:all --torch puts PyTorch rows and same-run ratios in the file",
  ignore: PYTHON === undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const out = join(dir, "BENCHMARKS.md");
      const code = await benchAll([
        "--methods",
        "rein",
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
        "--torch",
        PYTHON!,
        "--out",
        out,
        "--bench-args",
        TINY.join(" "),
      ]);
      assert.equal(code, 0);
      const text = await Deno.readTextFile(out);
      assert.match(
        text,
        /\| rein +\| 28 +\| 1 +\| PyTorch \(1 x 1\) +\| torch [\d.a-z]+ +\| [\d.]+ \([\d.]+\) +\| 1\.00 +\|/,
      );
      assert.match(
        text,
        /\| rein +\| 28 +\| 1 +\| best \(1 x 1\) +\| [^|]+\| [\d.]+ \([\d.]+\) +\| \d+\.\d\d +\|/,
      );
      assert.match(text, /- PyTorch: torch /);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("bench:all --torch with an interpreter that lacks torch fails in one line", async () => {
  await assert.rejects(
    () => benchAll(["--torch", "/bin/false", "--out", "/nonexistent/x.md"]),
    /--torch \/bin\/false: it cannot import torch; install PyTorch/,
  );
});
