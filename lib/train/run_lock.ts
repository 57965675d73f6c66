/**
 * One writer per run folder: `run.lock`, held for the whole run, so that two
 * runs started with the same name never interleave their `metrics.jsonl`
 * lines or checkpoints; the second one refuses, naming the first one's
 * process id.
 *
 * The lock file is created atomically (`O_CREAT | O_EXCL`) and holds the
 * owner's pid. Whether its owner is alive is asked of the kernel rather than
 * guessed from the pid: the owner holds an exclusive `flock` on the file,
 * which the kernel drops when the process ends, however it ends (SIGKILL,
 * power loss aside). So a lock file left by a killed run is stale exactly
 * when no process holds its `flock`, which stays right when the pid has been
 * reused by another program, and needs no permission to inspect processes
 * (the training tasks and the `rerun` sandbox have none). A stale lock is
 * taken over and its pid reported.
 *
 * Under the lock, {@linkcode removeStaleTemps} deletes the temporary files
 * of writes that a kill cut short (see `siblingTempPath` in
 * lib/io/atomic.ts): no other writer can be using them.
 *
 * @module
 */
import { join } from "node:path";
import { isTempName, removeQuietly, withPath } from "../io/atomic.ts";

/** The lock file's name inside a run folder. */
export const LOCK_FILE = "run.lock";

/** A held run-folder lock. */
export interface RunLock {
  /** The lock file. */
  path: string;
  /** The pid recorded in a stale lock that was taken over, else `null`. */
  stalePid: number | null;
  /** Deletes the lock file and drops the lock. */
  release(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Takes the lock of run folder `dir` (which must exist). Throws, naming the
 * holder's pid, when another process (or another open of this one) holds it.
 */
export async function acquireRunLock(dir: string): Promise<RunLock> {
  const path = join(dir, LOCK_FILE);
  // A few rounds: a run that is releasing may delete the file under us.
  for (let round = 0; round < 8; round++) {
    let file: Deno.FsFile;
    let created = true;
    try {
      file = await Deno.open(path, {
        read: true,
        write: true,
        createNew: true,
      });
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw withPath(e, path);
      created = false;
      try {
        file = await Deno.open(path, { read: true, write: true });
      } catch (e2) {
        if (e2 instanceof Deno.errors.NotFound) continue;
        throw withPath(e2, path);
      }
    }
    try {
      if (!(await file.tryLock(true))) {
        const holder = pidOf(await readAll(file));
        throw new Error(
          `Run folder "${dir}" is in use by ${
            holder === null ? "another process" : `process ${holder}`
          } (lock file "${path}"): wait for that run to end, or choose another save name (-s)`,
        );
      }
      // Still the file at `path`? A run releasing its lock unlinks it first.
      const mine = await file.stat();
      const now = await Deno.stat(path).catch(() => null);
      if (now === null || now.ino !== mine.ino || now.dev !== mine.dev) {
        file.close();
        continue;
      }
      const stalePid = created ? null : pidOf(await readAll(file));
      const text = JSON.stringify({
        pid: Deno.pid,
        startedAt: new Date().toISOString(),
      }) + "\n";
      await file.truncate(0);
      await file.seek(0, Deno.SeekMode.Start);
      await file.write(new TextEncoder().encode(text));
      let released = false;
      const release = async () => {
        if (released) return;
        released = true;
        await removeQuietly(path);
        file.close();
      };
      return { path, stalePid, release, [Symbol.asyncDispose]: release };
    } catch (e) {
      try {
        file.close();
      } catch {
        // Already closed above.
      }
      throw e;
    }
  }
  throw new Error(
    `Cannot lock run folder "${dir}": "${path}" keeps being replaced`,
  );
}

/**
 * Deletes leftovers of interrupted atomic writes in `dir` (call it while
 * holding the folder's lock); returns their names.
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!isTempName(entry.name)) continue;
    await removeQuietly(join(dir, entry.name));
    removed.push(entry.name);
  }
  return removed.sort();
}

async function readAll(file: Deno.FsFile): Promise<string> {
  await file.seek(0, Deno.SeekMode.Start);
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(256);
  let total = 0;
  while (total < 4096) {
    const n = await file.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    total += n;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return new TextDecoder().decode(all);
}

function pidOf(text: string): number | null {
  try {
    const pid = JSON.parse(text)?.pid;
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
