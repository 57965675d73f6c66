/**
 * What every task's command line shares: parsing with commander without
 * reading the environment (its colour detection would need `--allow-env`),
 * and the entry point that turns errors into one line and an exit code.
 *
 * @module
 */
import { type Command, CommanderError } from "commander";
import { permissionHint } from "../lib/cli/permission_hint.ts";
import { usageMessage } from "../lib/cli/usage.ts";
import type { ProgressStream } from "../lib/io/progress.ts";

/** What a task's `main` writes to, replaceable in tests. */
export interface MainOptions {
  /** Where result lines go. @default console.log */
  print?: (line: string) => void;
  /** Where progress bars go. @default Deno.stderr */
  progress?: ProgressStream;
}

/**
 * Bad usage of a task's command line (an unknown option, a missing
 * argument): {@linkcode runTask} prints it on one line and exits with 2, as
 * the training tasks and `demo` do.
 */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Parses `args` (without the program name) with `program`. Returns false
 * when `--help` was shown (the caller should stop), throws a
 * {@linkcode UsageError} for bad usage: commander's message as one clause,
 * with its "did you mean" and a `--help` hint.
 */
export function parseCommand(
  program: Command,
  args: readonly string[],
  print: (line: string) => void = console.log,
): boolean {
  program
    .exitOverride()
    .configureOutput({
      writeOut: (s) => print(s.trimEnd()),
      writeErr: () => {},
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    });
  try {
    program.parse([...args], { from: "user" });
    return true;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === "commander.helpDisplayed" || err.code === "commander.help"
      ) return false;
      throw new UsageError(
        `${
          usageMessage(err.message)
        }; see \`deno task ${program.name()} --help\``,
      );
    }
    throw err;
  }
}

/**
 * Runs a task's `main` as the program: its returned exit code (0 when it
 * returns nothing), commander's own code for help and usage errors it has
 * already printed, 2 for a {@linkcode UsageError}, or 1 for any other error;
 * each error is one line, `<name>: <message>` (for a permission error: the
 * `deno run ...` command that would work).
 */
export async function runTask(
  name: string,
  main: () => Promise<number | void>,
  args: readonly string[] = Deno.args,
): Promise<void> {
  try {
    Deno.exitCode = (await main()) ?? 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      Deno.exitCode = err.exitCode;
      return;
    }
    console.error(errorLine(name, err, args));
    Deno.exitCode = err instanceof UsageError ? 2 : 1;
  }
}

/**
 * The one line a task prints for an error: `<name>: <first line of the
 * message>`, or for a permission error what was refused and the `deno run`
 * command that grants it.
 */
export function errorLine(
  name: string,
  err: unknown,
  args: readonly string[] = Deno.args,
): string {
  const hint = permissionHint(err, name, args);
  if (hint !== null) return hint;
  const message = err instanceof Error ? err.message : String(err);
  return `${name}: ${message}`;
}
