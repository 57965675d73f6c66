/**
 * Downloads one MedMNIST v3 archive from Zenodo and checks its published MD5:
 *
 * ```sh
 * deno run --allow-net=zenodo.org --allow-read=data/medmnist --allow-write=data/medmnist \
 *   tasks/fetch_medmnist.ts bloodmnist --size 224
 * ```
 *
 * Writes only `<out>/<flag>_<size>.npz` (`<flag>.npz` for 28 px, as upstream
 * names it), through `<file>.part`; an interrupted download resumes on the
 * next run, and a verified file is not fetched again. A request silent for
 * `--timeout` seconds is dropped and resumed (`--retries` times), and a body
 * larger than any archive of that flag and size could be is cut off.
 *
 * @module
 */
import { Command } from "commander";
import { type MainOptions, parseCommand, runTask } from "./_cli.ts";
import {
  addDownloadFlags,
  type DownloadFlagValues,
  downloadOptions,
} from "./_download_flags.ts";
import { join } from "node:path";
import { download } from "../lib/io/download.ts";
import { formatBytes, Progress } from "../lib/io/progress.ts";
import {
  MEDMNIST_BASE_URL,
  MEDMNIST_MD5,
  MEDMNIST_SIZES,
  medmnistSource,
} from "../lib/prepare/sources.ts";

/** Runs the CLI on `args` (without the program name); throws on bad input. */
export async function main(
  args: string[] = Deno.args,
  options: MainOptions = {},
): Promise<void> {
  const print = options.print ?? console.log;
  const program = new Command()
    .name("fetch:medmnist")
    .description("Download a MedMNIST v3 archive (.npz) and check its MD5")
    .argument("<flag>", `dataset, e.g. ${Object.keys(MEDMNIST_MD5).join(", ")}`)
    .option("--size <px>", `image size: ${MEDMNIST_SIZES.join(", ")}`, "224")
    .option("--out <dir>", "folder for the archive", "data/medmnist")
    .option("--md5 <hex>", "expected MD5, for a flag without a recorded one")
    .option(
      "--base-url <url>",
      "mirror holding the same file names (tests use a local server)",
      MEDMNIST_BASE_URL,
    );
  addDownloadFlags(program);
  if (!parseCommand(program, args, print)) return;
  const flags = program.opts<
    {
      size: string;
      out: string;
      md5?: string;
      baseUrl: string;
    } & DownloadFlagValues
  >();
  const network = downloadOptions(flags);
  if (!/^\d+$/.test(flags.size)) {
    throw new Error(
      `--size is "${flags.size}": expected one of ${MEDMNIST_SIZES.join(", ")}`,
    );
  }
  const size = Number(flags.size);
  const source = medmnistSource(program.args[0], size, {
    baseUrl: flags.baseUrl,
    md5: flags.md5,
  });
  const dest = join(flags.out, source.fileName);
  print(`Writing ${dest} (from ${source.url})`);

  let bar: Progress | undefined;
  const result = await download(source.url, dest, {
    ...network,
    md5: source.md5,
    maxBytes: source.maxBytes,
    onProgress: (received, total) => {
      bar ??= new Progress(total ?? 0, {
        label: source.fileName,
        bytes: true,
        initial: received,
        stream: options.progress,
      });
      bar.tick(received - bar.count);
    },
  });
  bar?.done();
  print(
    `${dest}: ${formatBytes(result.bytes)}, md5 ${result.md5} ` +
      (result.skipped ? "(already present, verified)" : "(verified)"),
  );
}

if (import.meta.main) await runTask("fetch:medmnist", () => main());
