/**
 * Whether WebGPU tests can run here: an adapter must exist (CI installs
 * Mesa's lavapipe). With `CUFIT_REQUIRE_WEBGPU=1` a missing adapter fails
 * the tests instead of skipping them.
 */
import { probeAdapter } from "../lib/backend/webgpu/adapter.ts";

const report = await probeAdapter();
const required = Deno.env.get("CUFIT_REQUIRE_WEBGPU") === "1";
if (!report.found && required) {
  throw new Error(
    `CUFIT_REQUIRE_WEBGPU=1 but there is no WebGPU adapter: ${report.reason}`,
  );
}

/** True when the WebGPU tests must be skipped (no adapter, not required). */
export const NO_WEBGPU = !report.found;

/** The adapter the tests run on. */
export const ADAPTER = report;
