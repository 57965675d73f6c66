/**
 * Entry-point handling shared by tasks: commander's help/usage exits keep
 * their codes, other errors print one line (no stack trace) and exit 1.
 *
 * @module
 */
import { CommanderError } from "commander";

/** Runs a task's main; returns the process exit code. */
export async function runCli(
  name: string,
  main: () => Promise<number>,
): Promise<number> {
  try {
    return await main();
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    console.error(`${name}: ${(err as Error).message}`);
    return 1;
  }
}
