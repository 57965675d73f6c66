/**
 * Builds the C kernels (`cufit_kernels.c`) into the library that
 * `c_kernels.ts` loads: one compiler call into a temporary file beside the
 * target, a check that the result loads and carries the source's id, then
 * a rename over the old library (a process that has the old one open keeps
 * running on it).
 *
 * @module
 */
import {
  C_KERNELS_SOURCE,
  cufitSourceId,
  defaultCKernelsPath,
  loadCKernels,
} from "./c_kernels.ts";

/** Options of {@linkcode buildCKernels}. */
export interface BuildCKernelsOptions {
  /** Compiler command. @default "cc" */
  cc?: string;
  /** Library to write. @default {@linkcode defaultCKernelsPath} */
  out?: string;
  /** Progress lines. @default console.error */
  log?: (line: string) => void;
}

/** What {@linkcode buildCKernels} made. */
export interface BuildCKernelsResult {
  /** The library written. */
  path: string;
  /** The full compiler command line. */
  command: string[];
  /** The source id built in, as hex. */
  sourceId: string;
}

/**
 * Compiler flags. `-ffp-contract=off` keeps every multiply and add rounded
 * as written (no fused multiply-adds), so that results match the
 * TypeScript kernels; `-fno-trapping-math` and `-fno-math-errno` change no
 * result, they only let the compiler vectorize the branch-free loops.
 */
export function cFlags(os: typeof Deno.build.os = Deno.build.os): string[] {
  return [
    "-O3",
    "-std=c11",
    "-ffp-contract=off",
    "-fno-trapping-math",
    "-fno-math-errno",
    "-fPIC",
    os === "darwin" ? "-dynamiclib" : "-shared",
    "-Wall",
  ];
}

/** Compiles and installs the C kernels; throws with the compiler's output. */
export async function buildCKernels(
  options: BuildCKernelsOptions = {},
): Promise<BuildCKernelsResult> {
  const log = options.log ?? ((line: string) => console.error(line));
  const cc = options.cc ?? "cc";
  const out = options.out ?? defaultCKernelsPath();
  if (out === undefined || C_KERNELS_SOURCE.protocol !== "file:") {
    throw new Error(
      "The C kernels can only be built from a local checkout (this module was imported from a URL)",
    );
  }
  const source = decodeURIComponent(C_KERNELS_SOURCE.pathname);
  const id = cufitSourceId(await Deno.readFile(source));
  const hex = `0x${id.toString(16).padStart(16, "0")}`;
  const dir = out.slice(0, out.lastIndexOf("/")) || ".";
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${out}.tmp-${Deno.pid}`;
  const command = [
    cc,
    ...cFlags(),
    `-DCUFIT_SOURCE_ID=${hex}ULL`,
    "-o",
    tmp,
    source,
    "-lpthread",
    // Never unmapped while the process runs: the pool threads live in it.
    ...(Deno.build.os === "linux" ? ["-lm", "-Wl,-z,nodelete"] : []),
  ];
  log(`build:native: ${command.join(" ")}`);
  let result: Deno.CommandOutput;
  try {
    result = await new Deno.Command(cc, {
      args: command.slice(1),
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `No C compiler "${cc}" found: install one (Debian: apt-get install gcc)`,
      );
    }
    throw e;
  }
  const text = new TextDecoder().decode(result.stderr).trim();
  if (!result.success) {
    await Deno.remove(tmp).catch(() => {});
    throw new Error(
      `${cc} failed (exit ${result.code}):\n${text || "(no output)"}`,
    );
  }
  if (text) log(text);
  const loaded = loadCKernels({ path: tmp, threads: 1 });
  if ("error" in loaded) {
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`The library just built does not load: ${loaded.error}`);
  }
  await Deno.rename(tmp, out);
  return { path: out, command, sourceId: hex };
}
