/**
 * Reading and writing the safetensors format: an 8-byte little-endian header
 * length, a JSON header (`name -> {dtype, shape, data_offsets}` plus an
 * optional `__metadata__` map of strings), then the raw little-endian bytes.
 *
 * Reads go tensor by tensor through a file handle, so a ViT-L file (~1.2 GB)
 * never sits in memory twice.
 *
 * @module
 */
import type { HostTensor } from "./host_tensor.ts";
import { sizeOf } from "./host_tensor.ts";
import { readAt } from "../io/read_at.ts";

/** One tensor's entry in a safetensors header. */
export interface SafetensorsEntry {
  /** Element type as spelled in the file (`F32`, `F16`, `BF16`, `I64`, ...). */
  dtype: string;
  shape: number[];
  /** Byte offsets `[begin, end)` relative to the start of the data section. */
  dataOffsets: [number, number];
}

/** The parsed header of a safetensors file. */
export interface SafetensorsHeader {
  /** Tensor entries in file order. */
  entries: Map<string, SafetensorsEntry>;
  /** The `__metadata__` map (empty when absent). */
  metadata: Record<string, string>;
  /** Absolute byte offset where the data section starts. */
  dataStart: number;
  /** Size of the file in bytes. */
  fileSize: number;
}

/** A safetensors file opened for reading one tensor at a time. */
export interface SafetensorsFile {
  readonly path: string;
  readonly header: SafetensorsHeader;
  /** Tensor names in file order. */
  names(): string[];
  /** Reads one tensor from disk (F16 and BF16 become F32). */
  read(name: string): Promise<HostTensor>;
  /** Releases the file handle. */
  close(): void;
}

/** Bytes per element of each dtype this module understands. */
const DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

/** Dtypes that decode to a {@linkcode HostTensor}. */
const READABLE = ["F32", "F16", "BF16", "I64", "I32", "U8"];

/** The safetensors reference implementation refuses headers above 100 MB. */
const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) {
    throw new Error(
      "Cannot use safetensors on this machine: it is big-endian, and tensors are stored little-endian",
    );
  }
}

function parseHeader(
  path: string,
  json: Uint8Array,
  dataStart: number,
  fileSize: number,
): SafetensorsHeader {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(json));
  } catch (e) {
    throw new Error(
      `Cannot read safetensors file "${path}": the header is not valid JSON (${
        (e as Error).message
      })`,
    );
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(
      `Cannot read safetensors file "${path}": the header is not a JSON object`,
    );
  }
  const dataSize = fileSize - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = parseMetadata(path, value);
      continue;
    }
    const where = `Cannot read safetensors file "${path}": tensor "${name}"`;
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new Error(`${where} has a header entry that is not an object`);
    }
    const { dtype, shape, data_offsets: offsets } = value as Record<
      string,
      unknown
    >;
    if (typeof dtype !== "string" || !(dtype in DTYPE_BYTES)) {
      throw new Error(
        `${where} has dtype ${JSON.stringify(dtype)}, expected one of ${
          Object.keys(DTYPE_BYTES).join(", ")
        }`,
      );
    }
    if (
      !Array.isArray(shape) ||
      !shape.every((d) => Number.isSafeInteger(d) && d >= 0)
    ) {
      throw new Error(
        `${where} has shape ${
          JSON.stringify(shape)
        }, expected an array of non-negative integers`,
      );
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      throw new Error(
        `${where} has data_offsets ${
          JSON.stringify(offsets)
        }, expected [begin, end] with 0 <= begin <= end`,
      );
    }
    const expected = sizeOf(shape) * DTYPE_BYTES[dtype];
    if (offsets[1] - offsets[0] !== expected) {
      throw new Error(
        `${where} spans ${
          offsets[1] - offsets[0]
        } bytes, but ${dtype} [${shape}] needs ${expected}`,
      );
    }
    if (offsets[1] > dataSize) {
      throw new Error(
        `${where} ends at data byte ${
          offsets[1]
        }, but the file holds only ${dataSize} data bytes (truncated file?)`,
      );
    }
    entries.set(name, {
      dtype,
      shape: shape as number[],
      dataOffsets: [offsets[0], offsets[1]],
    });
  }
  const duplicate = duplicateKey(json);
  if (duplicate !== undefined) {
    throw new Error(
      `Cannot read safetensors file "${path}": tensor ${
        JSON.stringify(duplicate)
      } appears twice in the header`,
    );
  }
  checkTiling(path, entries, dataSize);
  return { entries, metadata, dataStart, fileSize };
}

/**
 * As the format's reference reader does: the tensors, in offset order, must
 * cover the data section exactly, each starting where the previous one ends.
 * An overlap would alias two tensors, a gap or a tail would hide bytes that
 * no digest of the tensors accounts for.
 */
function checkTiling(
  path: string,
  entries: Map<string, SafetensorsEntry>,
  dataSize: number,
): void {
  const where = `Cannot read safetensors file "${path}"`;
  const sorted = [...entries].sort((a, b) =>
    a[1].dataOffsets[0] - b[1].dataOffsets[0] ||
    a[1].dataOffsets[1] - b[1].dataOffsets[1]
  );
  let end = 0;
  let previous: string | undefined;
  for (const [name, { dataOffsets: [begin, stop] }] of sorted) {
    if (begin < end) {
      throw new Error(
        `${where}: tensor "${name}" (data bytes ${begin}-${stop}) overlaps tensor "${previous}" (ending at ${end})`,
      );
    }
    if (begin > end) {
      throw new Error(
        `${where}: data bytes ${end}-${begin} before tensor "${name}" belong to no tensor`,
      );
    }
    end = stop;
    previous = name;
  }
  if (end !== dataSize) {
    throw new Error(
      `${where}: the data section has ${dataSize} bytes, but its tensors cover only ${end}`,
    );
  }
}

/**
 * The first top-level key that appears twice in a header already known to
 * be valid JSON (`JSON.parse` silently keeps the last one).
 */
function duplicateKey(json: Uint8Array): string | undefined {
  const text = new TextDecoder().decode(json);
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === "{" || c === "[") {
      depth++;
      expectKey = depth === 1 && c === "{";
    } else if (c === "}" || c === "]") {
      depth--;
    } else if (c === "," && depth === 1) {
      expectKey = true;
    }
  }
  return undefined;
}

function parseMetadata(path: string, value: unknown): Record<string, string> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error(
      `Cannot read safetensors file "${path}": "__metadata__" is not an object of strings`,
    );
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== "string") {
      throw new Error(
        `Cannot read safetensors file "${path}": "__metadata__" key "${k}" is ${typeof v}, expected a string`,
      );
    }
    out[k] = v;
  }
  return out;
}

async function readHeaderFrom(
  path: string,
  file: Deno.FsFile,
): Promise<SafetensorsHeader> {
  const fileSize = (await file.stat()).size;
  const prefix = new Uint8Array(8);
  if (fileSize < 8 || await readAt(file, 0, prefix) < 8) {
    throw new Error(
      `Cannot read safetensors file "${path}": it has ${fileSize} bytes, fewer than the 8-byte header length`,
    );
  }
  const length = new DataView(prefix.buffer).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES) || length > BigInt(fileSize - 8)) {
    throw new Error(
      `Cannot read safetensors file "${path}": header length ${length} exceeds ${
        Math.min(MAX_HEADER_BYTES, fileSize - 8)
      } bytes (not a safetensors file, or truncated)`,
    );
  }
  const json = new Uint8Array(Number(length));
  await readAt(file, 8, json);
  return parseHeader(path, json, 8 + json.length, fileSize);
}

/** Reads only the header of a safetensors file: names, dtypes, shapes, offsets. */
export async function readSafetensorsHeader(
  path: string,
): Promise<SafetensorsHeader> {
  using file = await Deno.open(path, { read: true });
  return await readHeaderFrom(path, file);
}

/**
 * Decodes little-endian tensor bytes into a host tensor: F32, I64, I32 and U8
 * as they are, F16 and BF16 widened to F32. `bytes` may be reused as the
 * tensor's storage when it is suitably aligned.
 */
export function hostTensorFromBytes(
  dtype: string,
  shape: number[],
  bytes: Uint8Array,
): HostTensor {
  assertLittleEndian();
  const width = DTYPE_BYTES[dtype];
  if (!READABLE.includes(dtype) || width === undefined) {
    throw new Error(
      `Cannot decode dtype ${dtype}: expected one of ${READABLE.join(", ")}`,
    );
  }
  const n = sizeOf(shape);
  if (bytes.length !== n * width) {
    throw new RangeError(
      `Cannot decode ${dtype} [${shape}]: got ${bytes.length} bytes, expected ${
        n * width
      }`,
    );
  }
  // Typed-array views need an aligned offset; copy when the bytes are not.
  const aligned = bytes.byteOffset % width === 0
    ? bytes
    : new Uint8Array(bytes);
  const { buffer, byteOffset } = aligned;
  switch (dtype) {
    case "F32":
      return { dtype, shape, data: new Float32Array(buffer, byteOffset, n) };
    case "I64":
      return { dtype, shape, data: new BigInt64Array(buffer, byteOffset, n) };
    case "I32":
      return { dtype, shape, data: new Int32Array(buffer, byteOffset, n) };
    case "U8":
      return { dtype, shape, data: new Uint8Array(buffer, byteOffset, n) };
    case "F16":
      return {
        dtype: "F32",
        shape,
        data: halfToFloat32(new Uint16Array(buffer, byteOffset, n)),
      };
    default: {
      const bits = new Uint16Array(buffer, byteOffset, n);
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = bits[i] << 16;
      return { dtype: "F32", shape, data: new Float32Array(out.buffer) };
    }
  }
}

/** IEEE half-precision bit patterns to float32 values. */
function halfToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) out[i] = sign * frac * 2 ** -24;
    else if (exp === 31) out[i] = frac ? NaN : sign * Infinity;
    else out[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/** Opens a safetensors file to read tensors one at a time; call `close()`. */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  const file = await Deno.open(path, { read: true });
  let header: SafetensorsHeader;
  try {
    header = await readHeaderFrom(path, file);
  } catch (e) {
    file.close();
    throw e;
  }
  return {
    path,
    header,
    names: () => [...header.entries.keys()],
    async read(name: string): Promise<HostTensor> {
      const entry = header.entries.get(name);
      if (!entry) {
        throw new Error(
          `Cannot read tensor "${name}" from "${path}": no such tensor`,
        );
      }
      if (!READABLE.includes(entry.dtype)) {
        throw new Error(
          `Cannot read tensor "${name}" from "${path}": dtype ${entry.dtype} is not supported (expected one of ${
            READABLE.join(", ")
          })`,
        );
      }
      const [begin, end] = entry.dataOffsets;
      const bytes = new Uint8Array(end - begin);
      const got = await readAt(file, header.dataStart + begin, bytes);
      if (got < bytes.length) {
        throw new Error(
          `Cannot read tensor "${name}" from "${path}": the file ends after ${got} of its ${bytes.length} bytes (truncated file?)`,
        );
      }
      return hostTensorFromBytes(entry.dtype, entry.shape, bytes);
    },
    close: () => file.close(),
  };
}

/** Reads every tensor of a safetensors file, plus its `__metadata__`. */
export async function readSafetensors(
  path: string,
): Promise<
  { tensors: Map<string, HostTensor>; metadata: Record<string, string> }
> {
  const file = await openSafetensors(path);
  try {
    const tensors = new Map<string, HostTensor>();
    for (const name of file.names()) tensors.set(name, await file.read(name));
    return { tensors, metadata: file.header.metadata };
  } finally {
    file.close();
  }
}

/** Options for {@linkcode writeSafetensors}. */
export interface WriteSafetensorsOptions {
  /**
   * String key/value pairs stored as the header's `__metadata__`.
   * @default {}
   */
  metadata?: Record<string, string>;
}

const DATA_TYPES: Record<string, new (n: number) => ArrayBufferView> = {
  F32: Float32Array,
  I64: BigInt64Array,
  I32: Int32Array,
  U8: Uint8Array,
};

/**
 * Writes tensors (sorted by name) to a safetensors file, via a temporary
 * `path.tmp-<random>` renamed into place so readers never see a partial file.
 */
export async function writeSafetensors(
  path: string,
  tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  options: WriteSafetensorsOptions = {},
): Promise<void> {
  assertLittleEndian();
  const map = tensors instanceof Map
    ? tensors
    : new Map(Object.entries(tensors));
  const names = [...map.keys()].sort();
  const header: Record<string, unknown> = {};
  const metadata = options.metadata ?? {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") {
      throw new TypeError(
        `Cannot write "${path}": metadata key "${k}" is ${typeof v}, expected a string`,
      );
    }
  }
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    if (name === "__metadata__") {
      throw new Error(
        `Cannot write "${path}": "__metadata__" is reserved and cannot name a tensor`,
      );
    }
    const t = map.get(name)!;
    const Ctor = DATA_TYPES[t.dtype];
    if (!Ctor || !(t.data instanceof Ctor)) {
      throw new TypeError(
        `Cannot write tensor "${name}" to "${path}": dtype ${t.dtype} with ${t.data.constructor.name} data, expected F32/Float32Array, I64/BigInt64Array, I32/Int32Array or U8/Uint8Array`,
      );
    }
    if (t.data.length !== sizeOf(t.shape)) {
      throw new RangeError(
        `Cannot write tensor "${name}" to "${path}": ${t.data.length} values do not fill shape [${t.shape}]`,
      );
    }
    const end = offset + t.data.byteLength;
    header[name] = {
      dtype: t.dtype,
      shape: t.shape,
      data_offsets: [offset, end],
    };
    offset = end;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data section starts 8-byte aligned (as the
  // reference writer does), letting readers map tensors without copying.
  json += " ".repeat(
    (8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8,
  );
  const jsonBytes = new TextEncoder().encode(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);

  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    {
      using file = await Deno.open(tmp, {
        write: true,
        create: true,
        truncate: true,
      });
      await writeAll(file, prefix);
      await writeAll(file, jsonBytes);
      for (const name of names) {
        const { data } = map.get(name)!;
        await writeAll(
          file,
          new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
        );
      }
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}
