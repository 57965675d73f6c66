/**
 * Peak resident memory of this process, the figure `/usr/bin/time -v` calls
 * "maximum resident set size".
 *
 * The kernel keeps it: `getrusage(RUSAGE_SELF).ru_maxrss`, read through FFI
 * from the C library (needs `--allow-ffi`; Deno refuses `/proc/self/status`
 * without `--allow-all`). Without FFI the fallback is the largest
 * `Deno.memoryUsage().rss` seen by {@linkcode RssTracker.sample}, which can
 * miss spikes between samples.
 *
 * @module
 */

const RUSAGE_SELF = 0;
/** `struct rusage` is 144 bytes on 64-bit Linux and macOS; 256 is ample. */
const RUSAGE_BYTES = 256;
/** `ru_maxrss` follows the two `struct timeval`s (16 bytes each on 64-bit). */
const MAXRSS_OFFSET = 32;

function libcPath(): string | undefined {
  if (Deno.build.os === "linux") return "libc.so.6";
  if (Deno.build.os === "darwin") return "libSystem.B.dylib";
  return undefined;
}

/** `ru_maxrss` in bytes, or undefined when FFI or libc is unavailable. */
export function kernelPeakRss(): number | undefined {
  const path = libcPath();
  if (path === undefined) return undefined;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    return undefined;
  }
  let lib;
  try {
    lib = Deno.dlopen(path, {
      getrusage: { parameters: ["i32", "buffer"], result: "i32" },
    });
  } catch {
    return undefined;
  }
  try {
    const buf = new BigInt64Array(RUSAGE_BYTES / 8);
    if (lib.symbols.getrusage(RUSAGE_SELF, buf) !== 0) return undefined;
    const value = Number(buf[MAXRSS_OFFSET / 8]);
    // Linux counts kilobytes, macOS bytes.
    return Deno.build.os === "darwin" ? value : value * 1024;
  } finally {
    lib.close();
  }
}

/** Tracks peak RSS: the kernel's figure when it has one, else samples. */
export class RssTracker {
  #sampled = 0;

  /** Records the current RSS (call it where memory is likely highest). */
  sample(): void {
    this.#sampled = Math.max(this.#sampled, Deno.memoryUsage().rss);
  }

  /** Peak RSS in bytes so far, and where the figure came from. */
  peak(): { bytes: number; source: "getrusage" | "sampled" } {
    this.sample();
    const kernel = kernelPeakRss();
    return kernel === undefined
      ? { bytes: this.#sampled, source: "sampled" }
      : { bytes: Math.max(kernel, this.#sampled), source: "getrusage" };
  }
}
