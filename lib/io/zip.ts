/**
 * A small read-only zip reader: enough for `torch.save` files and NumPy
 * `.npz` archives (stored or deflated members, zip64 sizes and offsets).
 *
 * Only the central directory is kept in memory; each {@linkcode ZipArchive.read}
 * opens the file, reads one member and closes it again.
 *
 * @module
 */
import { readAt } from "./read_at.ts";
import { resolveLimit } from "./_limits.ts";

/** One member as described by the central directory. */
export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflated. */
  method: number;
  compressedSize: number;
  /** Uncompressed size in bytes. */
  size: number;
  crc32: number;
  /** Offset of the member's local header in the file. */
  localHeaderOffset: number;
}

/** An opened zip file. */
export interface ZipArchive {
  readonly path: string;
  /** Member names in central-directory order. */
  names(): string[];
  /** The central-directory entry of a member, if present. */
  entry(name: string): ZipEntry | undefined;
  /** The uncompressed bytes of a member (a fresh buffer, offset 0). */
  read(name: string): Promise<Uint8Array>;
}

/** Options for {@linkcode openZip}. */
export interface OpenZipOptions {
  /**
   * Check each member's CRC-32 after reading it (about 0.3 s per GB).
   * @default true
   */
  verifyCrc?: boolean;
  /**
   * Largest uncompressed size of one member that `read` accepts; a member
   * declaring more is refused before anything is allocated.
   * @default the `CUFIT_ZIP_MAX_MEMBER_BYTES` environment variable when it is set and readable, else {@linkcode ZIP_MAX_MEMBER_BYTES}
   */
  maxMemberBytes?: number;
  /**
   * Largest sum of uncompressed sizes that all `read`s of this archive
   * together may return.
   * @default the `CUFIT_ZIP_MAX_TOTAL_BYTES` environment variable when it is set and readable, else {@linkcode ZIP_MAX_TOTAL_BYTES}
   */
  maxTotalBytes?: number;
}

/**
 * Default cap on one member's uncompressed size: 4 GiB. The largest member
 * this project reads is the 224 px BloodMNIST `train_images` array
 * (11,959 x 224 x 224 x 3 = 1.8 GB).
 */
export const ZIP_MAX_MEMBER_BYTES = 4 * 2 ** 30;

/**
 * Default cap on what one opened archive may inflate in total: 8 GiB, three
 * times a whole 224 px BloodMNIST archive (2.6 GB uncompressed).
 */
export const ZIP_MAX_TOTAL_BYTES = 8 * 2 ** 30;

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
const CHUNK = 1 << 20;

function u64(view: DataView, at: number, what: () => string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new Error(`${what()}: 64-bit value ${v} is too large`);
  }
  return Number(v);
}

/** Opens a zip file and reads its central directory. */
export async function openZip(
  path: string,
  options: OpenZipOptions = {},
): Promise<ZipArchive> {
  const verifyCrc = options.verifyCrc ?? true;
  const maxMember = resolveLimit(
    "maxMemberBytes",
    options.maxMemberBytes,
    "CUFIT_ZIP_MAX_MEMBER_BYTES",
    ZIP_MAX_MEMBER_BYTES,
  );
  const maxTotal = resolveLimit(
    "maxTotalBytes",
    options.maxTotalBytes,
    "CUFIT_ZIP_MAX_TOTAL_BYTES",
    ZIP_MAX_TOTAL_BYTES,
  );
  let inflated = 0;
  const where = `Cannot open zip "${path}"`;
  let entries: Map<string, ZipEntry>;
  let fileSize: number;
  {
    using file = await Deno.open(path, { read: true });
    fileSize = (await file.stat()).size;
    entries = await readCentralDirectory(file, fileSize, where);
  }

  async function read(name: string): Promise<Uint8Array> {
    const e = entries.get(name);
    const at = `Cannot read "${name}" from zip "${path}"`;
    if (!e) {
      const shown = [...entries.keys()].slice(0, 10).map((n) => `"${n}"`);
      throw new Error(
        `${at}: no such member (it has ${entries.size}: ${shown.join(", ")}${
          entries.size > 10 ? ", ..." : ""
        })`,
      );
    }
    if (e.size > maxMember.value) {
      throw new Error(
        `${at}: it declares ${e.size} uncompressed bytes, more than the limit of ${maxMember.value} per member (${maxMember.how})`,
      );
    }
    if (inflated + e.size > maxTotal.value) {
      throw new Error(
        `${at}: its ${e.size} bytes would bring this archive's total to ${
          inflated + e.size
        }, more than the limit of ${maxTotal.value} (${maxTotal.how})`,
      );
    }
    using file = await Deno.open(path, { read: true });
    const local = new Uint8Array(30);
    if (await readAt(file, e.localHeaderOffset, local) < 30) {
      throw new Error(
        `${at}: its local header at byte ${e.localHeaderOffset} is past the end of the file (truncated file?)`,
      );
    }
    const lv = new DataView(local.buffer);
    if (lv.getUint32(0, true) !== SIG_LOCAL) {
      throw new Error(
        `${at}: no local header signature at byte ${e.localHeaderOffset}`,
      );
    }
    const flags = lv.getUint16(6, true);
    if (flags & 1) throw new Error(`${at}: the member is encrypted`);
    const dataStart = e.localHeaderOffset + 30 + lv.getUint16(26, true) +
      lv.getUint16(28, true);
    if (dataStart + e.compressedSize > fileSize) {
      throw new Error(
        `${at}: its ${e.compressedSize} bytes would end at byte ${
          dataStart + e.compressedSize
        }, but the file has ${fileSize} (truncated file?)`,
      );
    }
    let out: Uint8Array;
    if (e.method === 0) {
      if (e.compressedSize !== e.size) {
        throw new Error(
          `${at}: stored member has compressed size ${e.compressedSize} but size ${e.size}`,
        );
      }
      out = allocate(e.size, at);
      await readAt(file, dataStart, out);
    } else if (e.method === 8) {
      out = await inflate(file, dataStart, e, at);
    } else {
      throw new Error(
        `${at}: compression method ${e.method} is not supported (expected 0 = stored or 8 = deflated)`,
      );
    }
    if (verifyCrc) {
      const crc = crc32(out);
      if (crc !== e.crc32) {
        throw new Error(
          `${at}: CRC-32 mismatch (expected ${hex(e.crc32)}, got ${
            hex(crc)
          }; the file is corrupt)`,
        );
      }
    }
    inflated += out.length;
    return out;
  }

  return {
    path,
    names: () => [...entries.keys()],
    entry: (name) => entries.get(name),
    read,
  };
}

async function readCentralDirectory(
  file: Deno.FsFile,
  fileSize: number,
  where: string,
): Promise<Map<string, ZipEntry>> {
  const tailSize = Math.min(fileSize, EOCD_SIZE + MAX_COMMENT);
  const tail = new Uint8Array(tailSize);
  await readAt(file, fileSize - tailSize, tail);
  const tv = new DataView(tail.buffer);
  let eocd = -1;
  for (let i = tailSize - EOCD_SIZE; i >= 0; i--) {
    if (tv.getUint32(i, true) === SIG_EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) {
    throw new Error(
      `${where}: no end-of-central-directory record (not a zip file, or truncated)`,
    );
  }
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  const eocdAbs = fileSize - tailSize + eocd;
  // A zip64 locator sits right before the classic record when sizes overflow.
  const loc = eocd - 20;
  if (loc >= 0 && tv.getUint32(loc, true) === SIG_ZIP64_LOCATOR) {
    const recOffset = u64(tv, loc + 8, () => `${where}: zip64 locator`);
    const rec = new Uint8Array(56);
    if (
      recOffset + 56 > fileSize || await readAt(file, recOffset, rec) < 56
    ) {
      throw new Error(
        `${where}: the zip64 end record at byte ${recOffset} is past the end of the file`,
      );
    }
    const rv = new DataView(rec.buffer);
    if (rv.getUint32(0, true) !== SIG_ZIP64_EOCD) {
      throw new Error(
        `${where}: no zip64 end record signature at byte ${recOffset}`,
      );
    }
    const what = () => `${where}: zip64 end record`;
    count = u64(rv, 32, what);
    cdSize = u64(rv, 40, what);
    cdOffset = u64(rv, 48, what);
  } else if (
    count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff
  ) {
    throw new Error(
      `${where}: the end record asks for zip64 but the zip64 locator is missing`,
    );
  }
  if (cdOffset + cdSize > eocdAbs) {
    throw new Error(
      `${where}: the central directory (${cdSize} bytes at ${cdOffset}) overruns the end record at ${eocdAbs} (truncated file?)`,
    );
  }
  const cd = new Uint8Array(cdSize);
  await readAt(file, cdOffset, cd);
  const v = new DataView(cd.buffer);
  const decoder = new TextDecoder();
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdSize || v.getUint32(p, true) !== SIG_CENTRAL) {
      throw new Error(
        `${where}: central directory entry ${i} of ${count} is damaged`,
      );
    }
    const method = v.getUint16(p + 10, true);
    const crc = v.getUint32(p + 16, true);
    let compressedSize = v.getUint32(p + 20, true);
    let size = v.getUint32(p + 24, true);
    const nameLen = v.getUint16(p + 28, true);
    const extraLen = v.getUint16(p + 30, true);
    const commentLen = v.getUint16(p + 32, true);
    let localHeaderOffset = v.getUint32(p + 42, true);
    const nameStart = p + 46;
    const extraStart = nameStart + nameLen;
    const next = extraStart + extraLen + commentLen;
    if (next > cdSize) {
      throw new Error(
        `${where}: central directory entry ${i} of ${count} is damaged`,
      );
    }
    const name = decoder.decode(cd.subarray(nameStart, extraStart));
    // Zip64 extra field: 64-bit values, in this order, for each 32-bit field
    // that holds 0xffffffff.
    for (let x = extraStart; x + 4 <= extraStart + extraLen;) {
      const id = v.getUint16(x, true);
      const len = v.getUint16(x + 2, true);
      if (id === 0x0001) {
        let q = x + 4;
        const end = q + len;
        const take = () => {
          if (q + 8 > end) {
            throw new Error(
              `${where}: member "${name}" has a zip64 extra field that is too short`,
            );
          }
          const val = u64(v, q, () => `${where}: member "${name}"`);
          q += 8;
          return val;
        };
        if (size === 0xffffffff) size = take();
        if (compressedSize === 0xffffffff) compressedSize = take();
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take();
      }
      x += 4 + len;
    }
    if (!entries.has(name)) {
      entries.set(name, {
        name,
        method,
        compressedSize,
        size,
        crc32: crc,
        localHeaderOffset,
      });
    }
    p = next;
  }
  return entries;
}

async function inflate(
  file: Deno.FsFile,
  dataStart: number,
  e: ZipEntry,
  at: string,
): Promise<Uint8Array> {
  const out = allocate(e.size, at);
  let remaining = e.compressedSize;
  await file.seek(dataStart, Deno.SeekMode.Start);
  const source = new ReadableStream<BufferSource>({
    async pull(controller) {
      if (remaining === 0) return controller.close();
      const chunk = new Uint8Array(Math.min(CHUNK, remaining));
      let got = 0;
      while (got < chunk.length) {
        const n = await file.read(chunk.subarray(got));
        if (n === null) break;
        got += n;
      }
      if (got === 0) return controller.close();
      remaining -= got;
      controller.enqueue(chunk.subarray(0, got));
    },
  });
  let written = 0;
  try {
    for await (
      const piece of source.pipeThrough(new DecompressionStream("deflate-raw"))
    ) {
      if (written + piece.length > out.length) {
        throw new Error(
          `${at}: it inflates to more than its declared ${e.size} bytes`,
        );
      }
      out.set(piece, written);
      written += piece.length;
    }
  } catch (err) {
    if ((err as Error).message.startsWith(at)) throw err;
    throw new Error(
      `${at}: the deflated data is corrupt (${(err as Error).message})`,
    );
  }
  if (written !== e.size) {
    throw new Error(
      `${at}: it inflates to ${written} bytes, but its declared size is ${e.size}`,
    );
  }
  return out;
}

/** A buffer for a member, or an error naming it when memory runs out. */
function allocate(size: number, at: string): Uint8Array {
  try {
    return new Uint8Array(size);
  } catch (e) {
    throw new Error(
      `${at}: cannot allocate its ${size} uncompressed bytes (${
        (e as Error).message
      })`,
    );
  }
}

function hex(n: number): string {
  return "0x" + n.toString(16).padStart(8, "0");
}

let crcTables: Int32Array | undefined;

/** Eight 256-entry tables for slicing-by-8: about 3x faster than bytewise. */
function tables(): Int32Array {
  if (crcTables) return crcTables;
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + n];
      t[k * 256 + n] = (prev >>> 8) ^ t[prev & 0xff];
    }
  }
  return crcTables = t;
}

/** CRC-32 (IEEE 802.3, as zip uses) of `bytes`, as an unsigned integer. */
export function crc32(bytes: Uint8Array): number {
  const t = tables();
  let c = -1;
  let i = 0;
  const end8 = bytes.length - (bytes.length % 8);
  for (; i < end8; i += 8) {
    c ^= bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) |
      (bytes[i + 3] << 24);
    const hi = bytes[i + 4] | (bytes[i + 5] << 8) | (bytes[i + 6] << 16) |
      (bytes[i + 7] << 24);
    c = t[1792 + (c & 0xff)] ^ t[1536 + ((c >>> 8) & 0xff)] ^
      t[1280 + ((c >>> 16) & 0xff)] ^ t[1024 + (c >>> 24)] ^
      t[768 + (hi & 0xff)] ^ t[512 + ((hi >>> 8) & 0xff)] ^
      t[256 + ((hi >>> 16) & 0xff)] ^ t[hi >>> 24];
  }
  for (; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
