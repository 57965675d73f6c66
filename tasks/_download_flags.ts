/**
 * The flags the fetch tasks share: how long a request may stay silent and
 * how often a stalled or cut download is resumed before giving up.
 *
 * @module
 */
import type { Command } from "commander";

/** The flags as commander returns them. */
export interface DownloadFlagValues {
  timeout: string;
  retries: string;
}

/** Adds `--timeout <seconds>` and `--retries <n>` to `program`. */
export function addDownloadFlags(program: Command): Command {
  return program
    .option(
      "--timeout <seconds>",
      "drop a request that sends nothing for this long, and resume it",
      "60",
    )
    .option(
      "--retries <n>",
      "automatic resumes after a stalled or cut connection",
      "3",
    );
}

/** The download options the flags stand for; throws naming a bad flag. */
export function downloadOptions(
  flags: DownloadFlagValues,
): { idleTimeoutMs: number; retries: number } {
  const seconds = /^\d+(\.\d+)?$/.test(flags.timeout)
    ? Number(flags.timeout)
    : NaN;
  if (!(seconds > 0)) {
    throw new Error(
      `--timeout is "${flags.timeout}": expected a positive number of seconds`,
    );
  }
  if (!/^\d+$/.test(flags.retries) || Number(flags.retries) > 100) {
    throw new Error(
      `--retries is "${flags.retries}": expected a whole number from 0 to 100`,
    );
  }
  return { idleTimeoutMs: seconds * 1000, retries: Number(flags.retries) };
}
