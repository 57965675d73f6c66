import assert from "node:assert/strict";
import { join } from "node:path";
import {
  acquireRunLock,
  LOCK_FILE,
  removeStaleTemps,
} from "../lib/train/run_lock.ts";

Deno.test("acquireRunLock() refuses a second holder, naming its pid, until the first releases", async () => {
  const dir = await Deno.makeTempDir();
  const first = await acquireRunLock(dir);
  assert.equal(first.stalePid, null);
  assert.equal(
    JSON.parse(await Deno.readTextFile(join(dir, LOCK_FILE))).pid,
    Deno.pid,
  );
  await assert.rejects(
    () => acquireRunLock(dir),
    new RegExp(
      `Run folder "${dir}" is in use by process ${Deno.pid} \\(lock file "${
        join(dir, LOCK_FILE)
      }"\\): wait for that run to end, or choose another save name`,
    ),
  );
  await first.release();
  assert.throws(
    () => Deno.statSync(join(dir, LOCK_FILE)),
    Deno.errors.NotFound,
  );
  const second = await acquireRunLock(dir);
  assert.equal(second.stalePid, null);
  await second.release();
});

Deno.test("acquireRunLock() takes over the lock of a process killed with SIGKILL", async () => {
  const dir = await Deno.makeTempDir();
  const lockModule = new URL("../lib/train/run_lock.ts", import.meta.url).href;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `const { acquireRunLock } = await import(${JSON.stringify(lockModule)});
await acquireRunLock(${JSON.stringify(dir)});
console.log("locked");
await new Promise((r) => setTimeout(r, 60000));`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("locked")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  assert.match(out, /locked/);
  try {
    await assert.rejects(
      () => acquireRunLock(dir),
      new RegExp(`is in use by process ${child.pid} `),
    );
  } finally {
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
  }
  // The file is still there, but no process holds it: stale.
  assert.ok(Deno.statSync(join(dir, LOCK_FILE)).isFile);
  const lock = await acquireRunLock(dir);
  assert.equal(lock.stalePid, child.pid);
  await lock.release();
});

Deno.test("removeStaleTemps() removes the temporary files of interrupted writes only", async () => {
  const dir = await Deno.makeTempDir();
  const temps = [
    ".config.json.tmp-9234-7sly0q",
    ".last.safetensors.tmp-12-abc.tmp-5fe2b981",
    ".old-tree.old-77-z",
  ];
  const kept = [
    "config.json",
    "last.safetensors",
    "metrics.jsonl",
    ".hidden",
    "notes.tmp-1-a",
  ];
  for (const f of [...temps, ...kept]) {
    await Deno.writeTextFile(join(dir, f), "x");
  }
  assert.deepEqual(await removeStaleTemps(dir), [...temps].sort());
  assert.deepEqual(
    [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
    [...kept].sort(),
  );
});
