/**
 * What a benchmark table says about the machine and the software: CPU model,
 * cores, memory, OS, Deno/V8/TypeScript, tfjs and OpenBLAS versions. Each
 * item that cannot be read (no permission, not Linux) reads "unknown".
 *
 * @module
 */
import os from "node:os";
import { loadOpenBlas } from "../backend/native/openblas.ts";

/** A description of this machine and runtime. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGb?: number;
  os: string;
  deno: string;
  v8: string;
  typescript: string;
  tfjs: string;
  openblas: string;
}

function granted(desc: Deno.PermissionDescriptor): boolean {
  return Deno.permissions.querySync(desc).state === "granted";
}

/** The CPU model (`os.cpus()`, needs `--allow-sys=cpus`), or "unknown CPU". */
export function cpuModel(): string {
  if (!granted({ name: "sys", kind: "cpus" })) return "unknown CPU";
  try {
    return os.cpus()[0]?.model?.trim() || "unknown CPU";
  } catch {
    return "unknown CPU";
  }
}

/**
 * The kernel set a DYNAMIC_ARCH OpenBLAS picked for this CPU
 * (`openblas_get_corename`); its config string names only the build target.
 */
function openBlasCore(path: string): string | undefined {
  try {
    const lib = Deno.dlopen(path, {
      openblas_get_corename: { parameters: [], result: "pointer" },
    });
    try {
      const ptr = lib.symbols.openblas_get_corename();
      return ptr === null
        ? undefined
        : new Deno.UnsafePointerView(ptr).getCString();
    } finally {
      lib.close();
    }
  } catch {
    return undefined;
  }
}

/** Describes the machine; `tfjs` is the version the caller loaded. */
export function describeMachine(tfjs: string): MachineInfo {
  let memoryGb: number | undefined;
  if (granted({ name: "sys", kind: "systemMemoryInfo" })) {
    memoryGb = Deno.systemMemoryInfo().total / 1024 ** 3;
  }
  const release = granted({ name: "sys", kind: "osRelease" })
    ? ` ${Deno.osRelease()}`
    : "";
  const blas = loadOpenBlas();
  let openblas: string;
  if ("error" in blas) {
    openblas = `not used (${blas.error})`;
  } else {
    const core = openBlasCore(blas.path);
    openblas = `${blas.config || blas.path}${
      core ? `; running the ${core} kernels` : ""
    }, ${blas.threads} threads`;
    blas.close();
  }
  return {
    cpu: cpuModel(),
    cores: navigator.hardwareConcurrency,
    memoryGb,
    os: `${Deno.build.os}${release} (${Deno.build.arch})`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    tfjs,
    openblas,
  };
}
