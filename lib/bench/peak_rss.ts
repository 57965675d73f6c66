/**
 * Peak resident memory of this process, the figure `/usr/bin/time -v` calls
 * "maximum resident set size".
 *
 * Linux keeps it as `VmHWM` in `/proc/self/status` (needs
 * `--allow-read=/proc/self/status`); elsewhere, or without the permission,
 * the fallback is the largest `Deno.memoryUsage().rss` seen by
 * {@linkcode RssTracker.sample}, which can miss short spikes between samples.
 *
 * @module
 */

const STATUS = "/proc/self/status";

/** `VmHWM` of `/proc/self/status` in bytes, or undefined when unreadable. */
export function kernelPeakRss(): number | undefined {
  if (Deno.build.os !== "linux") return undefined;
  const perm = Deno.permissions.querySync({ name: "read", path: STATUS });
  if (perm.state !== "granted") return undefined;
  let text: string;
  try {
    text = Deno.readTextFileSync(STATUS);
  } catch {
    return undefined;
  }
  const match = /^VmHWM:\s*(\d+)\s*kB$/m.exec(text);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** Tracks peak RSS: the kernel's figure when it has one, else samples. */
export class RssTracker {
  #sampled = 0;

  /** Records the current RSS (call it where memory is likely highest). */
  sample(): void {
    this.#sampled = Math.max(this.#sampled, Deno.memoryUsage().rss);
  }

  /** Peak RSS in bytes so far, and where the figure came from. */
  peak(): { bytes: number; source: "VmHWM" | "sampled" } {
    this.sample();
    const kernel = kernelPeakRss();
    return kernel === undefined
      ? { bytes: this.#sampled, source: "sampled" }
      : { bytes: Math.max(kernel, this.#sampled), source: "VmHWM" };
  }
}
