/**
 * One switch for the compute backend: `auto`, `webgpu`, `tensorflow-gpu`,
 * `tensorflow`, `wasm` or `cpu`.
 *
 * `webgpu` (`./webgpu/`) runs on Deno's built-in WebGPU. `auto` takes it
 * only on a real GPU adapter (not a fallback or software one), and says why
 * it took or skipped each candidate.
 *
 * The native TensorFlow backends (`@tensorflow/tfjs-node(-gpu)`) are optional:
 * their install script downloads libtensorflow, which is not part of this
 * project's default install. Choosing one that is missing fails with the steps
 * to install it.
 *
 * @module
 */
import { tf } from "./tf.ts";
import {
  adapterLine,
  type AdapterReport,
  autoReason,
  isRealGpu,
  probeAdapter,
} from "./webgpu/adapter.ts";

/** Names accepted by `--backend`. */
export const BACKENDS = [
  "auto",
  "webgpu",
  "tensorflow-gpu",
  "tensorflow",
  "wasm",
  "cpu",
] as const;

/** A backend name accepted by {@linkcode initBackend}. */
export type BackendName = typeof BACKENDS[number];

/** What {@linkcode initBackend} set up. */
export interface BackendInfo {
  /** The name asked for. */
  requested: BackendName;
  /** The backend in use (never `auto`). */
  name: Exclude<BackendName, "auto">;
  /** tfjs's own name for it (`tensorflow`, `wasm`, `cpu`). */
  tfName: string;
  /** Kernels replaced by native code (OpenBLAS), if any. */
  nativeKernels: string[];
  /** Why native kernels are not active, when they are not. */
  nativeReason?: string;
  /**
   * The project's C kernels (the work around the matrix products, on every
   * core), when built and loaded next to OpenBLAS.
   */
  cKernels?: { path: string; threads: number };
  /** Why the C kernels are not in use, when OpenBLAS is. */
  cKernelsReason?: string;
  /** tfjs version. */
  tfjsVersion: string;
  /** The machine's WebGPU adapter (named on the first line whatever the backend). */
  adapter: AdapterReport;
  /** Why `auto` took or skipped each candidate (empty for a named backend). */
  reasons: string[];
}

/**
 * The backend as reports name it: tfjs's name, `+openblas` when native
 * matmul kernels replaced the backend's own, `+c` when the C kernels ran
 * too (`wasm+openblas+c`).
 */
export function backendLabel(
  info: Pick<BackendInfo, "tfName" | "nativeKernels" | "cKernels">,
): string {
  return info.tfName + (info.nativeKernels.length > 0 ? "+openblas" : "") +
    (info.cKernels ? "+c" : "");
}

/** Raised when a backend cannot be loaded; the message says how to fix it. */
export class BackendUnavailableError extends Error {
  override name = "BackendUnavailableError";
}

const NODE_PACKAGES = {
  "tensorflow-gpu": "@tensorflow/tfjs-node-gpu",
  "tensorflow": "@tensorflow/tfjs-node",
} as const;

/** The steps that install an optional tfjs-node backend under Deno. */
export function installHint(name: "tensorflow-gpu" | "tensorflow"): string {
  const pkg = NODE_PACKAGES[name];
  const gpu = name === "tensorflow-gpu"
    ? "\n  It needs an NVIDIA driver with CUDA 11.2 and cuDNN 8.1 libraries on the library path" +
      " (libtensorflow 2.9.1; Hopper GPUs JIT-compile its kernels from PTX on first use)."
    : "";
  return [
    `The "${name}" backend needs ${pkg}@4.22.0, which is not installed.`,
    "  Install it into this project's local node_modules, allowing its install script",
    "  (which downloads libtensorflow 2.9.1 from Google's storage):",
    `    deno install --allow-scripts=npm:${pkg}@4.22.0 npm:${pkg}@4.22.0`,
    "  then run tasks with --allow-ffi (the backend is a native addon), e.g.",
    `    deno run --allow-ffi --allow-read --allow-env ... --backend ${name}`,
  ].join("\n") + gpu;
}

/** Whether a package directory exists in the local node_modules. */
function localPackageExists(pkg: string): boolean {
  try {
    const root = new URL(
      "../../node_modules/" + pkg + "/package.json",
      import.meta.url,
    );
    return Deno.statSync(root).isFile;
  } catch {
    return false;
  }
}

async function loadNodeBackend(
  name: "tensorflow-gpu" | "tensorflow",
  gpu?: number,
): Promise<void> {
  const pkg = NODE_PACKAGES[name];
  // Import only what is installed: a dynamic import of a missing npm package
  // would make Deno try to download it (and skip its install script).
  if (!localPackageExists(pkg)) {
    throw new BackendUnavailableError(installHint(name));
  }
  // The reference's `-g N`: libtensorflow reads the visible devices once, at load.
  if (name === "tensorflow-gpu" && gpu !== undefined) {
    try {
      if (!Deno.env.get("CUDA_VISIBLE_DEVICES")) {
        Deno.env.set("CUDA_VISIBLE_DEVICES", String(gpu));
      }
    } catch {
      // No --allow-env: the default device stays.
    }
  }
  try {
    await import(pkg);
  } catch (err) {
    throw new BackendUnavailableError(
      `${installHint(name)}\n  Loading it failed: ${(err as Error).message}`,
    );
  }
  if (!(await tf.setBackend("tensorflow"))) {
    throw new BackendUnavailableError(
      `${pkg} loaded but its "tensorflow" backend did not initialize`,
    );
  }
}

/** Steps to get a WebGPU adapter, for the "no adapter" error. */
export const WEBGPU_HINT = [
  "  Linux: install the GPU's Vulkan driver (Debian/Ubuntu: mesa-vulkan-drivers for AMD/Intel;",
  "  NVIDIA's proprietary driver ships its own Vulkan ICD; in a container, NVIDIA_DRIVER_CAPABILITIES",
  "  must include graphics), check with `vulkaninfo --summary`.",
  "  macOS (Metal) and Windows (D3D12) need nothing. Or run with --backend wasm.",
].join("\n");

async function loadWebGpu(): Promise<AdapterReport> {
  const { loadWebGpuBackend } = await import("./webgpu/device.ts");
  try {
    return await loadWebGpuBackend();
  } catch (err) {
    throw new BackendUnavailableError(
      `The "webgpu" backend is unavailable: ${
        (err as Error).message
      }\n${WEBGPU_HINT}`,
    );
  }
}

async function loadWasmBackend(): Promise<void> {
  await import("@tensorflow/tfjs-backend-wasm");
  if (!(await tf.setBackend("wasm"))) {
    throw new BackendUnavailableError(
      'The "wasm" backend did not initialize (is @tensorflow/tfjs-backend-wasm installed?)',
    );
  }
}

/** Options of {@linkcode initBackend}. */
export interface InitBackendOptions {
  /**
   * Replace matmul-heavy kernels of the wasm/cpu backends with OpenBLAS
   * when the library is found (needs `--allow-ffi`).
   * @default true, unless the environment sets `CUFIT_NATIVE=0`
   */
  native?: boolean;
  /** Where progress lines go. @default console.error */
  log?: (line: string) => void;
  /**
   * GPU index for `tensorflow-gpu` (sets `CUDA_VISIBLE_DEVICES` unless it is
   * already set).
   * @default the first GPU
   */
  gpu?: number;
  /**
   * CPU threads for the native (OpenBLAS) kernels. The project sets the
   * count itself, so `OPENBLAS_NUM_THREADS` has no effect; this does.
   * @default every core (`navigator.hardwareConcurrency`)
   */
  threads?: number;
  /**
   * Use the project's C kernels next to OpenBLAS when they are built
   * (`deno task build:native`); false keeps their TypeScript versions.
   * @default true
   */
  cKernels?: boolean;
}

/**
 * Selects and initializes a backend. `auto` tries, in order, the GPU and CPU
 * TensorFlow backends when installed, then wasm, then cpu, and logs its pick.
 */
export async function initBackend(
  name: BackendName = "auto",
  options: InitBackendOptions = {},
): Promise<BackendInfo> {
  if (
    options.threads !== undefined &&
    !(Number.isInteger(options.threads) && options.threads >= 1)
  ) {
    throw new RangeError(
      `Backend option "threads" must be a positive integer, got ${options.threads}`,
    );
  }
  if (!(BACKENDS as readonly string[]).includes(name)) {
    throw new BackendUnavailableError(
      `Unknown backend "${name}": expected one of ${BACKENDS.join(", ")}`,
    );
  }
  const log = options.log ?? ((line: string) => console.error(line));
  let chosen: Exclude<BackendName, "auto">;
  let adapter: AdapterReport | undefined;
  const reasons: string[] = [];
  if (name === "auto") {
    ({ chosen, adapter } = await pickAuto(reasons, options.gpu));
  } else {
    chosen = name;
    if (name === "webgpu") adapter = await loadWebGpu();
    else if (name === "tensorflow-gpu" || name === "tensorflow") {
      await loadNodeBackend(name, options.gpu);
    } else if (name === "wasm") await loadWasmBackend();
    else if (!(await tf.setBackend("cpu"))) {
      throw new BackendUnavailableError('The "cpu" backend did not initialize');
    }
  }
  await tf.ready();
  // Named on every task's first line, also when a CPU backend was chosen.
  adapter ??= await probeAdapter();
  const info: BackendInfo = {
    requested: name,
    name: chosen,
    tfName: tf.getBackend(),
    nativeKernels: [],
    tfjsVersion: tf.version.tfjs,
    adapter,
    reasons,
  };
  if (chosen === "wasm" || chosen === "cpu") {
    if ((options.native ?? nativeFromEnv()) === false) {
      info.nativeReason = "disabled";
      // Kernels registered by an earlier call in this process go too.
      await import("./native/kernels.ts").then((n) =>
        n.unregisterNativeKernels(chosen)
      )
        .catch(() => {});
    } else {
      const native = await tryNativeKernels(
        chosen,
        options.threads,
        options.cKernels ?? true,
      );
      info.nativeKernels = native.active;
      info.nativeReason = native.reason;
      info.cKernels = native.cKernels;
      info.cKernelsReason = native.cReason;
    }
  }
  const cNote = info.cKernels
    ? `; C kernels on ${info.cKernels.threads} thread${
      info.cKernels.threads === 1 ? "" : "s"
    }`
    : info.cKernelsReason
    ? `; C kernels off (${info.cKernelsReason})`
    : "";
  const nativeNote = info.nativeKernels.length > 0
    ? `; native kernels: ${info.nativeKernels.join(", ")}${cNote}`
    : info.nativeReason
    ? `; native kernels off (${info.nativeReason})`
    : "";
  const why = name === "auto" ? ` (auto: ${reasons.join("; ")})` : "";
  log(
    `backend: ${info.name}${why}, tfjs ${info.tfjsVersion}${nativeNote}; ${
      adapterLine(adapter)
    }`,
  );
  return info;
}

/** `CUFIT_NATIVE=0` (or `off`, `false`) turns native kernels off; unset or unreadable: on. */
function nativeFromEnv(): boolean {
  try {
    const v = Deno.env.get("CUFIT_NATIVE")?.toLowerCase();
    return !(v === "0" || v === "off" || v === "false");
  } catch {
    return true;
  }
}

/**
 * `auto`: tensorflow-gpu when installed (only done on purpose, on CUDA 11
 * machines), webgpu on a real GPU adapter, tensorflow when installed, then
 * wasm, then cpu. Appends why it took or skipped each.
 */
async function pickAuto(
  reasons: string[],
  gpu?: number,
): Promise<{ chosen: Exclude<BackendName, "auto">; adapter?: AdapterReport }> {
  const adapter = await probeAdapter();
  const tryNode = async (candidate: "tensorflow-gpu" | "tensorflow") => {
    if (!localPackageExists(NODE_PACKAGES[candidate])) {
      reasons.push(`${candidate} not installed`);
      return false;
    }
    try {
      await loadNodeBackend(candidate, gpu);
      reasons.push(`${candidate} chosen`);
      return true;
    } catch {
      // Installed but unusable (no libtensorflow, no --allow-ffi): next one.
      reasons.push(`${candidate} installed but did not load`);
      return false;
    }
  };
  if (await tryNode("tensorflow-gpu")) {
    return { chosen: "tensorflow-gpu", adapter };
  }
  reasons.push(autoReason(adapter));
  if (isRealGpu(adapter)) {
    try {
      return { chosen: "webgpu", adapter: await loadWebGpu() };
    } catch (err) {
      reasons[reasons.length - 1] = `webgpu failed: ${
        (err as Error).message.split("\n")[0]
      }`;
    }
  }
  if (await tryNode("tensorflow")) return { chosen: "tensorflow", adapter };
  try {
    await loadWasmBackend();
    reasons.push("wasm chosen");
    return { chosen: "wasm", adapter };
  } catch {
    await tf.setBackend("cpu");
    reasons.push("wasm did not load; cpu chosen");
    return { chosen: "cpu", adapter };
  }
}

async function tryNativeKernels(
  backend: "wasm" | "cpu",
  threads?: number,
  cKernels = true,
): Promise<
  Pick<
    import("./native/kernels.ts").NativeKernelsResult,
    "active" | "reason" | "cKernels" | "cReason"
  >
> {
  try {
    const native = await import("./native/kernels.ts");
    return native.registerNativeKernels(backend, {
      threads,
      ...(cKernels ? {} : { cKernels: false }),
    });
  } catch (err) {
    return { active: [], reason: (err as Error).message };
  }
}
