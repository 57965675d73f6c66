/**
 * Downloads DINOv2 backbone weights:
 *
 * ```sh
 * deno run --allow-net=dl.fbaipublicfiles.com,huggingface.co,*.hf.co,cdn-lfs.huggingface.co \
 *   --allow-read=data/weights --allow-write=data/weights \
 *   tasks/fetch_weights.ts dinov2_vits14 --source meta
 * ```
 *
 * `--source meta` (default) fetches Meta's `<name>_pretrain.pth`, the file the
 * reference loads through torch hub; `--source hf` fetches the Hub's
 * `model.safetensors` as `<name>_hf.safetensors`. The size is checked against
 * the server's Content-Length; for the Hub also against the SHA-256 it
 * announces (`X-Linked-Etag`). Meta publishes no checksum, so a first Meta
 * download is checked by size only. Either way the SHA-256 is written to
 * `<file>.sha256` (sha256sum format) and a re-run verifies the file against it
 * instead of downloading again. A request silent for `--timeout` seconds is
 * dropped and resumed (`--retries` times); a body larger than the model's
 * float32 parameters could fill (plus 1% and 1 MiB) is cut off.
 *
 * The Hub redirects downloads to storage hosts that change over time
 * (`cas-bridge.xethub.hf.co`, `cdn-lfs*.hf.co`, `*.cdn.hf.co`, formerly
 * `cdn-lfs.huggingface.co`); `*.hf.co` covers the current ones.
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
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { download } from "../lib/io/download.ts";
import { formatBytes, Progress } from "../lib/io/progress.ts";
import {
  DINOV2_MODELS,
  dinov2Source,
  fetchHfFileInfo,
  type HfFileInfo,
  type WeightsSource,
} from "../lib/prepare/sources.ts";

/** Runs the CLI on `args` (without the program name); throws on bad input. */
export async function main(
  args: string[] = Deno.args,
  options: MainOptions = {},
): Promise<void> {
  const print = options.print ?? console.log;
  const program = new Command()
    .name("fetch:weights")
    .description("Download DINOv2 weights and record their SHA-256")
    .argument("<name>", Object.keys(DINOV2_MODELS).join(" | "))
    .option(
      "--source <source>",
      "meta (torch hub .pth) or hf (safetensors)",
      "meta",
    )
    .option("--out <dir>", "folder for the weights", "data/weights")
    .option(
      "--base-url <url>",
      "mirror standing in for the source host (tests use a local server)",
    );
  addDownloadFlags(program);
  if (!parseCommand(program, args, print)) return;
  const flags = program.opts<
    { source: string; out: string; baseUrl?: string } & DownloadFlagValues
  >();
  const network = downloadOptions(flags);
  const source = dinov2Source(program.args[0], flags.source as WeightsSource, {
    baseUrl: flags.baseUrl,
  });
  const dest = join(flags.out, source.fileName);
  const sidecar = `${dest}.sha256`;
  print(`Writing ${dest} and ${sidecar} (from ${source.url})`);

  let announced: HfFileInfo = {};
  if (flags.source === "hf") {
    announced = await withNetHint(
      source.url,
      () => fetchHfFileInfo(source.url, { timeoutMs: network.idleTimeoutMs }),
    );
  }
  const recorded = await readSidecar(sidecar);
  let bar: Progress | undefined;
  const result = await withNetHint(
    source.url,
    () =>
      download(source.url, dest, {
        ...network,
        sha256: announced.sha256 ?? recorded,
        size: announced.size,
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
      }),
  );
  bar?.done();
  await writeFileAtomic(sidecar, `${result.sha256}  ${source.fileName}\n`);
  const checked = announced.sha256
    ? "matches the SHA-256 the Hub announces"
    : recorded
    ? `matches ${sidecar}`
    : "size checked; no published checksum";
  print(
    `${dest}: ${
      formatBytes(result.bytes)
    }, sha256 ${result.sha256} (${checked}` +
      `${result.skipped ? ", already present" : ""})`,
  );
}

async function readSidecar(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  const digest = text.trim().split(/\s+/)[0]?.toLowerCase() ?? "";
  if (!/^[0-9a-f]{64}$/.test(digest)) {
    throw new Error(
      `Checksum file "${path}" holds "${text.trim()}": expected a SHA-256 (64 hex digits)`,
    );
  }
  return digest;
}

/** Names the host to allow when a redirect leaves the --allow-net list. */
async function withNetHint<T>(url: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const host = error instanceof Deno.errors.NotCapable
      ? /net access to "([^":]+)/.exec(error.message)?.[1]
      : undefined;
    if (host !== undefined && host !== new URL(url).hostname) {
      throw new Error(
        `${
          error instanceof Error ? error.message : error
        } (${url} redirected ` +
          `to ${host}, which is missing from --allow-net: add it to the fetch:weights task)`,
      );
    }
    throw error;
  }
}

if (import.meta.main) await runTask("fetch:weights", () => main());
