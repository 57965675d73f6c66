import assert from "node:assert/strict";
import { npyToInt32, parseNpy } from "../lib/data/npy.ts";

/** The bytes of an `.npy` file with the given header dict and raw data. */
function npy(header: string, data: Uint8Array, version = 1): Uint8Array {
  const prefix = version === 1 ? 10 : 12;
  let text = header;
  while ((prefix + text.length + 1) % 64 !== 0) text += " ";
  text += "\n";
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(prefix + h.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, h.length, true);
  else view.setUint32(8, h.length, true);
  out.set(h, prefix);
  out.set(data, prefix + h.length);
  return out;
}

const dict = (descr: string, shape: string, fortran = "False") =>
  `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;

Deno.test("parseNpy() views uint8 data without copying", () => {
  const bytes = npy(
    dict("|u1", "(2, 3, 2)"),
    Uint8Array.from({ length: 12 }, (_, i) => i * 2),
  );
  const a = parseNpy(bytes);
  assert.equal(a.descr, "|u1");
  assert.deepEqual(a.shape, [2, 3, 2]);
  assert.ok(a.data instanceof Uint8Array);
  assert.equal(a.data.buffer, bytes.buffer);
  assert.deepEqual(Array.from(a.data), [
    0,
    2,
    4,
    6,
    8,
    10,
    12,
    14,
    16,
    18,
    20,
    22,
  ]);
});

Deno.test("parseNpy() reads format versions 2.0 and 3.0", () => {
  for (const v of [2, 3]) {
    const a = parseNpy(npy(dict("|u1", "(3,)"), Uint8Array.from([7, 8, 9]), v));
    assert.deepEqual([a.shape, Array.from(a.data as Uint8Array)], [[3], [
      7,
      8,
      9,
    ]]);
  }
});

Deno.test("parseNpy() reads little- and big-endian integers and floats", () => {
  const i64 = new BigInt64Array([5n, -2n]);
  const a = parseNpy(npy(dict("<i8", "(2, 1)"), new Uint8Array(i64.buffer)));
  assert.deepEqual(Array.from(a.data as BigInt64Array), [5n, -2n]);
  assert.deepEqual(Array.from(npyToInt32(a)), [5, -2]);
  const be = parseNpy(
    npy(
      dict(">i4", "(2,)"),
      Uint8Array.from([0, 0, 1, 2, 0xff, 0xff, 0xff, 0xfe]),
    ),
  );
  assert.deepEqual(Array.from(be.data as Int32Array), [258, -2]);
  const f = parseNpy(
    npy(dict("<f4", "()"), new Uint8Array(Float32Array.of(1.5).buffer)),
  );
  assert.deepEqual(f.shape, []);
  assert.deepEqual(Array.from(f.data as Float32Array), [1.5]);
});

Deno.test("parseNpy() copies misaligned multi-byte data", () => {
  const bytes = npy(dict("<u2", "(2,)"), Uint8Array.from([1, 0, 0, 1]));
  const shifted = new Uint8Array(bytes.length + 1).subarray(1);
  shifted.set(bytes);
  assert.deepEqual(Array.from(parseNpy(shifted).data as Uint16Array), [1, 256]);
});

Deno.test("parseNpy() rejects malformed arrays, naming them", () => {
  const name = { name: "x.npz:train_images" };
  assert.throws(
    () => parseNpy(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), name),
    /"x\.npz:train_images": not a \.npy file/,
  );
  assert.throws(
    () => parseNpy(npy(dict("|u1", "(2, 2)", "True"), new Uint8Array(4)), name),
    /Fortran-ordered arrays are not supported/,
  );
  assert.throws(
    () => parseNpy(npy(dict("<c8", "(1,)"), new Uint8Array(8)), name),
    /dtype '<c8' is not supported/,
  );
  assert.throws(
    () => parseNpy(npy(dict("|u1", "(4, 4)"), new Uint8Array(15)), name),
    /shape \(4, 4\) needs 16 bytes of '\|u1' data, the file has 15/,
  );
  assert.throws(
    () =>
      parseNpy(
        npy(
          "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }",
          new Uint8Array(4),
        ),
        name,
      ),
    /structured dtypes are not supported/,
  );
  const v9 = npy(dict("|u1", "(1,)"), new Uint8Array(1));
  v9[6] = 9;
  assert.throws(
    () => parseNpy(v9, name),
    /format version 9\.0 is not 1\.0, 2\.0 or 3\.0/,
  );
});

Deno.test("parseNpy() refuses shapes that are not safe integers or do not match the data", () => {
  const name = { name: "x.npz:train_images" };
  const where = 'Cannot read .npy array "x.npz:train_images"';
  const refuses = (shape: string, data: number, msg: string) =>
    assert.throws(
      () => parseNpy(npy(dict("|u1", shape), new Uint8Array(data)), name),
      (e: Error) => e.message === `${where}: ${msg}`,
    );
  // 400 digits parse to Infinity; (0, Infinity) would have passed as empty.
  const big = "9".repeat(400);
  refuses(
    `(0, ${big})`,
    0,
    "shape dimension 999999999999999999999999... (400 digits) is not a safe integer (at most 9007199254740991)",
  );
  refuses(
    "(18014398509481985,)",
    0,
    "shape dimension 18014398509481985 is not a safe integer (at most 9007199254740991)",
  );
  // Each dimension safe, the product not.
  refuses(
    "(4294967296, 4294967296)",
    4,
    "shape (4294967296, 4294967296) has more elements than any file can hold (the file has 4 data bytes)",
  );
  // Data beyond what the shape needs is refused too.
  refuses(
    "(2, 2)",
    5,
    "shape (2, 2) needs 4 bytes of '|u1' data, the file has 5",
  );
});

Deno.test("npyToInt32() converts any integer dtype and rejects floats", () => {
  assert.deepEqual(
    Array.from(
      npyToInt32(parseNpy(npy(dict("|u1", "(2,)"), Uint8Array.from([3, 250])))),
    ),
    [3, 250],
  );
  const f = parseNpy(npy(dict("<f8", "(1,)"), new Uint8Array(8)));
  assert.throws(
    () => npyToInt32(f, { name: "l" }),
    /"l": dtype '<f8' is not an integer dtype/,
  );
  const big = parseNpy(
    npy(
      dict("<i8", "(1,)"),
      new Uint8Array(BigInt64Array.of(2n ** 40n).buffer),
    ),
  );
  assert.throws(
    () => npyToInt32(big),
    /value 1099511627776 at index 0 does not fit in int32/,
  );
});
