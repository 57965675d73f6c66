/**
 * What the WebGPU adapter is, and whether it is a real GPU.
 *
 * Deno exposes WebGPU as `navigator.gpu` with no flag or permission. The
 * adapter's `info` names the vendor, architecture and device; software
 * adapters (Mesa's lavapipe/llvmpipe, SwiftShader, Microsoft WARP) report
 * `isFallbackAdapter` or give themselves away by name. `auto` uses a WebGPU
 * adapter only when it is neither.
 *
 * @module
 */

/** What {@linkcode probeAdapter} found. */
export interface AdapterReport {
  /** Whether an adapter was returned at all. */
  found: boolean;
  /** Why there is none (when `found` is false). */
  reason?: string;
  /** `info.vendor`: a name (`nvidia`, `amd`, `apple`) or a PCI id. */
  vendor: string;
  /** `info.architecture` (`ampere`, `rdna-3`, ...), often empty. */
  architecture: string;
  /** `info.device`: a name or a PCI id. */
  device: string;
  /** `info.description`: the driver's own name of the device. */
  description: string;
  /** The adapter says it is a fallback (software) adapter. */
  fallback: boolean;
  /** The adapter runs on the CPU (fallback, or a known software renderer). */
  cpu: boolean;
  /** Largest buffer bound to one shader, in bytes (the biggest tensor an op can touch). */
  maxBindingBytes: number;
  /** Largest buffer, in bytes. */
  maxBufferBytes: number;
}

/** Names of software renderers that expose themselves as Vulkan/D3D devices. */
const SOFTWARE =
  /llvmpipe|lavapipe|softpipe|swiftshader|microsoft basic render|\bwarp\b/i;

let probed: { gpu: unknown; report: Promise<AdapterReport> } | null = null;

/**
 * Probes `navigator.gpu` without creating a device, once per process and
 * `navigator.gpu` (a driver that does not answer within 10 s counts as
 * none). Never throws.
 */
export function probeAdapter(): Promise<AdapterReport> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!probed || probed.gpu !== gpu) probed = { gpu, report: probeOnce() };
  return probed.report;
}

async function probeOnce(): Promise<AdapterReport> {
  const none = (reason: string): AdapterReport => ({
    found: false,
    reason,
    vendor: "",
    architecture: "",
    device: "",
    description: "",
    fallback: false,
    cpu: false,
    maxBindingBytes: 0,
    maxBufferBytes: 0,
  });
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) return none("this Deno has no navigator.gpu");
  let adapter: GPUAdapter | null | "timeout";
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    adapter = await Promise.race([
      gpu.requestAdapter({ powerPreference: "high-performance" }),
      new Promise<"timeout">((r) => (timer = setTimeout(r, 10_000, "timeout"))),
    ]);
  } catch (e) {
    return none(`requestAdapter() failed: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  if (adapter === "timeout") {
    return none("the WebGPU driver did not answer within 10 s");
  }
  if (!adapter) {
    return none("no WebGPU adapter (no Vulkan, Metal or D3D12 driver found)");
  }
  return describe(adapter);
}

/** An {@linkcode AdapterReport} of an adapter already in hand. */
export function describe(adapter: GPUAdapter): AdapterReport {
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  // The flag moved from the adapter to its info in the spec; read both.
  const fallback = Boolean(
    (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ??
      (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter,
  );
  const vendor = info?.vendor ?? "";
  const architecture = info?.architecture ?? "";
  const device = info?.device ?? "";
  const description = info?.description ?? "";
  return {
    found: true,
    vendor,
    architecture,
    device,
    description,
    fallback,
    cpu: fallback ||
      SOFTWARE.test(`${vendor} ${architecture} ${device} ${description}`),
    maxBindingBytes: adapter.limits.maxStorageBufferBindingSize,
    maxBufferBytes: adapter.limits.maxBufferSize,
  };
}

/** Whether `auto` should train on this adapter: found, and neither fallback nor CPU. */
export function isRealGpu(report: AdapterReport): boolean {
  return report.found && !report.fallback && !report.cpu;
}

/**
 * One line naming the adapter: `vendor V, architecture A, device D (description)`,
 * with `-` for what the driver leaves empty, and its kind.
 */
export function adapterLine(report: AdapterReport): string {
  if (!report.found) return `adapter: none (${report.reason})`;
  const or = (s: string) => s === "" ? "-" : s;
  const kind = report.fallback
    ? "fallback adapter, runs on the CPU"
    : report.cpu
    ? "software renderer, runs on the CPU"
    : "GPU";
  const desc = report.description ? ` "${report.description}"` : "";
  return `adapter: vendor ${or(report.vendor)}, architecture ${
    or(report.architecture)
  }, device ${or(report.device)}${desc} (${kind})`;
}

/** Why `auto` takes or skips WebGPU on this adapter, as a clause. */
export function autoReason(report: AdapterReport): string {
  if (!report.found) return `webgpu skipped: ${report.reason}`;
  if (report.fallback) {
    return "webgpu skipped: the adapter is a fallback (software) adapter";
  }
  if (report.cpu) {
    return `webgpu skipped: "${
      report.description || report.device
    }" is a software renderer on the CPU`;
  }
  return "webgpu chosen: a hardware GPU adapter";
}
