import assert from "node:assert/strict";
import { join } from "node:path";
import { crc32 } from "../lib/io/zip.ts";
import { readPth } from "../lib/weights/pth.ts";
import { readSafetensors } from "../lib/weights/safetensors.ts";
import { FIXTURES_URL } from "./_fixtures.ts";

const FIXTURES = FIXTURES_URL;

/** A stored (uncompressed) zip, as torch.save writes. */
function storedZip(members: [string, Uint8Array][]): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const [n, data] of members) {
    const name = enc.encode(n);
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint32(14, crc32(data), true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const cen = new Uint8Array(46 + name.length);
    const cv = new DataView(cen.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint32(16, crc32(data), true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    cen.set(name, 46);
    parts.push(local, data);
    central.push(cen);
    offset += local.length + data.length;
  }
  const cdSize = central.reduce((s, c) => s + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, members.length, true);
  ev.setUint16(10, members.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const all = [...parts, ...central, eocd];
  const out = new Uint8Array(all.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of all) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Emits protocol-2 pickle opcodes, the way torch.save does. */
class Pickler {
  bytes: number[] = [0x80, 2];
  raw(...b: number[]): this {
    this.bytes.push(...b);
    return this;
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.raw(0x58, ...le32(b.length), ...b);
  }
  int(n: number): this {
    return this.raw(0x4a, ...le32(n));
  }
  global(module: string, name: string): this {
    return this.raw(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  }
  mark(): this {
    return this.raw(0x28);
  }
  tuple(): this {
    return this.raw(0x74);
  }
  ints(xs: number[]): this {
    this.mark();
    for (const x of xs) this.int(x);
    return this.tuple();
  }
  /** `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())` */
  tensor(
    type: string,
    key: string,
    numel: number,
    offset: number,
    size: number[],
    stride: number[],
  ): this {
    this.global("torch._utils", "_rebuild_tensor_v2").mark();
    this.mark().str("storage").global("torch", type).str(key).str("cpu")
      .int(numel).tuple().raw(0x51);
    this.int(offset).ints(size).ints(stride).raw(0x89);
    this.global("collections", "OrderedDict").raw(0x29, 0x52);
    return this.tuple().raw(0x52);
  }
  done(): Uint8Array {
    return new Uint8Array([...this.bytes, 0x2e]);
  }
}

function le32(n: number): number[] {
  return [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("readPth() reads the torch.save fixture identically to its safetensors twin", async () => {
  const { tensors } = await readPth(
    new URL("dinov2_backbone.pth", FIXTURES).pathname,
  );
  const twin = await readSafetensors(
    new URL("dinov2_backbone.safetensors", FIXTURES).pathname,
  );
  assert.deepEqual([...tensors.keys()].sort(), [...twin.tensors.keys()].sort());
  assert.equal(tensors.size, 35);
  assert.equal([...tensors.keys()][0], "cls_token"); // file order kept
  for (const [name, t] of twin.tensors) {
    assert.deepEqual(tensors.get(name), t, name);
  }
});

Deno.test("readPth() handles half storages, offsets, strides, parameters and a nested state_dict", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "ckpt.pth");
    // Half storage "0": 1, 2, 3, 4, 5, 6 (0x3c00 = 1.0 ... 0x4600 = 6.0).
    const half = new Uint16Array([
      0x3c00,
      0x4000,
      0x4200,
      0x4400,
      0x4500,
      0x4600,
    ]);
    const longs = new BigInt64Array([7n, -8n, 9n]);
    const p = new Pickler();
    p.raw(0x7d); // {"epoch": 3, "state_dict": OrderedDict(...)}
    p.mark().str("epoch").int(3).str("state_dict");
    p.global("collections", "OrderedDict").raw(0x29, 0x52).mark();
    // Transposed 2x2 view starting at element 1: [[2,3],[4,5]]^T = [[2,4],[3,5]].
    p.str("t").tensor("HalfStorage", "0", 6, 1, [2, 2], [1, 2]);
    // A parameter wrapping a contiguous slice of the same storage: [5, 6].
    p.str("p").global("torch._utils", "_rebuild_parameter").mark();
    p.tensor("HalfStorage", "0", 6, 4, [2], [1]).raw(0x88);
    p.global("collections", "OrderedDict").raw(0x29, 0x52).tuple().raw(0x52);
    p.str("n").tensor("LongStorage", "1", 3, 0, [3], [1]);
    p.str("s").tensor("LongStorage", "1", 3, 2, [], []); // scalar 9
    p.raw(0x75).raw(0x75); // SETITEMS (inner), SETITEMS (outer)
    await Deno.writeFile(
      path,
      storedZip([
        ["ckpt/data.pkl", p.done()],
        ["ckpt/byteorder", new TextEncoder().encode("little")],
        ["ckpt/data/0", new Uint8Array(half.buffer)],
        ["ckpt/data/1", new Uint8Array(longs.buffer)],
      ]),
    );
    const { tensors } = await readPth(path);
    assert.deepEqual([...tensors.keys()], ["t", "p", "n", "s"]);
    assert.deepEqual(tensors.get("t"), {
      dtype: "F32",
      shape: [2, 2],
      data: new Float32Array([2, 4, 3, 5]),
    });
    assert.deepEqual(tensors.get("p"), {
      dtype: "F32",
      shape: [2],
      data: new Float32Array([5, 6]),
    });
    assert.deepEqual(tensors.get("n"), {
      dtype: "I64",
      shape: [3],
      data: longs,
    });
    assert.deepEqual(tensors.get("s"), {
      dtype: "I64",
      shape: [],
      data: new BigInt64Array([9n]),
    });
    // Tensors sharing a storage do not alias each other.
    assert.notEqual(
      tensors.get("n")!.data.buffer,
      tensors.get("s")!.data.buffer,
    );
  });
});

Deno.test("readPth() refuses a pickle that names a foreign global", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "evil.pth");
    // os.system("echo pwned")
    const p = new Pickler().global("os", "system").str("echo pwned").raw(
      0x85,
      0x52,
    );
    await Deno.writeFile(path, storedZip([["archive/data.pkl", p.done()]]));
    await assert.rejects(
      readPth(path),
      (e: Error) =>
        e.message ===
          `Refusing to load "${path}": the pickle names the global "os.system", which is not allowed`,
    );
  });
});

Deno.test("readPth() rejects files that are not torch.save zips", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "x.pth");
    await Deno.writeFile(path, new Uint8Array([0x80, 2, 0x8a, 0x0a]));
    await assert.rejects(
      readPth(path),
      /Cannot read ".*x\.pth": it is a legacy \(pre-1\.6\) torch\.save file/,
    );
    await Deno.writeTextFile(path, "hello");
    await assert.rejects(
      readPth(path),
      /Cannot read ".*x\.pth": it is not a torch\.save zip file/,
    );
    await Deno.writeFile(path, storedZip([["a/b.txt", new Uint8Array(1)]]));
    await assert.rejects(readPth(path), /the zip has no <dir>\/data\.pkl/);
  });
});

Deno.test("readPth() names the tensor whose storage is too small or missing", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "s.pth");
    const p = new Pickler().raw(0x7d).mark();
    p.str("w").tensor("FloatStorage", "0", 4, 2, [3], [1]).raw(0x75);
    await Deno.writeFile(
      path,
      storedZip([["a/data.pkl", p.done()], ["a/data/0", new Uint8Array(16)]]),
    );
    await assert.rejects(
      readPth(path),
      /Cannot read ".*s\.pth": tensor "w" \[3\] at offset 2 with strides \[1\] reaches past its storage of 4 elements/,
    );
    await Deno.writeFile(path, storedZip([["a/data.pkl", p.done()]]));
    await assert.rejects(
      readPth(path),
      /tensor "w" needs storage "a\/data\/0", which is missing/,
    );
    await Deno.writeFile(
      path,
      storedZip([["a/data.pkl", p.done()], ["a/data/0", new Uint8Array(12)]]),
    );
    await assert.rejects(
      readPth(path),
      /storage "a\/data\/0" has 12 bytes, expected 4 x 4/,
    );
  });
});

Deno.test("readPth() reports a truncated pickle and a dict without tensors", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "t.pth");
    const p = new Pickler().raw(0x7d).mark().str("w").done();
    await Deno.writeFile(
      path,
      storedZip([["a/data.pkl", p.subarray(0, p.length - 3)]]),
    );
    await assert.rejects(
      readPth(path),
      /Cannot read ".*t\.pth": a\/data\.pkl: pickle ends inside/,
    );

    const q = new Pickler().raw(0x7d).mark().str("epoch").int(3).raw(0x75)
      .done();
    await Deno.writeFile(path, storedZip([["a/data.pkl", q]]));
    await assert.rejects(
      readPth(path),
      /the pickle holds a dict without tensors \(keys "epoch"\)/,
    );
  });
});

Deno.test("readPth() refuses a zero-stride view larger than its storage, naming file and tensor", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "expand.pth");
    // Six stored floats viewed as [3000, 3000] with strides [0, 0]: inside the
    // storage, yet 9 million elements (the 30000 x 30000 variant is 3.6 GB).
    const p = new Pickler().raw(0x7d).mark();
    p.str("w").tensor("FloatStorage", "0", 6, 0, [3000, 3000], [0, 0]);
    p.raw(0x75);
    await Deno.writeFile(
      path,
      storedZip([["a/data.pkl", p.done()], ["a/data/0", new Uint8Array(24)]]),
    );
    await assert.rejects(
      readPth(path),
      (e: Error) =>
        e.message ===
          `Cannot read "${path}": tensor "w" [3000,3000] with strides [0,0] has 9000000 elements, more than the 6 of its storage (a view that repeats elements)`,
    );
  });
});

Deno.test("readPth() survives a very long APPENDS and deeply nested values with a one-line error", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "deep.pth");
    // [None] * 200000 in one APPENDS: a spread push() would overflow.
    const long = new Pickler().raw(0x5d).mark();
    for (let i = 0; i < 200_000; i++) long.raw(0x4e);
    await Deno.writeFile(
      path,
      storedZip([["a/data.pkl", long.raw(0x65).done()]]),
    );
    await assert.rejects(
      readPth(path),
      (e: Error) =>
        e.message ===
          `Cannot read "${path}": the pickle holds no dict of tensors`,
    );

    // {((((None,),),)...): None, "w": tensor}: a key nested 200000 deep.
    const deep = new Pickler().raw(0x7d).raw(0x4e);
    for (let i = 0; i < 200_000; i++) deep.raw(0x85);
    deep.raw(0x4e, 0x73).str("w");
    deep.tensor("FloatStorage", "0", 1, 0, [1], [1]).raw(0x73);
    await Deno.writeFile(
      path,
      storedZip([["a/data.pkl", deep.done()], ["a/data/0", new Uint8Array(4)]]),
    );
    await assert.rejects(
      readPth(path),
      (e: Error) =>
        e.message ===
          `Cannot read "${path}": the state_dict has a non-string key [[[...]]]`,
    );

    // 2000 open MARKs.
    const marks = new Pickler();
    for (let i = 0; i < 2000; i++) marks.mark();
    await Deno.writeFile(path, storedZip([["a/data.pkl", marks.done()]]));
    await assert.rejects(
      readPth(path),
      (e: Error) =>
        e.message ===
          `Cannot read "${path}": a/data.pkl: pickle opens more than 1000 MARKs at byte 1003 (nested too deeply)`,
    );
  });
});

Deno.test("readPth() passes its inflate limit to the zip reader", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "big.pth");
    const p = new Pickler().raw(0x7d).mark();
    p.str("w").tensor("FloatStorage", "0", 100, 0, [100], [1]).raw(0x75);
    await Deno.writeFile(
      path,
      storedZip([["a/data.pkl", p.done()], ["a/data/0", new Uint8Array(400)]]),
    );
    assert.equal((await readPth(path)).tensors.get("w")!.data.length, 100);
    await assert.rejects(
      readPth(path, { maxMemberBytes: 399 }),
      (e: Error) =>
        e.message ===
          `Cannot read "a/data/0" from zip "${path}": it declares 400 uncompressed bytes, more than the limit of 399 per member (option maxMemberBytes)`,
    );
  });
});
