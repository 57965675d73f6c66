/**
 * Resumable, verified downloads.
 *
 * Bytes go to `<dest>.part`; an interrupted download continues from there with
 * an HTTP Range request (the next run, or an automatic retry). Only a file
 * whose size and checksums match is renamed to `<dest>`, so `<dest>` existing
 * means it was verified.
 *
 * Two guards keep a misbehaving server from hanging or filling the disk: a
 * request that sends nothing for `idleTimeoutMs` is dropped and resumed like
 * a cut connection (then, retries spent, fails with a message saying so), and
 * a body that runs past `maxBytes` (by default the expected `size`) is cut off
 * at once, its `.part` deleted.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { dirname } from "node:path";

/** Options of {@linkcode download}. */
export interface DownloadOptions {
  /** Expected MD5, lowercase hex. @default undefined (not checked) */
  md5?: string;
  /** Expected SHA-256, lowercase hex. @default undefined (not checked) */
  sha256?: string;
  /** Expected size in bytes. @default undefined (the server's Content-Length is still checked) */
  size?: number;
  /**
   * Called with the bytes held so far (a resumed prefix included) and the
   * total when known; first once before any byte is fetched.
   * @default undefined
   */
  onProgress?: (received: number, total: number | undefined) => void;
  /** Fetch implementation, for tests. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Automatic resumes after a connection drops mid-file. @default 3 */
  retries?: number;
  /** Pause before the first automatic resume, doubled each time. @default 1000 */
  retryDelayMs?: number;
  /**
   * Drop a request that sends no byte (headers or body) for this long, and
   * resume it as after a cut connection.
   * @default 60000
   */
  idleTimeoutMs?: number;
  /**
   * Most bytes the file may have: a longer body, or a larger announced
   * size, stops the download with an error. The expected `size`, when
   * given, is a limit too.
   * @default no limit beyond `size`
   */
  maxBytes?: number;
}

/** Default of {@linkcode DownloadOptions.idleTimeoutMs}: one minute. */
export const DOWNLOAD_IDLE_TIMEOUT_MS = 60_000;

/** What {@linkcode download} found or did. */
export interface DownloadResult {
  path: string;
  /** Size of the file in bytes. */
  bytes: number;
  md5: string;
  sha256: string;
  /** True when `dest` was already there and verified; nothing was fetched. */
  skipped: boolean;
  /** Bytes already in `<dest>.part` when the last request started. */
  resumedFrom: number;
}

/**
 * Downloads `url` to `dest`, resuming and verifying as described in the module
 * docs. A checksum mismatch deletes the partial file and throws an error that
 * names the file and both digests; an existing `dest` that fails verification
 * is reported and kept (it may be the user's own file).
 */
export async function download(
  url: string,
  dest: string,
  options: DownloadOptions = {},
): Promise<DownloadResult> {
  const expected = checkExpectations(options);
  const existing = await sizeOf(dest);
  if (existing !== undefined) {
    const digests = await hashFile(dest);
    const problem = mismatch(expected, existing, digests);
    if (problem) {
      throw new Error(
        `Existing file "${dest}" does not match: ${problem}; delete it to download again`,
      );
    }
    return {
      path: dest,
      bytes: existing,
      ...digests,
      skipped: true,
      resumedFrom: 0,
    };
  }

  const part = `${dest}.part`;
  const idleTimeoutMs = options.idleTimeoutMs ?? DOWNLOAD_IDLE_TIMEOUT_MS;
  if (!(idleTimeoutMs > 0 && Number.isFinite(idleTimeoutMs))) {
    throw new Error(
      `Option idleTimeoutMs is ${idleTimeoutMs}: expected a positive number of milliseconds`,
    );
  }
  // A body longer than the expected size is as wrong as one past the limit.
  const cap = Math.min(
    expected.maxBytes ?? Infinity,
    expected.size ?? Infinity,
  );
  const maxBytes = cap === Infinity ? undefined : cap;
  await Deno.mkdir(dirname(dest), { recursive: true });
  const fetchFn = options.fetch ?? globalThis.fetch;
  const retries = options.retries ?? 3;
  let delay = options.retryDelayMs ?? 1000;
  let restartedAfter416 = false;
  for (let attempt = 0;; attempt++) {
    let offset = (await sizeOf(part)) ?? 0;
    if (offset > cap) {
      await Deno.remove(part);
      offset = 0;
    }
    const outcome = expected.size !== undefined && offset === expected.size
      ? { kind: "complete" as const, total: offset }
      : await fetchInto(url, part, offset, {
        fetchFn,
        size: expected.size,
        maxBytes,
        idleTimeoutMs,
        onProgress: options.onProgress,
      });
    if (outcome.kind === "restart") {
      // 416 for a prefix the server does not recognise: start from zero once.
      if (restartedAfter416) {
        throw new Error(
          `Download of ${url} failed: the server refuses every byte range`,
        );
      }
      restartedAfter416 = true;
      await Deno.remove(part);
      attempt--;
      continue;
    }
    if (outcome.kind === "interrupted") {
      if (attempt < retries) {
        await new Promise((r) => setTimeout(r, delay));
        delay *= 2;
        continue;
      }
      if (outcome.held === 0) {
        throw new Error(`Download of ${url} failed: ${outcome.reason}`);
      }
      throw new Error(
        `Download of ${url} interrupted at ${outcome.held}` +
          (outcome.total !== undefined ? ` of ${outcome.total}` : "") +
          ` bytes (${outcome.reason}); the partial file "${part}" is kept: ` +
          `run again to resume`,
      );
    }

    const bytes = (await sizeOf(part)) ?? 0;
    const digests = outcome.kind === "fetched"
      ? outcome.digests
      : await hashFile(part);
    const problem = mismatch(expected, bytes, digests, outcome.total);
    if (problem) {
      await Deno.remove(part);
      throw new Error(
        `Downloaded file "${dest}" does not match: ${problem}; deleted "${part}"`,
      );
    }
    await Deno.rename(part, dest);
    return {
      path: dest,
      bytes,
      ...digests,
      skipped: false,
      resumedFrom: outcome.kind === "fetched" ? outcome.offset : offset,
    };
  }
}

type FetchOutcome =
  | {
    kind: "fetched";
    total: number | undefined;
    offset: number;
    digests: { md5: string; sha256: string };
  }
  | { kind: "complete"; total: number }
  | { kind: "restart" }
  | {
    kind: "interrupted";
    held: number;
    total: number | undefined;
    reason: string;
  };

/** One request: appends to (or restarts) `part` from `offset`. */
async function fetchInto(
  url: string,
  part: string,
  offset: number,
  options: {
    fetchFn: typeof fetch;
    size: number | undefined;
    maxBytes: number | undefined;
    idleTimeoutMs: number;
    onProgress: DownloadOptions["onProgress"];
  },
): Promise<FetchOutcome> {
  const watchdog = new Watchdog(options.idleTimeoutMs);
  try {
    return await request(url, part, offset, options, watchdog);
  } finally {
    watchdog.pause();
  }
}

/**
 * Aborts a request when neither headers nor body bytes arrive within
 * `timeoutMs`; every chunk rearms it. Paused while the client itself is busy
 * (hashing a resumed prefix), so slowness of ours is not taken for a stall.
 */
class Watchdog {
  readonly #abort = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stalled = false;
  constructor(readonly timeoutMs: number) {
    this.arm();
  }
  get signal(): AbortSignal {
    return this.#abort.signal;
  }
  arm(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#stalled = true;
      this.#abort.abort();
    }, this.timeoutMs);
  }
  pause(): void {
    clearTimeout(this.#timer);
  }
  /** Why the request failed, when the watchdog ended it. */
  reason(): string | undefined {
    return this.#stalled
      ? `no data from the server for ${this.timeoutMs / 1000} s`
      : undefined;
  }
}

async function request(
  url: string,
  part: string,
  offset: number,
  { fetchFn, size, maxBytes, onProgress }: {
    fetchFn: typeof fetch;
    size: number | undefined;
    maxBytes: number | undefined;
    onProgress: DownloadOptions["onProgress"];
  },
  watchdog: Watchdog,
): Promise<FetchOutcome> {
  const headers: Record<string, string> = {};
  if (offset > 0) headers["range"] = `bytes=${offset}-`;
  let response: Response;
  try {
    response = await fetchFn(url, { headers, signal: watchdog.signal });
  } catch (error) {
    if (isPermissionError(error)) throw error;
    return {
      kind: "interrupted",
      held: offset,
      total: undefined,
      reason: watchdog.reason() ??
        `cannot reach the server: ${messageOf(error)}`,
    };
  }
  watchdog.arm();

  let start = 0;
  let total: number | undefined;
  if (response.status === 416) {
    await response.body?.cancel();
    // "bytes */N": the .part may already hold all N bytes.
    const size = parseContentRange(response.headers.get("content-range"))
      ?.total;
    return size === offset && offset > 0
      ? { kind: "complete", total: offset }
      : { kind: "restart" };
  } else if (response.status === 206) {
    const range = parseContentRange(response.headers.get("content-range"));
    if (!range || range.start !== offset) {
      await response.body?.cancel();
      throw new Error(
        `Download of ${url} failed: asked for bytes from ${offset}, ` +
          `the server sent Content-Range "${
            response.headers.get("content-range")
          }"`,
      );
    }
    start = offset;
    total = range.total;
  } else if (response.ok) {
    // A 200 to a Range request means the server ignored it: start over.
    start = 0;
    const length = response.headers.get("content-length");
    total = length !== null ? Number(length) : undefined;
  } else {
    await response.body?.cancel();
    throw new Error(
      `Download of ${url} failed: HTTP ${response.status} ${response.statusText}`
        .trimEnd(),
    );
  }
  if (!response.body) {
    throw new Error(`Download of ${url} failed: the response has no body`);
  }
  if (size !== undefined && total !== undefined && total !== size) {
    await response.body.cancel();
    throw new Error(
      `Download of ${url} failed: the server announces ${total} bytes, expected ${size}`,
    );
  }
  if (maxBytes !== undefined && total !== undefined && total > maxBytes) {
    await response.body.cancel();
    throw new Error(
      `Download of ${url} failed: the server announces ${total} bytes, more than the limit of ${maxBytes}`,
    );
  }

  const file = await Deno.open(part, {
    write: true,
    create: true,
    append: start > 0,
    truncate: start === 0,
  });
  const md5 = createHash("md5");
  const sha256 = createHash("sha256");
  let held = start;
  let overflow = false;
  onProgress?.(held, total);
  try {
    // The digests cover the whole file: the resumed prefix first.
    if (start > 0) {
      watchdog.pause();
      await hashPrefix(part, start, [md5, sha256]);
      watchdog.arm();
    }
    for await (const chunk of response.body) {
      watchdog.arm();
      if (maxBytes !== undefined && held + chunk.length > maxBytes) {
        overflow = true;
        break; // leaving the loop cancels the body
      }
      let written = 0;
      while (written < chunk.length) {
        written += await file.write(chunk.subarray(written));
      }
      md5.update(chunk);
      sha256.update(chunk);
      held += chunk.length;
      onProgress?.(held, total);
    }
    watchdog.pause();
    await file.sync();
  } catch (error) {
    return {
      kind: "interrupted",
      held,
      total,
      reason: watchdog.reason() ?? messageOf(error),
    };
  } finally {
    file.close();
  }
  if (overflow) {
    await Deno.remove(part);
    throw new Error(
      `Download of ${url} stopped: the server sent more than the limit of ${maxBytes} bytes; deleted "${part}"`,
    );
  }
  if (total !== undefined && held < total) {
    return {
      kind: "interrupted",
      held,
      total,
      reason: "the connection closed early",
    };
  }
  return {
    kind: "fetched",
    total,
    offset: start,
    digests: { md5: md5.digest("hex"), sha256: sha256.digest("hex") },
  };
}

interface Expectations {
  md5?: string;
  sha256?: string;
  size?: number;
  maxBytes?: number;
}

function checkExpectations(options: DownloadOptions): Expectations {
  const hex = (name: string, value: string | undefined, length: number) => {
    if (value === undefined) return undefined;
    const lower = value.toLowerCase();
    if (!new RegExp(`^[0-9a-f]{${length}}$`).test(lower)) {
      throw new Error(
        `Option ${name} is "${value}": expected ${length} hexadecimal digits`,
      );
    }
    return lower;
  };
  if (
    options.size !== undefined &&
    !(Number.isSafeInteger(options.size) && options.size >= 0)
  ) {
    throw new Error(
      `Option size is ${options.size}: expected a whole number of bytes`,
    );
  }
  if (
    options.maxBytes !== undefined &&
    !(Number.isSafeInteger(options.maxBytes) && options.maxBytes > 0)
  ) {
    throw new Error(
      `Option maxBytes is ${options.maxBytes}: expected a positive whole number of bytes`,
    );
  }
  return {
    md5: hex("md5", options.md5, 32),
    sha256: hex("sha256", options.sha256, 64),
    size: options.size,
    maxBytes: options.maxBytes,
  };
}

function mismatch(
  expected: Expectations,
  bytes: number,
  digests: { md5: string; sha256: string },
  serverTotal?: number,
): string | undefined {
  if (expected.size !== undefined && bytes !== expected.size) {
    return `expected ${expected.size} bytes, found ${bytes}`;
  }
  if (serverTotal !== undefined && bytes !== serverTotal) {
    return `the server announced ${serverTotal} bytes, found ${bytes}`;
  }
  if (expected.md5 !== undefined && digests.md5 !== expected.md5) {
    return `expected md5 ${expected.md5}, found ${digests.md5}`;
  }
  if (expected.sha256 !== undefined && digests.sha256 !== expected.sha256) {
    return `expected sha256 ${expected.sha256}, found ${digests.sha256}`;
  }
  return undefined;
}

/** MD5 and SHA-256 of a file, streamed. */
export async function hashFile(
  path: string,
): Promise<{ md5: string; sha256: string }> {
  const hashes: Hash[] = [createHash("md5"), createHash("sha256")];
  using file = await Deno.open(path);
  for await (const chunk of file.readable) {
    for (const h of hashes) h.update(chunk);
  }
  return { md5: hashes[0].digest("hex"), sha256: hashes[1].digest("hex") };
}

async function hashPrefix(
  path: string,
  length: number,
  hashes: Hash[],
): Promise<void> {
  using file = await Deno.open(path);
  const buffer = new Uint8Array(1 << 20);
  let left = length;
  while (left > 0) {
    const n = await file.read(
      buffer.subarray(0, Math.min(left, buffer.length)),
    );
    if (n === null) {
      throw new Error(`"${path}" ended before its first ${length} bytes`);
    }
    for (const h of hashes) h.update(buffer.subarray(0, n));
    left -= n;
  }
}

function parseContentRange(
  header: string | null,
): { start: number | undefined; total: number | undefined } | undefined {
  if (header === null) return undefined;
  const match = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/i.exec(header.trim());
  if (!match) return undefined;
  return {
    start: match[1] !== undefined ? Number(match[1]) : undefined,
    total: match[3] !== "*" ? Number(match[3]) : undefined,
  };
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) {
      throw new Error(`Cannot download to "${path}": it is not a file`);
    }
    return info.size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

function isPermissionError(error: unknown): boolean {
  return error instanceof Deno.errors.NotCapable ||
    error instanceof Deno.errors.PermissionDenied;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
