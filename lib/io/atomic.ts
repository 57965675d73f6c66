/**
 * Writes that are all-or-nothing: a file or a directory tree is built under a
 * temporary name beside its destination and renamed into place, so a crash or
 * an error never leaves a half-written result where readers look.
 *
 * @module
 */
import { basename, dirname, join, relative, resolve, sep } from "node:path";

/**
 * A temporary path beside `path` (same directory, hence same filesystem):
 * `.<name>.<tag>-<pid>-<random>`, which {@linkcode isTempName} recognizes so
 * that leftovers of a killed writer can be removed later.
 */
export function siblingTempPath(path: string, tag = "tmp"): string {
  const random = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  return join(
    dirname(path),
    `.${basename(path)}.${tag}-${Deno.pid}-${random}`,
  );
}

/**
 * Whether a file name is one {@linkcode siblingTempPath} makes, or the
 * `<that>.tmp-<hex>` a writer that itself writes through a temporary file
 * (`writeSafetensors`) makes beside it.
 */
export function isTempName(name: string): boolean {
  return /^\..+\.(tmp|old)-\d+-[0-9a-z]+(\.tmp-[0-9a-f]+)?$/.test(name);
}

/** Writes every byte to an open file, looping over short writes. */
export async function writeAll(
  file: Deno.FsFile,
  bytes: Uint8Array,
): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

/**
 * An I/O error rewritten to name the file it concerns: the OS reports a full
 * disk (`ENOSPC`) or a quota without the path, which leaves the person
 * guessing which write failed. Errors that already name it pass unchanged.
 */
export function withPath(error: unknown, path: string, verb = "write"): Error {
  if (!(error instanceof Error)) return new Error(String(error));
  if (error.message.includes(path)) return error;
  const named = new Error(`Cannot ${verb} "${path}": ${error.message}`, {
    cause: error,
  });
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) (named as { code?: unknown }).code = code;
  return named;
}

/**
 * Writes `data` to a new temporary file beside `path` and flushes it to disk;
 * returns the temporary path (for callers that rename several files in turn).
 * A failure (a full disk) names `path` and leaves no temporary file behind.
 */
export async function writeTemp(
  path: string,
  data: Uint8Array | string,
): Promise<string> {
  const temp = siblingTempPath(path);
  const bytes = typeof data === "string"
    ? new TextEncoder().encode(data)
    : data;
  try {
    using file = await Deno.open(temp, { write: true, createNew: true });
    await writeAll(file, bytes);
    await file.syncData();
  } catch (error) {
    await removeQuietly(temp);
    throw withPath(error, path);
  }
  return temp;
}

/**
 * Writes `data` to `path` through a flushed temporary file and a rename, so
 * a crash leaves the old file or the new one; creates the parent directory
 * if needed and removes the temporary file on failure.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const temp = await writeTemp(path, data);
  try {
    await Deno.rename(temp, path);
  } catch (error) {
    await removeQuietly(temp);
    throw withPath(error, path);
  }
}

/** Writes `value` as indented JSON plus a final newline, atomically. */
export async function writeJsonAtomic(
  path: string,
  value: unknown,
): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/**
 * Builds a directory with `build(tempDir)` and then puts it at `dest`,
 * replacing what was there. The old tree is moved aside before the new one is
 * renamed in and deleted after, so `dest` is never a mix of both; if `build`
 * throws, the temporary directory is removed and `dest` is left untouched.
 */
export async function replaceDirAtomic(
  dest: string,
  build: (tempDir: string) => Promise<void>,
): Promise<void> {
  await Deno.mkdir(dirname(dest), { recursive: true });
  const temp = siblingTempPath(dest);
  await Deno.mkdir(temp);
  try {
    await build(temp);
  } catch (error) {
    await removeQuietly(temp);
    throw error;
  }
  const old = await exists(dest) ? siblingTempPath(dest, "old") : undefined;
  if (old) await Deno.rename(dest, old);
  try {
    await Deno.rename(temp, dest);
  } catch (error) {
    if (old) await Deno.rename(old, dest);
    await removeQuietly(temp);
    throw error;
  }
  if (old) await Deno.remove(old, { recursive: true });
}

/** One file of a tree: copied (or linked) from `from`, or written from `data`. */
export type TreeEntry =
  | { path: string; from: string }
  | { path: string; data: Uint8Array | string };

/** Options of {@linkcode mirrorTreeAtomic}. */
export interface MirrorTreeOptions {
  /** Hard-link source files instead of copying them (same filesystem only). @default false */
  link?: boolean;
  /** Directories (relative) that must exist even when empty. @default [] */
  dirs?: string[];
  /** Called after each entry is placed in the new tree. @default undefined */
  onEntry?: (entry: TreeEntry) => void;
}

/** What {@linkcode mirrorTreeAtomic} did. */
export interface MirrorTreeReport {
  /** False when `dest` already matched and was left untouched. */
  updated: boolean;
  /** Entries taken from their source (copied, linked or written). */
  written: number;
  /** Entries already identical in the old tree and reused from it. */
  unchanged: number;
  /** Files of the old tree that the new one no longer has. */
  removed: number;
}

/**
 * Makes the directory `dest` hold exactly `entries` (plus `dirs`), atomically.
 *
 * Files already identical in the current `dest` are not copied again: they are
 * hard-linked from the old tree into the new one. "Identical" is decided the
 * way rsync's quick check does: with `link`, the same inode as the source;
 * otherwise the same size and modification time (copies get the source's
 * mtime). When nothing differs, `dest` is not touched at all.
 */
export async function mirrorTreeAtomic(
  dest: string,
  entries: readonly TreeEntry[],
  options: MirrorTreeOptions = {},
): Promise<MirrorTreeReport> {
  const link = options.link ?? false;
  const dirs = options.dirs ?? [];
  const seen = new Set<string>();
  for (const entry of entries) {
    const key = checkRelative(entry.path, dest);
    if (seen.has(key)) {
      throw new Error(`Tree for "${dest}" lists "${entry.path}" twice`);
    }
    seen.add(key);
  }
  for (const dir of dirs) checkRelative(dir, dest);

  const destInfo = await statOrUndefined(dest);
  if (destInfo && !destInfo.isDirectory) {
    throw new Error(`Cannot write a directory at "${dest}": a file is there`);
  }
  const oldFiles = destInfo ? await listFiles(dest) : new Set<string>();
  const reusable = new Set<string>();
  for (const entry of entries) {
    const key = normalize(entry.path);
    if (oldFiles.has(key) && await sameContent(join(dest, key), entry, link)) {
      reusable.add(key);
    }
  }
  const removed = [...oldFiles].filter((f) => !seen.has(f)).length;
  const dirsPresent = destInfo
    ? (await Promise.all(dirs.map((d) => isDirectory(join(dest, d))))).every(
      Boolean,
    )
    : dirs.length === 0;
  if (
    destInfo && reusable.size === entries.length && removed === 0 &&
    dirsPresent
  ) {
    for (const entry of entries) options.onEntry?.(entry);
    return { updated: false, written: 0, unchanged: entries.length, removed };
  }

  let written = 0;
  await replaceDirAtomic(dest, async (temp) => {
    const made = new Set<string>();
    const ensureDir = async (dir: string) => {
      if (made.has(dir)) return;
      await Deno.mkdir(dir, { recursive: true });
      made.add(dir);
    };
    for (const dir of dirs) await ensureDir(join(temp, dir));
    for (const entry of entries) {
      const key = normalize(entry.path);
      const target = join(temp, key);
      await ensureDir(dirname(target));
      if (reusable.has(key)) {
        await Deno.link(join(dest, key), target);
      } else {
        await placeEntry(entry, target, link);
        written++;
      }
      options.onEntry?.(entry);
    }
  });
  return { updated: true, written, unchanged: reusable.size, removed };
}

async function placeEntry(
  entry: TreeEntry,
  target: string,
  link: boolean,
): Promise<void> {
  if ("data" in entry) {
    if (typeof entry.data === "string") {
      await Deno.writeTextFile(target, entry.data);
    } else await Deno.writeFile(target, entry.data);
    return;
  }
  if (link) {
    try {
      await Deno.link(entry.from, target);
    } catch (error) {
      if (isCrossDevice(error)) {
        throw new Error(
          `Cannot hard link "${entry.from}" into "${dirname(target)}": ` +
            `they are on different filesystems (copy instead of linking)`,
        );
      }
      throw error;
    }
    return;
  }
  await Deno.copyFile(entry.from, target);
  const source = await Deno.stat(entry.from);
  if (source.mtime) {
    await Deno.utime(target, source.atime ?? source.mtime, source.mtime);
  }
}

async function sameContent(
  existing: string,
  entry: TreeEntry,
  link: boolean,
): Promise<boolean> {
  const old = await Deno.lstat(existing);
  if (!old.isFile) return false;
  if ("data" in entry) {
    const want = typeof entry.data === "string"
      ? new TextEncoder().encode(entry.data)
      : entry.data;
    if (old.size !== want.length) return false;
    const have = await Deno.readFile(existing);
    return have.every((b, i) => b === want[i]);
  }
  const source = await Deno.stat(entry.from);
  const sameInode = old.ino !== null && old.ino === source.ino &&
    old.dev === source.dev;
  if (link) return sameInode;
  return !sameInode && old.size === source.size &&
    old.mtime?.getTime() === source.mtime?.getTime();
}

/** Relative paths of all files under `root`, with `/` separators. */
async function listFiles(root: string): Promise<Set<string>> {
  const files = new Set<string>();
  const walk = async (dir: string) => {
    for await (const item of Deno.readDir(dir)) {
      const full = join(dir, item.name);
      if (item.isDirectory) await walk(full);
      else files.add(normalize(relative(root, full)));
    }
  };
  await walk(root);
  return files;
}

function normalize(path: string): string {
  return path.split(sep).join("/");
}

function checkRelative(path: string, dest: string): string {
  const key = normalize(path);
  const inside = resolve(dest, key);
  if (
    key === "" || key.startsWith("/") ||
    !inside.startsWith(resolve(dest) + sep)
  ) {
    throw new Error(
      `Tree for "${dest}" has entry "${path}": expected a relative path inside it`,
    );
  }
  return key;
}

function isCrossDevice(error: unknown): boolean {
  return error instanceof Error &&
    ((error as { code?: string }).code === "EXDEV" ||
      /cross-device/i.test(error.message));
}

async function statOrUndefined(
  path: string,
): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  return (await statOrUndefined(path)) !== undefined;
}

async function isDirectory(path: string): Promise<boolean> {
  return (await statOrUndefined(path))?.isDirectory ?? false;
}

/** Removes a file or tree, ignoring one that is already gone. */
export async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch {
    // Already gone, or never created: nothing to clean up.
  }
}
