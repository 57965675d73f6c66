/**
 * Builds the project's C kernels (`lib/backend/native/cufit_kernels.c`) into
 * `lib/backend/native/build/`, where the training, evaluation and bench
 * tasks find them. Optional: without them the same kernels run in
 * TypeScript on one thread (slower at 224 px, same results).
 *
 *   deno task build:native
 *
 * It runs `cc` (the system C compiler: gcc or clang).
 *
 * @module
 */
import { Command } from "commander";
import { parseCommand, runTask } from "./_cli.ts";
import { buildCKernels } from "../lib/backend/native/build.ts";

/** Runs the task with `args`; returns the exit code. */
export async function main(
  args: readonly string[],
  print: (line: string) => void = console.log,
): Promise<number | void> {
  const program = new Command()
    .name("build:native")
    .description(
      "Compile the C kernels (GELU, softmax backward, batched small matmuls on every core)",
    );
  if (!parseCommand(program, args, print)) return;
  const built = await buildCKernels();
  print(`built ${built.path} (source id ${built.sourceId})`);
}

if (import.meta.main) {
  await runTask("build:native", () => main(Deno.args));
}
