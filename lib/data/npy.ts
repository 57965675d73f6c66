/**
 * NumPy `.npy` arrays (format versions 1.0, 2.0 and 3.0), as found inside
 * MedMNIST's `.npz` archives.
 *
 * The data is returned as a typed-array view over the given bytes whenever
 * its dtype is native (little-endian) and aligned, so a 2 GB uint8 image
 * array is never copied.
 *
 * @module
 */

/** Typed arrays an `.npy` array can be viewed as. */
export type NpyData =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/** A parsed `.npy` array. */
export interface NpyArray {
  /** NumPy's dtype string, e.g. `"|u1"`, `"<i8"`. */
  descr: string;
  shape: number[];
  /** Row-major elements (`fortran_order` arrays are rejected). */
  data: NpyData;
}

/** Options of {@linkcode parseNpy}. */
export interface ParseNpyOptions {
  /**
   * What to call the array in errors, e.g. `"x.npz:train_images"`.
   * @default "array"
   */
  name?: string;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

interface Kind {
  bytes: number;
  make: (b: ArrayBufferLike, offset: number, n: number) => NpyData;
  get: (v: DataView, at: number, little: boolean) => number | bigint;
}

const KINDS: Record<string, Kind> = {
  u1: {
    bytes: 1,
    make: (b, o, n) => new Uint8Array(b, o, n),
    get: (v, a) => v.getUint8(a),
  },
  b1: {
    bytes: 1,
    make: (b, o, n) => new Uint8Array(b, o, n),
    get: (v, a) => v.getUint8(a),
  },
  i1: {
    bytes: 1,
    make: (b, o, n) => new Int8Array(b, o, n),
    get: (v, a) => v.getInt8(a),
  },
  u2: {
    bytes: 2,
    make: (b, o, n) => new Uint16Array(b, o, n),
    get: (v, a, l) => v.getUint16(a, l),
  },
  i2: {
    bytes: 2,
    make: (b, o, n) => new Int16Array(b, o, n),
    get: (v, a, l) => v.getInt16(a, l),
  },
  u4: {
    bytes: 4,
    make: (b, o, n) => new Uint32Array(b, o, n),
    get: (v, a, l) => v.getUint32(a, l),
  },
  i4: {
    bytes: 4,
    make: (b, o, n) => new Int32Array(b, o, n),
    get: (v, a, l) => v.getInt32(a, l),
  },
  u8: {
    bytes: 8,
    make: (b, o, n) => new BigUint64Array(b, o, n),
    get: (v, a, l) => v.getBigUint64(a, l),
  },
  i8: {
    bytes: 8,
    make: (b, o, n) => new BigInt64Array(b, o, n),
    get: (v, a, l) => v.getBigInt64(a, l),
  },
  f4: {
    bytes: 4,
    make: (b, o, n) => new Float32Array(b, o, n),
    get: (v, a, l) => v.getFloat32(a, l),
  },
  f8: {
    bytes: 8,
    make: (b, o, n) => new Float64Array(b, o, n),
    get: (v, a, l) => v.getFloat64(a, l),
  },
};

/**
 * Parse the bytes of an `.npy` file.
 *
 * @throws Error naming the array for a bad magic, an unreadable header, an
 * unsupported dtype, Fortran order, or data shorter than the shape needs.
 */
export function parseNpy(
  bytes: Uint8Array,
  options: ParseNpyOptions = {},
): NpyArray {
  const where = `Cannot read .npy array "${options.name ?? "array"}"`;
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new Error(`${where}: not a .npy file (no \\x93NUMPY magic)`);
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) {
      throw new Error(`${where}: the file ends inside its header`);
    }
    headerLen = view.getUint32(8, true);
    start = 12;
  } else {
    throw new Error(
      `${where}: format version ${major}.${bytes[7]} is not 1.0, 2.0 or 3.0`,
    );
  }
  if (start + headerLen > bytes.length) {
    throw new Error(`${where}: the file ends inside its header`);
  }
  const decoder = new TextDecoder(major === 3 ? "utf-8" : "latin1");
  const header = decoder.decode(bytes.subarray(start, start + headerLen));
  const { descr, fortran, shape } = parseHeader(header, where);
  if (fortran) {
    throw new Error(
      `${where}: Fortran-ordered arrays are not supported (expected C order)`,
    );
  }
  const m = /^([<>|=])([biuf])(\d+)$/.exec(descr);
  const kind = m ? KINDS[m[2] + m[3]] : undefined;
  if (!m || !kind) {
    throw new Error(
      `${where}: dtype '${descr}' is not supported (expected a plain integer, bool or float dtype)`,
    );
  }
  const dataStart = start + headerLen;
  const have = bytes.length - dataStart;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n * kind.bytes)) {
      throw new Error(
        `${where}: shape (${
          shape.join(", ")
        }) has more elements than any file can hold (the file has ${have} data bytes)`,
      );
    }
  }
  const need = n * kind.bytes;
  if (have !== need) {
    throw new Error(
      `${where}: shape (${
        shape.join(", ")
      }) needs ${need} bytes of '${descr}' data, the file has ${have}${
        have < need ? " (truncated?)" : ""
      }`,
    );
  }
  const little = m[1] !== ">";
  const offset = bytes.byteOffset + dataStart;
  if ((little || kind.bytes === 1) && offset % kind.bytes === 0) {
    return { descr, shape, data: kind.make(bytes.buffer, offset, n) };
  }
  // Big-endian or misaligned: copy element by element.
  const data = kind.make(new ArrayBuffer(need), 0, n);
  for (let i = 0; i < n; i++) {
    (data as { [i: number]: number | bigint })[i] = kind.get(
      view,
      dataStart + i * kind.bytes,
      little,
    );
  }
  return { descr, shape, data };
}

function parseHeader(
  header: string,
  where: string,
): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) {
    const structured = /'descr'\s*:\s*\[/.test(header);
    throw new Error(
      structured
        ? `${where}: structured dtypes are not supported (expected a plain dtype)`
        : `${where}: header ${
          JSON.stringify(header.trim())
        } lacks 'descr', 'fortran_order' or 'shape'`,
    );
  }
  const dims = shape[1].split(",").map((s) => s.trim()).filter((s) => s !== "");
  const parsed = dims.map((d) => (/^\d+L?$/.test(d) ? parseInt(d, 10) : NaN));
  if (parsed.some((d) => Number.isNaN(d))) {
    throw new Error(`${where}: shape (${shape[1]}) is not a tuple of integers`);
  }
  // A 400-digit dimension parses to Infinity (and a 17-digit one loses
  // digits): only exact, safe integers can be sizes.
  const huge = dims.find((_, i) => !Number.isSafeInteger(parsed[i]));
  if (huge !== undefined) {
    throw new Error(
      `${where}: shape dimension ${
        huge.length > 24
          ? `${huge.slice(0, 24)}... (${huge.length} digits)`
          : huge
      } is not a safe integer (at most ${Number.MAX_SAFE_INTEGER})`,
    );
  }
  return { descr: descr[1], fortran: fortran[1] === "True", shape: parsed };
}

/**
 * Integer (or bool) array values as Int32, e.g. labels stored as `|u1` or
 * `<i8`; floats are rejected so that a wrong key is not silently accepted.
 *
 * @throws Error naming the array for a float dtype or a value outside int32.
 */
export function npyToInt32(
  arr: NpyArray,
  options: ParseNpyOptions = {},
): Int32Array {
  const where = `Cannot read .npy array "${options.name ?? "array"}"`;
  if (arr.data instanceof Float32Array || arr.data instanceof Float64Array) {
    throw new Error(`${where}: dtype '${arr.descr}' is not an integer dtype`);
  }
  if (arr.data instanceof Int32Array) return arr.data;
  const out = new Int32Array(arr.data.length);
  const src = arr.data;
  for (let i = 0; i < src.length; i++) {
    const v = Number(src[i]);
    if (v > 2147483647 || v < -2147483648) {
      throw new Error(
        `${where}: value ${src[i]} at index ${i} does not fit in int32`,
      );
    }
    out[i] = v;
  }
  return out;
}
