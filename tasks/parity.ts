/**
 * `deno task parity --fixtures DIR [--out FILE] [--backend NAME]`: computes,
 * from the golden inputs in DIR, every output key the reference fixtures
 * define, writes them to FILE (safetensors) under the same names when asked,
 * prints each key's error against DIR's goldens, and exits non-zero when a
 * tolerance is broken.
 *
 * @module
 */
import { Command, Option } from "commander";
import { parseCommand, runTask } from "./_cli.ts";
import {
  type BackendName,
  BACKENDS,
  initBackend,
} from "../lib/backend/backend.ts";
import { parityPassed, runParity } from "../lib/parity/run.ts";
import { writeSafetensors } from "../lib/weights/safetensors.ts";

function format(n: number): string {
  return Number.isFinite(n) ? n.toExponential(2) : String(n);
}

/** Runs the task; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const program = new Command("parity")
    .description(
      "Compute the reference fixtures' keys and compare them with the goldens",
    )
    .requiredOption("--fixtures <dir>", "folder with the golden fixtures")
    .option(
      "--out <file>",
      "safetensors file to write the computed tensors to (default: none)",
    )
    .addOption(
      new Option("--backend <name>", "compute backend").choices(BACKENDS)
        .default("wasm"),
    )
    .option("--quiet", "print only failures and the summary");
  if (!parseCommand(program, args)) return 0;
  const opts = program.opts<
    { fixtures: string; out?: string; backend: BackendName; quiet?: boolean }
  >();
  await initBackend(opts.backend);
  const report = await runParity(opts.fixtures, {
    log: (l) => console.error(l),
  });
  if (report.sections.length === 0) {
    console.error(`No fixtures found in "${opts.fixtures}"`);
    return 1;
  }
  if (opts.out) await writeSafetensors(opts.out, report.computed);
  const width = Math.max(...report.comparisons.map((c) => c.key.length), 10);
  for (const c of report.comparisons) {
    if (opts.quiet && c.ok) continue;
    const status = c.ok ? "ok  " : "FAIL";
    const detail = c.detail ? `  ${c.detail}` : "";
    console.log(
      `${status} ${c.key.padEnd(width)} ${c.kind.padEnd(9)} err ${
        format(c.error)
      } <= ${format(c.bound)}${detail}`,
    );
  }
  for (const key of report.missing) {
    console.log(`FAIL ${key.padEnd(width)} not computed`);
  }
  for (const p of report.problems) console.log(`FAIL ${p}`);
  const failed = report.comparisons.filter((c) => !c.ok).length +
    report.missing.length +
    report.problems.length;
  console.log(
    `parity: ${report.computed.size} keys ${
      opts.out ? `written to ${opts.out}` : "computed"
    }; ` +
      `${report.comparisons.length} compared, ${failed} failed (sections: ${
        report.sections.join(", ")
      })`,
  );
  return parityPassed(report) ? 0 : 1;
}

if (import.meta.main) await runTask("parity", () => main(Deno.args));
