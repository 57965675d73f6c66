/**
 * Durable all-or-nothing file writes for run folders and checkpoints: data
 * goes to a temporary sibling, is flushed to disk, then renamed over the
 * target, so a crash leaves either the old file or the new one.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";

/** A temporary path beside `path` (same folder, hence same filesystem). */
export function tempPathFor(path: string): string {
  const random = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  return join(dirname(path), `.${basename(path)}.tmp-${Deno.pid}-${random}`);
}

/** Writes every byte, looping over short writes. */
export async function writeAll(
  file: Deno.FsFile,
  bytes: Uint8Array,
): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

/** Writes `data` to a temporary file and flushes it; returns the temp path. */
export async function writeTemp(
  path: string,
  data: Uint8Array | string,
): Promise<string> {
  const temp = tempPathFor(path);
  const bytes = typeof data === "string"
    ? new TextEncoder().encode(data)
    : data;
  try {
    using file = await Deno.open(temp, {
      write: true,
      createNew: true,
    });
    await writeAll(file, bytes);
    await file.syncData();
  } catch (e) {
    await removeQuietly(temp);
    throw e;
  }
  return temp;
}

/** Writes `data` to `path` through a flushed temporary file and a rename. */
export async function writeAtomic(
  path: string,
  data: Uint8Array | string,
): Promise<void> {
  const temp = await writeTemp(path, data);
  try {
    await Deno.rename(temp, path);
  } catch (e) {
    await removeQuietly(temp);
    throw e;
  }
}

/** Removes a file, ignoring a missing one. */
export async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch {
    // Never created, or already gone: nothing to clean up.
  }
}
