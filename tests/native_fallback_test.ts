/**
 * Without OpenBLAS (absent library, missing permission, missing backend) the
 * native kernels register nothing, say why, and tfjs results are unchanged.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import "@tensorflow/tfjs-backend-wasm";
import { tf } from "../lib/backend/tf.ts";
import {
  activeNativeKernels,
  NATIVE_KERNEL_NAMES,
  type NativeBackendName,
  registerNativeKernels,
} from "../lib/backend/native/kernels.ts";
import {
  loadOpenBlas,
  openBlasCandidates,
} from "../lib/backend/native/openblas.ts";

const REPO = new URL("..", import.meta.url);

async function missingLibrary(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "native_fallback_" });
  return join(dir, "libopenblas_absent.so.0");
}

/** Runs a TypeScript snippet in a child Deno with the given flags; returns stdout. */
async function runChild(source: string, flags: string[]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "native_fallback_child_" });
  const file = join(dir, "child.ts");
  await Deno.writeTextFile(file, source);
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--no-lock", ...flags, file],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(stderr);
  assert.equal(code, 0, `child failed: ${err}`);
  return new TextDecoder().decode(stdout).trim();
}

Deno.test("loadOpenBlas() returns the reason, naming the path, when the library is absent", async () => {
  const path = await missingLibrary();
  const result = loadOpenBlas({ path });
  assert.ok("error" in result, "expected an error result");
  assert.match(result.error, /^Cannot open OpenBLAS \(/);
  assert.ok(result.error.includes(path), result.error);
});

Deno.test("loadOpenBlas() rejects a thread count that is not a positive integer", () => {
  assert.deepEqual(loadOpenBlas({ threads: 0 }), {
    error: 'OpenBLAS option "threads" must be a positive integer, got 0',
  });
  assert.deepEqual(loadOpenBlas({ threads: 1.5 }), {
    error: 'OpenBLAS option "threads" must be a positive integer, got 1.5',
  });
});

Deno.test("openBlasCandidates() tries CUFIT_OPENBLAS first", () => {
  const saved = Deno.env.get("CUFIT_OPENBLAS");
  try {
    Deno.env.set("CUFIT_OPENBLAS", "/opt/blas/libopenblas.so.0");
    const candidates = openBlasCandidates();
    assert.equal(candidates[0], "/opt/blas/libopenblas.so.0");
    assert.ok(candidates.length > 1);
    Deno.env.delete("CUFIT_OPENBLAS");
    assert.notEqual(openBlasCandidates()[0], "/opt/blas/libopenblas.so.0");
  } finally {
    if (saved === undefined) Deno.env.delete("CUFIT_OPENBLAS");
    else Deno.env.set("CUFIT_OPENBLAS", saved);
  }
});

Deno.test("loadOpenBlas() without --allow-ffi or --allow-env reports it instead of throwing or prompting", async () => {
  const module = new URL("lib/backend/native/openblas.ts", REPO).href;
  const out = await runChild(
    `import { loadOpenBlas } from ${JSON.stringify(module)};\n` +
      `console.log(JSON.stringify(loadOpenBlas()));\n`,
    ["--no-config"],
  );
  assert.deepEqual(JSON.parse(out), {
    error: "OpenBLAS needs --allow-ffi (or --allow-ffi=<library path>)",
  });
});

Deno.test("registerNativeKernels('wasm') says so when the wasm backend is not imported", async () => {
  const module = new URL("lib/backend/native/kernels.ts", REPO).href;
  const out = await runChild(
    `import { registerNativeKernels } from ${JSON.stringify(module)};\n` +
      `console.log(JSON.stringify(registerNativeKernels("wasm")));\n`,
    ["--config", new URL("deno.json", REPO).pathname, "-A"],
  );
  const result = JSON.parse(out.split("\n").pop()!);
  assert.deepEqual(result.active, []);
  assert.match(
    result.reason,
    /^Backend "wasm" has none of the kernels .* \(is @tensorflow\/tfjs-backend-wasm imported\?\)$/,
  );
});

for (const backend of ["wasm", "cpu"] as NativeBackendName[]) {
  Deno.test(`registerNativeKernels('${backend}') without the library registers nothing and results stay correct`, async () => {
    const previous: string | undefined = tf.getBackend();
    assert.ok(await tf.setBackend(backend));
    try {
      const a = tf.randomNormal([3, 7, 13], 0, 1, "float32", 11);
      const b = tf.randomNormal([13, 5], 0, 1, "float32", 12);
      const compute = () =>
        tf.tidy(() =>
          tf.matMul(a, tf.expandDims(b, 0)).dataSync() as Float32Array
        );
      const want = compute();
      const kernels = NATIVE_KERNEL_NAMES.map((name) =>
        tf.getKernel(name, backend)
      );
      const tensors = tf.memory().numTensors;

      const path = await missingLibrary();
      const result = registerNativeKernels(backend, { path });
      assert.deepEqual(result.active, []);
      assert.match(result.reason ?? "", /^Cannot open OpenBLAS \(/);
      assert.ok(result.reason?.includes(path), String(result.reason));
      assert.deepEqual(activeNativeKernels(backend), []);
      NATIVE_KERNEL_NAMES.forEach((name, i) =>
        assert.equal(
          tf.getKernel(name, backend),
          kernels[i],
          `${name} kernel replaced`,
        )
      );
      assert.deepEqual(compute(), want);
      assert.equal(tf.memory().numTensors, tensors);
      tf.dispose([a, b]);
    } finally {
      if (previous) await tf.setBackend(previous);
    }
  });
}
