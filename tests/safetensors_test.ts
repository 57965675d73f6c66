import assert from "node:assert/strict";
import { join } from "node:path";
import {
  hostTensorFromBytes,
  openSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from "../lib/weights/safetensors.ts";
import type { HostTensor } from "../lib/weights/host_tensor.ts";
import { FIXTURES_URL } from "./_fixtures.ts";

const FIXTURES = FIXTURES_URL;
const REIN_MODEL = new URL("rein_model.safetensors", FIXTURES).pathname;

/** Builds a safetensors file by hand so tests control every byte. */
function rawFile(header: unknown, data: Uint8Array, padTo8 = true): Uint8Array {
  let json = typeof header === "string" ? header : JSON.stringify(header);
  if (padTo8) json += " ".repeat((8 - ((8 + json.length) % 8)) % 8);
  const j = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + j.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(j.length), true);
  out.set(j, 8);
  out.set(data, 8 + j.length);
  return out;
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("writeSafetensors() then readSafetensors() round-trips every dtype and the metadata", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "t.safetensors");
    const tensors: Record<string, HostTensor> = {
      "b.f32": {
        dtype: "F32",
        shape: [2, 3],
        data: new Float32Array([1, -2, 3.5, 0, 1e-7, -1e30]),
      },
      "a.i64": {
        dtype: "I64",
        shape: [3],
        data: new BigInt64Array([-1n, 2n ** 40n, 0n]),
      },
      "c.i32": { dtype: "I32", shape: [1], data: new Int32Array([-7]) },
      "d.u8": { dtype: "U8", shape: [1, 3], data: new Uint8Array([0, 1, 255]) },
      "e.scalar": { dtype: "F32", shape: [], data: new Float32Array([42]) },
    };
    await writeSafetensors(path, tensors, { metadata: { kind: "test" } });
    const { tensors: back, metadata } = await readSafetensors(path);
    assert.deepEqual(metadata, { kind: "test" });
    assert.deepEqual([...back.keys()], [
      "a.i64",
      "b.f32",
      "c.i32",
      "d.u8",
      "e.scalar",
    ]);
    for (const [name, t] of Object.entries(tensors)) {
      assert.deepEqual(back.get(name), t, name);
    }
    // No temporary file is left behind.
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "t.safetensors",
    ]);
    // The data section starts 8-byte aligned.
    const header = await readSafetensorsHeader(path);
    assert.equal(header.dataStart % 8, 0);
  });
});

Deno.test("writeSafetensors() accepts a Map and a subarray view", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "m.safetensors");
    const backing = new Float32Array([9, 1, 2, 3, 9]);
    await writeSafetensors(
      path,
      new Map([["x", {
        dtype: "F32" as const,
        shape: [3],
        data: backing.subarray(1, 4),
      }]]),
    );
    const { tensors, metadata } = await readSafetensors(path);
    assert.deepEqual(metadata, {});
    assert.deepEqual([...tensors.get("x")!.data], [1, 2, 3]);
  });
});

Deno.test("writeSafetensors() rejects data that does not fill the shape", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "bad.safetensors");
    await assert.rejects(
      writeSafetensors(path, {
        w: { dtype: "F32", shape: [2, 2], data: new Float32Array(3) },
      }),
      /Cannot write tensor "w" to ".*bad\.safetensors": 3 values do not fill shape \[2,2\]/,
    );
    await assert.rejects(
      writeSafetensors(path, {
        w: { dtype: "I64", shape: [1], data: new Float32Array(1) },
      }),
      /tensor "w".*dtype I64 with Float32Array data/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("readSafetensors() reads the reference fixture with its metadata", async () => {
  const { tensors, metadata } = await readSafetensors(REIN_MODEL);
  assert.equal(JSON.parse(metadata.variant).num_heads, 2);
  assert.equal(metadata.num_classes, "3");
  assert.deepEqual(tensors.get("pos_embed")!.shape, [1, 1370, 32]);
  assert.deepEqual(tensors.get("linear.weight")!.shape, [3, 32]);
  assert.ok(
    tensors.get("blocks.1.attn.qkv.weight")!.data instanceof Float32Array,
  );
});

Deno.test("hostTensorFromBytes() widens F16 and BF16 to F32", () => {
  // 1.0, -2.0, 65504 (max half), 2^-24 (smallest subnormal), -0, Inf
  const half = new Uint16Array([
    0x3c00,
    0xc000,
    0x7bff,
    0x0001,
    0x8000,
    0x7c00,
  ]);
  const t = hostTensorFromBytes("F16", [6], new Uint8Array(half.buffer));
  assert.equal(t.dtype, "F32");
  assert.deepEqual([...t.data], [1, -2, 65504, 2 ** -24, -0, Infinity]);
  assert.ok(Number.isNaN(
    hostTensorFromBytes(
      "F16",
      [1],
      new Uint8Array(new Uint16Array([0x7e00]).buffer),
    ).data[0] as number,
  ));
  // bf16 is the upper half of a float32: 1.0 = 0x3f80, -3.0 = 0xc040
  const bf = new Uint16Array([0x3f80, 0xc040]);
  const b = hostTensorFromBytes("BF16", [2], new Uint8Array(bf.buffer));
  assert.deepEqual(b, {
    dtype: "F32",
    shape: [2],
    data: new Float32Array([1, -3]),
  });
});

Deno.test("readSafetensors() converts F16 and BF16 tensors in a file to F32", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "h.safetensors");
    const data = new Uint8Array(
      new Uint16Array([0x3c00, 0x4000, 0x3f80, 0x4040]).buffer,
    );
    await Deno.writeFile(
      path,
      rawFile({
        h: { dtype: "F16", shape: [2], data_offsets: [0, 4] },
        b: { dtype: "BF16", shape: [2], data_offsets: [4, 8] },
      }, data),
    );
    const { tensors } = await readSafetensors(path);
    assert.deepEqual([...tensors.get("h")!.data], [1, 2]);
    assert.deepEqual([...tensors.get("b")!.data], [1, 3]);
  });
});

Deno.test("readSafetensors() handles an unaligned data section", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "u.safetensors");
    const data = new Uint8Array(new Float32Array([1.5, -2.5]).buffer);
    // Header deliberately left unpadded: 8 + 61 bytes puts data at offset 69.
    const header = { x: { dtype: "F32", shape: [2], data_offsets: [0, 8] } };
    await Deno.writeFile(path, rawFile(header, data, false));
    assert.notEqual((await readSafetensorsHeader(path)).dataStart % 4, 0);
    const { tensors } = await readSafetensors(path);
    assert.deepEqual([...tensors.get("x")!.data], [1.5, -2.5]);
  });
});

Deno.test("readSafetensors() names the tensor and dtype it cannot decode", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "f64.safetensors");
    await Deno.writeFile(
      path,
      rawFile(
        { d: { dtype: "F64", shape: [1], data_offsets: [0, 8] } },
        new Uint8Array(8),
      ),
    );
    // The header alone is fine: it is the decode that fails.
    assert.equal(
      (await readSafetensorsHeader(path)).entries.get("d")!.dtype,
      "F64",
    );
    await assert.rejects(
      readSafetensors(path),
      /Cannot read tensor "d" from ".*f64\.safetensors": dtype F64 is not supported/,
    );
  });
});

Deno.test("readSafetensorsHeader() rejects a bad header length, bad JSON and inconsistent offsets", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "x.safetensors");
    await Deno.writeFile(path, new Uint8Array(5));
    await assert.rejects(
      readSafetensorsHeader(path),
      /has 5 bytes, fewer than the 8-byte header length/,
    );

    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 1000n, true);
    await Deno.writeFile(path, huge);
    await assert.rejects(
      readSafetensorsHeader(path),
      /header length 1000 exceeds 8 bytes/,
    );

    await Deno.writeFile(path, rawFile('{"a": [1,', new Uint8Array(0), false));
    await assert.rejects(
      readSafetensorsHeader(path),
      /x\.safetensors": the header is not valid JSON/,
    );

    await Deno.writeFile(path, rawFile("[1,2]", new Uint8Array(0)));
    await assert.rejects(
      readSafetensorsHeader(path),
      /the header is not a JSON object/,
    );

    await Deno.writeFile(
      path,
      rawFile(
        { w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } },
        new Uint8Array(8),
      ),
    );
    await assert.rejects(
      readSafetensorsHeader(path),
      /tensor "w" spans 8 bytes, but F32 \[3\] needs 12/,
    );

    await Deno.writeFile(
      path,
      rawFile(
        { w: { dtype: "F32", shape: [2], data_offsets: [8, 0] } },
        new Uint8Array(8),
      ),
    );
    await assert.rejects(
      readSafetensorsHeader(path),
      /tensor "w" has data_offsets \[8,0\]/,
    );

    await Deno.writeFile(
      path,
      rawFile(
        { w: { dtype: "Q4", shape: [2], data_offsets: [0, 2] } },
        new Uint8Array(2),
      ),
    );
    await assert.rejects(
      readSafetensorsHeader(path),
      /tensor "w" has dtype "Q4", expected one of/,
    );

    await Deno.writeFile(
      path,
      rawFile({ __metadata__: { n: 3 } }, new Uint8Array(0)),
    );
    await assert.rejects(
      readSafetensorsHeader(path),
      /"__metadata__" key "n" is number, expected a string/,
    );
  });
});

Deno.test("readSafetensors() names the file and the tensor of a truncated file", async () => {
  await withTemp(async (dir) => {
    const full = await Deno.readFile(REIN_MODEL);
    const path = join(dir, "cut.safetensors");
    await Deno.writeFile(path, full.subarray(0, full.length - 100));
    const header = await readSafetensorsHeader(REIN_MODEL);
    const last = [...header.entries].sort((a, b) =>
      b[1].dataOffsets[1] - a[1].dataOffsets[1]
    )[0][0];
    await assert.rejects(
      readSafetensors(path),
      (e: Error) =>
        e.message.includes(`"${path}"`) &&
        e.message.includes(`tensor "${last}"`) &&
        e.message.includes("truncated"),
    );
  });
});

Deno.test("openSafetensors() reads one tensor at a time and reports unknown names", async () => {
  const file = await openSafetensors(REIN_MODEL);
  try {
    assert.ok(file.names().includes("norm.weight"));
    const t = await file.read("norm.weight");
    assert.deepEqual(t.shape, [32]);
    const all = await readSafetensors(REIN_MODEL);
    assert.deepEqual(t, all.tensors.get("norm.weight"));
    await assert.rejects(
      file.read("nope"),
      /Cannot read tensor "nope" from ".*rein_model\.safetensors": no such tensor/,
    );
  } finally {
    file.close();
  }
});

Deno.test("readSafetensorsHeader() refuses overlapping, gapped, duplicate and untiled tensors, naming the file", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "h.safetensors");
    const f32 = (begin: number, n = 2) => ({
      dtype: "F32",
      shape: [n],
      data_offsets: [begin, begin + 4 * n],
    });
    const refuses = async (
      header: string | object,
      bytes: number,
      msg: string,
    ) => {
      await Deno.writeFile(path, rawFile(header, new Uint8Array(bytes)));
      await assert.rejects(
        readSafetensorsHeader(path),
        (e: Error) =>
          e.message === `Cannot read safetensors file "${path}": ${msg}`,
      );
    };
    // Two names for the same bytes, and a partial overlap.
    await refuses(
      { a: f32(0), b: f32(0) },
      8,
      'tensor "b" (data bytes 0-8) overlaps tensor "a" (ending at 8)',
    );
    await refuses(
      { a: f32(0), b: f32(4) },
      12,
      'tensor "b" (data bytes 4-12) overlaps tensor "a" (ending at 8)',
    );
    // Bytes no tensor owns: a gap and a tail.
    await refuses(
      { a: f32(0), b: f32(12) },
      20,
      'data bytes 8-12 before tensor "b" belong to no tensor',
    );
    await refuses(
      { a: f32(4) },
      12,
      'data bytes 0-4 before tensor "a" belong to no tensor',
    );
    await refuses(
      { a: f32(0) },
      16,
      "the data section has 16 bytes, but its tensors cover only 8",
    );
    // The same name twice (JSON.parse would silently keep the last).
    const entry = JSON.stringify(f32(0));
    await refuses(
      `{"a": ${entry}, "a": ${entry}}`,
      8,
      'tensor "a" appears twice in the header',
    );
    // A key inside an entry or the metadata is no duplicate.
    await Deno.writeFile(
      path,
      rawFile(
        `{"__metadata__": {"a": "x\\"a"}, "a": ${entry}, "b": ${
          JSON.stringify(f32(8, 0))
        }}`,
        new Uint8Array(8),
      ),
    );
    const header = await readSafetensorsHeader(path);
    assert.deepEqual([...header.entries.keys()], ["a", "b"]);
  });
});

Deno.test("readSafetensorsHeader() refuses a header longer than the reference's 100 MB bound", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "long.safetensors");
    // A sparse 128 MB file whose header length claims 100,000,001 bytes.
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, 100_000_001n, true);
    await Deno.writeFile(path, prefix);
    await Deno.truncate(path, 128 << 20);
    await assert.rejects(
      readSafetensorsHeader(path),
      (e: Error) =>
        e.message ===
          `Cannot read safetensors file "${path}": header length 100000001 exceeds 100000000 bytes (not a safetensors file, or truncated)`,
    );
  });
});
