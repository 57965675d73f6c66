import assert from "node:assert/strict";
import { join } from "node:path";
import { deflateRawSync } from "node:zlib";
import { crc32, openZip } from "../lib/io/zip.ts";
import { FIXTURES_URL } from "./_fixtures.ts";

const FIXTURES = FIXTURES_URL;

interface Member {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
  /** Uncompressed size to declare instead of the real one (zip64 only). */
  declaredSize?: number;
}

/**
 * Writes a zip by hand. With `zip64`, every size and offset goes through the
 * zip64 extra field and the zip64 end record, as large `.npz` files need.
 */
function buildZip(members: Member[], zip64 = false): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  const enc = new TextEncoder();
  for (const m of members) {
    const name = enc.encode(m.name);
    const body = m.deflate ? new Uint8Array(deflateRawSync(m.data)) : m.data;
    const crc = crc32(m.data);
    const extra = new Uint8Array(zip64 ? 4 + 24 : 0);
    if (zip64) {
      const ev = new DataView(extra.buffer);
      ev.setUint16(0, 1, true);
      ev.setUint16(2, 24, true);
      ev.setBigUint64(4, BigInt(m.declaredSize ?? m.data.length), true);
      ev.setBigUint64(12, BigInt(body.length), true);
      ev.setBigUint64(20, BigInt(offset), true);
    }
    const local = new Uint8Array(30 + name.length + (zip64 ? 20 : 0));
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, zip64 ? 45 : 20, true);
    lv.setUint16(8, m.deflate ? 8 : 0, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, zip64 ? 0xffffffff : body.length, true);
    lv.setUint32(22, zip64 ? 0xffffffff : m.data.length, true);
    lv.setUint16(26, name.length, true);
    lv.setUint16(28, zip64 ? 20 : 0, true);
    local.set(name, 30);
    if (zip64) local.set(extra.subarray(0, 20), 30 + name.length);
    const cen = new Uint8Array(46 + name.length + extra.length);
    const cv = new DataView(cen.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 45, true);
    cv.setUint16(6, zip64 ? 45 : 20, true);
    cv.setUint16(10, m.deflate ? 8 : 0, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, zip64 ? 0xffffffff : body.length, true);
    cv.setUint32(24, zip64 ? 0xffffffff : m.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint16(30, extra.length, true);
    cv.setUint32(42, zip64 ? 0xffffffff : offset, true);
    cen.set(name, 46);
    cen.set(extra, 46 + name.length);
    parts.push(local, body);
    central.push(cen);
    offset += local.length + body.length;
  }
  const cdOffset = offset;
  const cdSize = central.reduce((s, c) => s + c.length, 0);
  parts.push(...central);
  if (zip64) {
    const rec = new Uint8Array(56);
    const rv = new DataView(rec.buffer);
    rv.setUint32(0, 0x06064b50, true);
    rv.setBigUint64(4, 44n, true);
    rv.setUint16(12, 45, true);
    rv.setUint16(14, 45, true);
    rv.setBigUint64(24, BigInt(members.length), true);
    rv.setBigUint64(32, BigInt(members.length), true);
    rv.setBigUint64(40, BigInt(cdSize), true);
    rv.setBigUint64(48, BigInt(cdOffset), true);
    const loc = new Uint8Array(20);
    const locv = new DataView(loc.buffer);
    locv.setUint32(0, 0x07064b50, true);
    locv.setBigUint64(8, BigInt(cdOffset + cdSize), true);
    locv.setUint32(16, 1, true);
    parts.push(rec, loc);
  }
  const eocd = new Uint8Array(22);
  const e = new DataView(eocd.buffer);
  e.setUint32(0, 0x06054b50, true);
  e.setUint16(8, zip64 ? 0xffff : members.length, true);
  e.setUint16(10, zip64 ? 0xffff : members.length, true);
  e.setUint32(12, zip64 ? 0xffffffff : cdSize, true);
  e.setUint32(16, zip64 ? 0xffffffff : cdOffset, true);
  parts.push(eocd);
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
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

/** Compressible but not trivial bytes. */
function sample(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + (i >> 9)) & 0xff;
  return out;
}

Deno.test("crc32() matches the standard check value", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
});

Deno.test("openZip() reads stored and deflated members", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "a.zip");
    const big = sample(3_000_000); // several inflate chunks
    await Deno.writeFile(
      path,
      buildZip([
        { name: "s.txt", data: new TextEncoder().encode("stored") },
        { name: "dir/d.bin", data: big, deflate: true },
        { name: "empty", data: new Uint8Array(0), deflate: true },
      ]),
    );
    const zip = await openZip(path);
    assert.deepEqual(zip.names(), ["s.txt", "dir/d.bin", "empty"]);
    assert.equal(new TextDecoder().decode(await zip.read("s.txt")), "stored");
    const d = await zip.read("dir/d.bin");
    assert.equal(d.length, big.length);
    assert.deepEqual(d, big);
    assert.equal(zip.entry("dir/d.bin")!.method, 8);
    assert.ok(zip.entry("dir/d.bin")!.compressedSize < big.length);
    assert.equal((await zip.read("empty")).length, 0);
  });
});

Deno.test("openZip() reads zip64 sizes, offsets and end records", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "z64.npz");
    const a = sample(5000);
    const b = sample(777).reverse();
    await Deno.writeFile(
      path,
      buildZip([
        { name: "a.npy", data: a, deflate: true },
        { name: "b.npy", data: b },
      ], true),
    );
    const zip = await openZip(path);
    assert.deepEqual(zip.names(), ["a.npy", "b.npy"]);
    assert.equal(zip.entry("a.npy")!.size, 5000);
    assert.ok(zip.entry("b.npy")!.localHeaderOffset > 0);
    assert.deepEqual(await zip.read("a.npy"), a);
    assert.deepEqual(await zip.read("b.npy"), b);
  });
});

Deno.test("openZip() reads the torch.save and numpy fixtures", async () => {
  const pth = await openZip(new URL("dinov2_backbone.pth", FIXTURES).pathname);
  assert.ok(pth.names().includes("dinov2_backbone/data.pkl"));
  const pkl = await pth.read("dinov2_backbone/data.pkl");
  assert.deepEqual([pkl[0], pkl[1], pkl[pkl.length - 1]], [0x80, 2, 0x2e]);

  const npz = await openZip(
    new URL("bloodmnist_tiny.npz", FIXTURES).pathname,
  );
  assert.ok(npz.names().includes("train_images.npy"));
  const npy = await npz.read("train_images.npy");
  assert.equal(npz.entry("train_images.npy")!.method, 8);
  assert.equal(new TextDecoder().decode(npy.subarray(1, 6)), "NUMPY");
});

Deno.test("openZip() rejects a file that is not a zip", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "no.zip");
    await Deno.writeTextFile(path, "this is plain text, not an archive");
    await assert.rejects(
      openZip(path),
      /Cannot open zip ".*no\.zip": no end-of-central-directory record/,
    );
    await Deno.writeFile(path, new Uint8Array(0));
    await assert.rejects(openZip(path), /no end-of-central-directory record/);
  });
});

Deno.test("openZip() names the member that is missing, truncated or corrupt", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "t.zip");
    const data = sample(4000);
    const bytes = buildZip([
      { name: "x.bin", data },
      { name: "y.bin", data, deflate: true },
    ]);
    await Deno.writeFile(path, bytes);
    const zip = await openZip(path);
    await assert.rejects(
      zip.read("z.bin"),
      /Cannot read "z\.bin" from zip ".*t\.zip": no such member \(it has 2: "x\.bin", "y\.bin"\)/,
    );

    // Flip one stored byte: the CRC catches it.
    const bad = bytes.slice();
    bad[30 + 5 + 100] ^= 0xff;
    await Deno.writeFile(path, bad);
    await assert.rejects(
      (await openZip(path)).read("x.bin"),
      /Cannot read "x\.bin" from zip ".*": CRC-32 mismatch/,
    );
    // ...unless the check is turned off.
    const unchecked = await (await openZip(path, { verifyCrc: false })).read(
      "x.bin",
    );
    assert.equal(unchecked.length, 4000);

    // Cutting the file loses the end record.
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 200));
    await assert.rejects(openZip(path), /no end-of-central-directory record/);
  });
});

Deno.test("openZip() reports a member whose data runs past the end of the file", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "short.zip");
    const bytes = buildZip([{ name: "x.bin", data: sample(100) }]);
    // Claim a larger compressed and uncompressed size in the central entry.
    const v = new DataView(bytes.buffer);
    const cen = 30 + 5 + 100;
    v.setUint32(cen + 20, 1_000_000, true);
    v.setUint32(cen + 24, 1_000_000, true);
    await Deno.writeFile(path, bytes);
    await assert.rejects(
      (await openZip(path)).read("x.bin"),
      /Cannot read "x\.bin" from zip ".*short\.zip": its 1000000 bytes would end at byte 1000035, but the file has \d+ \(truncated file\?\)/,
    );
  });
});

Deno.test("openZip() reports deflated data that is corrupt", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "c.zip");
    const bytes = buildZip([{ name: "y", data: sample(2000), deflate: true }]);
    // Mangle the deflate stream's first byte to an invalid block type.
    bytes[30 + 1] = 0xff;
    await Deno.writeFile(path, bytes);
    await assert.rejects(
      (await openZip(path)).read("y"),
      /Cannot read "y" from zip ".*c\.zip": (the deflated data is corrupt|it inflates|CRC-32 mismatch)/,
    );
  });
});

Deno.test("openZip() refuses a member declaring more than the per-member limit before allocating", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "bomb.npz");
    // 5000 deflated bytes that claim to be 32 TiB.
    await Deno.writeFile(
      path,
      buildZip([{
        name: "x.npy",
        data: sample(5000),
        deflate: true,
        declaredSize: 2 ** 45,
      }], true),
    );
    const at = `Cannot read "x.npy" from zip "${path}"`;
    await assert.rejects(
      (await openZip(path)).read("x.npy"),
      (e: Error) =>
        e.message ===
          `${at}: it declares 35184372088832 uncompressed bytes, more than the limit of 4294967296 per member (the default; CUFIT_ZIP_MAX_MEMBER_BYTES raises it)`,
    );
    // Raised past what memory holds: the allocation fails with its name.
    await assert.rejects(
      (await openZip(path, { maxMemberBytes: 2 ** 46, maxTotalBytes: 2 ** 46 }))
        .read("x.npy"),
      (e: Error) =>
        e.message.startsWith(
          `${at}: cannot allocate its 35184372088832 uncompressed bytes (`,
        ),
    );
  });
});

Deno.test("openZip() enforces the per-member and total limits from options or the environment", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "two.npz");
    await Deno.writeFile(
      path,
      buildZip([
        { name: "a.npy", data: sample(5000), deflate: true },
        { name: "b.npy", data: sample(5000) },
      ]),
    );
    const at = (m: string) => `Cannot read "${m}" from zip "${path}"`;
    await assert.rejects(
      (await openZip(path, { maxMemberBytes: 4999 })).read("a.npy"),
      (e: Error) =>
        e.message ===
          `${
            at("a.npy")
          }: it declares 5000 uncompressed bytes, more than the limit of 4999 per member (option maxMemberBytes)`,
    );
    const zip = await openZip(path, { maxTotalBytes: 9999 });
    assert.equal((await zip.read("a.npy")).length, 5000);
    await assert.rejects(
      zip.read("b.npy"),
      (e: Error) =>
        e.message ===
          `${
            at("b.npy")
          }: its 5000 bytes would bring this archive's total to 10000, more than the limit of 9999 (option maxTotalBytes)`,
    );

    Deno.env.set("CUFIT_ZIP_MAX_MEMBER_BYTES", "4000");
    try {
      await assert.rejects(
        (await openZip(path)).read("b.npy"),
        /limit of 4000 per member \(set by CUFIT_ZIP_MAX_MEMBER_BYTES\)/,
      );
      Deno.env.set("CUFIT_ZIP_MAX_MEMBER_BYTES", "4k");
      await assert.rejects(
        openZip(path),
        /Environment variable CUFIT_ZIP_MAX_MEMBER_BYTES is "4k": expected a positive whole number/,
      );
    } finally {
      Deno.env.delete("CUFIT_ZIP_MAX_MEMBER_BYTES");
    }
    assert.equal((await (await openZip(path)).read("b.npy")).length, 5000);
    await assert.rejects(
      openZip(path, { maxTotalBytes: 0 }),
      /Option maxTotalBytes is 0: expected a positive whole number/,
    );
  });
});
