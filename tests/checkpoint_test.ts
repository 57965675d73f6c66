import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkpointPaths,
  type CheckpointState,
  hasCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
} from "../lib/train/checkpoint.ts";
import { f32, type HostTensor } from "../lib/weights/host_tensor.ts";
import {
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from "../lib/weights/safetensors.ts";
import { sha256File } from "../lib/io/digest.ts";

function state(epoch: number, fill: number): CheckpointState {
  const params = new Map<string, HostTensor>([
    ["linear.weight", f32([2, 3], new Float32Array(6).fill(fill))],
    ["reins.scale", f32([], Float32Array.of(1e-3 * fill))],
  ]);
  const moments = (v: number) =>
    new Map<string, HostTensor>(
      [...params].map((
        [k, t],
      ) => [k, f32(t.shape, new Float32Array(t.data.length).fill(v))]),
    );
  return {
    params,
    optimizer: {
      model1: {
        step: 10 * epoch,
        lr: 1e-3,
        betas: [0.9, 0.999],
        m: moments(0.1),
        v: moments(0.01),
      },
    },
    epoch,
    rngState: { mt: Uint32Array.from([1, 2, 0xffffffff]), pos: 3, gauss: null },
    metrics: { testAcc: 0.5 + epoch / 100, trainLoss: NaN },
  };
}

async function files(dir: string): Promise<string[]> {
  const out = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("saveCheckpoint() and loadCheckpoint() round-trip params, Adam moments and state", async () => {
  const dir = await Deno.makeTempDir();
  const s = state(4, 2);
  await saveCheckpoint(dir, "best", s);
  assert.deepEqual(await files(dir), ["best.json", "best.safetensors"]);
  assert.equal(await hasCheckpoint(dir, "best"), true);
  assert.equal(await hasCheckpoint(dir, "last"), false);

  const back = await loadCheckpoint(dir, "best");
  assert.equal(back.epoch, 4);
  assert.deepEqual(back.params, s.params);
  assert.deepEqual(back.optimizer, s.optimizer);
  assert.deepEqual(back.rngState, s.rngState);
  assert.ok(Number.isNaN((back.metrics as { trainLoss: number }).trainLoss));
  assert.equal((back.metrics as { testAcc: number }).testAcc, 0.54);

  // Moments are tensors in the safetensors file under prefixed names.
  const header = await readSafetensorsHeader(join(dir, "best.safetensors"));
  const names = [...header.entries.keys()].sort();
  assert.deepEqual(names, [
    "param.linear.weight",
    "param.reins.scale",
    "state.optimizer.model1.m.linear.weight",
    "state.optimizer.model1.m.reins.scale",
    "state.optimizer.model1.v.linear.weight",
    "state.optimizer.model1.v.reins.scale",
  ]);
  const json = JSON.parse(await Deno.readTextFile(join(dir, "best.json")));
  assert.equal(json.epoch, 4);
  assert.match(json.safetensors.sha256, /^[0-9a-f]{64}$/);
});

Deno.test("saveCheckpoint() keeps the previous checkpoint when the tensor write fails", async () => {
  const dir = await Deno.makeTempDir();
  await saveCheckpoint(dir, "last", state(1, 1));
  const before = await Deno.readFile(join(dir, "last.safetensors"));
  // A writer that dies halfway, as on a full disk.
  const failing = async (path: string) => {
    await Deno.writeFile(path, new Uint8Array(100));
    throw new Error("No space left on device (simulated)");
  };
  await assert.rejects(
    () =>
      saveCheckpoint(dir, "last", state(2, 7), { writeSafetensors: failing }),
    /No space left on device \(simulated\)/,
  );
  assert.deepEqual(await files(dir), ["last.json", "last.safetensors"]);
  assert.deepEqual(await Deno.readFile(join(dir, "last.safetensors")), before);
  const back = await loadCheckpoint(dir, "last");
  assert.equal(back.epoch, 1);
  assert.deepEqual(back.params, state(1, 1).params);
});

Deno.test("saveCheckpoint() refuses unstorable state before writing anything", async () => {
  const dir = await Deno.makeTempDir();
  await saveCheckpoint(dir, "best", state(1, 1));
  await assert.rejects(
    () =>
      saveCheckpoint(dir, "best", {
        ...state(2, 2),
        rngState: { seed: 1n } as never,
      }),
    /Cannot save checkpoint value "rngState.seed": a bigint is not storable/,
  );
  await assert.rejects(
    () =>
      saveCheckpoint(dir, "best", {
        ...state(2, 2),
        params: new Map([["w", {
          dtype: "F32",
          shape: [3],
          data: new Float32Array(2),
        }]]),
      }),
    /Cannot save parameter "w": 2 values do not fill shape \[3\]/,
  );
  await assert.rejects(
    () =>
      saveCheckpoint(dir, "best", {
        ...state(2, 2),
        metrics: { when: new Date() } as never,
      }),
    /Cannot save checkpoint value "metrics.when": a Date is not storable/,
  );
  assert.deepEqual(await files(dir), ["best.json", "best.safetensors"]);
  assert.equal((await loadCheckpoint(dir, "best")).epoch, 1);
});

Deno.test("loadCheckpoint() reads the new checkpoint after a kill between its two renames", async () => {
  const dir = await Deno.makeTempDir();
  await saveCheckpoint(dir, "last", state(1, 1));
  const oldJson = await Deno.readFile(join(dir, "last.json"));
  await saveCheckpoint(dir, "last", state(2, 5));
  // The tensor file was renamed in, the JSON rename never happened.
  await Deno.writeFile(join(dir, "last.json"), oldJson);
  const back = await loadCheckpoint(dir, "last");
  assert.equal(back.epoch, 2);
  assert.deepEqual(back.params, state(2, 5).params);
  assert.deepEqual(back.optimizer, state(2, 5).optimizer);
  assert.deepEqual(back.rngState, state(2, 5).rngState);
});

Deno.test("loadCheckpoint() keeps every part of the state in the tensor file, typed arrays included", async () => {
  const dir = await Deno.makeTempDir();
  const s = {
    ...state(3, 2),
    metrics: { epoch: 3, clean: Uint8Array.from([0b1011, 0xff, 0]) },
  };
  await saveCheckpoint(dir, "last", s);
  await Deno.remove(join(dir, "last.json"));
  const back = await loadCheckpoint(dir, "last");
  assert.deepEqual(back.metrics, s.metrics);
  assert.equal(back.epoch, 3);
});

Deno.test("loadCheckpoint() checks the digest of a checkpoint whose state is only in its JSON", async () => {
  const dir = await Deno.makeTempDir();
  await saveCheckpoint(dir, "best", state(1, 1));
  const json = JSON.parse(await Deno.readTextFile(join(dir, "best.json")));
  // A checkpoint as written before the state moved into the tensor file.
  const { tensors } = await readSafetensors(join(dir, "best.safetensors"));
  await writeSafetensors(join(dir, "best.safetensors"), tensors);
  await Deno.writeTextFile(
    join(dir, "best.json"),
    JSON.stringify({
      ...json,
      safetensors: {
        ...json.safetensors,
        sha256: await sha256File(join(dir, "best.safetensors")),
      },
    }),
  );
  assert.equal((await loadCheckpoint(dir, "best")).epoch, 1);
  await Deno.writeTextFile(
    join(dir, "best.json"),
    JSON.stringify({ ...json, safetensors: { sha256: "0".repeat(64) } }),
  );
  await assert.rejects(
    () => loadCheckpoint(dir, "best"),
    /Checkpoint ".*best\.safetensors" does not match ".*best\.json": recorded sha256 0{64}, file has [0-9a-f]{64}/,
  );
});

Deno.test("saveCheckpoint() on a full disk names the checkpoint and keeps the old one", async () => {
  const dir = await Deno.makeTempDir();
  await saveCheckpoint(dir, "last", state(1, 1));
  // A real ENOSPC: the write goes to /dev/full.
  const full = async () => {
    using f = await Deno.open("/dev/full", { write: true });
    await f.write(new Uint8Array(64));
  };
  await assert.rejects(
    () => saveCheckpoint(dir, "last", state(2, 2), { writeSafetensors: full }),
    (e: Error) => {
      assert.match(
        e.message,
        new RegExp(
          `^Cannot write "${join(dir, "last.safetensors")}": No space left`,
        ),
      );
      return true;
    },
  );
  assert.deepEqual(await files(dir), ["last.json", "last.safetensors"]);
  assert.equal((await loadCheckpoint(dir, "last")).epoch, 1);
});

Deno.test("loadCheckpoint() names a missing checkpoint and a bad tag", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(
    () => loadCheckpoint(dir, "last"),
    (e) =>
      e instanceof Deno.errors.NotFound &&
      /No "last" checkpoint in ".*": ".*last\.safetensors" not found/.test(
        e.message,
      ),
  );
  await assert.rejects(
    () => loadCheckpoint(dir, "final" as never),
    /Checkpoint tag must be one of "best", "last", got "final"/,
  );
  await saveCheckpoint(dir, "last", state(0, 0));
  await Deno.remove(checkpointPaths(dir, "last").safetensors);
  await assert.rejects(
    () => loadCheckpoint(dir, "last"),
    /Checkpoint ".*last\.json" has no tensor file/,
  );
});

Deno.test("saveCheckpoint() replaces an older checkpoint of the same tag", async () => {
  const dir = await Deno.makeTempDir();
  await saveCheckpoint(dir, "last", state(1, 1));
  await saveCheckpoint(dir, "last", state(2, 5));
  const back = await loadCheckpoint(dir, "last");
  assert.equal(back.epoch, 2);
  assert.deepEqual(back.params, state(2, 5).params);
  assert.deepEqual(await files(dir), ["last.json", "last.safetensors"]);
});
