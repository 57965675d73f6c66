import assert from "node:assert/strict";
import { join } from "node:path";
import { interruptedLine, trainTask } from "../lib/train/task.ts";
import { appendMetrics } from "../lib/train/run_dir.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("Ctrl-C (a real SIGINT) ends a training task saying after which epoch and how to go on", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "tasks/train_linear.ts",
        "-d",
        "demo",
        "--weights",
        "data/demo/backbone.safetensors",
        "--save-path",
        tmp,
        "-s",
        "sigint",
        "--epochs",
        "50",
        "--max-batches",
        "1",
        "--backend",
        "wasm",
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const decoder = new TextDecoder();
    let out = "";
    let err = "";
    const readErr = (async () => {
      for await (const c of child.stderr) err += decoder.decode(c);
    })();
    for await (const c of child.stdout) {
      out += decoder.decode(c);
      // Two epochs done: interrupt during the third.
      if ((out.match(/^EPOCH /gm) ?? []).length >= 2) {
        child.kill("SIGINT");
        break;
      }
    }
    const status = await child.status;
    await readErr;
    assert.equal(status.code, 130, err);
    const line = err.trim().split("\n").at(-1)!;
    assert.match(
      line,
      /^train:linear: interrupted after epoch (\d+); continue with --resume$/,
    );
    // The epoch named is the last one on record in the run folder.
    const recorded = (await Deno.readTextFile(
      join(tmp, "sigint", "metrics.jsonl"),
    )).trim().split("\n").map((l) => JSON.parse(l).epoch);
    assert.equal(Number(/epoch (\d+)/.exec(line)![1]), recorded.at(-1));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("interruptedLine() names the last recorded epoch, or none", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    assert.equal(
      await interruptedLine("demo", tmp),
      "demo: interrupted before the first epoch ended; start it over with --resume",
    );
    await appendMetrics(tmp, {
      epoch: 0,
      lr: 1e-3,
      trainLoss: 1,
      trainAcc: 0.5,
      testAcc: 0.5,
    });
    assert.equal(
      await interruptedLine("demo", tmp),
      "demo: interrupted after epoch 0; continue with --resume",
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("trainTask() warns once when the schedule decays the learning rate at once", async () => {
  const tmp = await Deno.makeTempDir();
  const lines: string[] = [];
  try {
    const code = await trainTask("linear", [
      "-d",
      "demo",
      "--weights",
      join(ROOT, "data/demo/backbone.safetensors"),
      "--save-path",
      tmp,
      "--epochs",
      "1",
      "--max-batches",
      "1",
      "--backend",
      "wasm",
    ], { log: (l) => lines.push(l), progress: false });
    assert.equal(code, 0);
    const warnings = lines.filter((l) => l.startsWith("warning:"));
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0],
      /with 1 epoch\(s\) the reference schedule \(milestones \[0,0,0\]\) decays the learning rate at once: epoch 0 trains at 1e-6, not 0\.001/,
    );
    assert.match(lines.at(-1)!, /last-1 mean test accuracy/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
