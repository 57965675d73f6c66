/**
 * No task may stop at a permission prompt. Deno prompts only when stdin and
 * stderr are a terminal, so piped runs (and CI) never see a prompt: they
 * deny silently. Here every task in deno.json runs under a pseudo-terminal
 * (`script -qec CMD /dev/null`, util-linux/bsdutils) with arguments that
 * make it load its heavy modules (sharp, the tfjs backend, OpenBLAS) and
 * then stop cheaply; the test fails on any "Deno requests" line, and checks
 * that the task got as far as its marker, so a task that died early cannot
 * pass.
 */
import assert from "node:assert/strict";
import denoConfig from "../deno.json" with { type: "json" };
import { TINY_BENCH } from "./_bench_args.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MISSING = "tests/__no_such_file__";

/** Per task: cheap arguments, and output that proves the heavy part ran. */
const CASES: Record<string, { args: string[]; expect: RegExp }> = {
  demo: {
    args: ["--weights", `${MISSING}.safetensors`, "--out", "runs/_pty_test"],
    expect: /backend: [\s\S]*demo: Weights file ".*" does not exist/,
  },
  example: { args: [], expect: /CUFIT last-\d+: / },
  "pretrain:demo": {
    args: ["--epochs", "1", "--out", "/nonexistent-dir/backbone.safetensors"],
    expect: /pretrain:demo: `deno task pretrain:demo` has no write access/,
  },
  parity: {
    args: ["--fixtures", MISSING, "--out", `${MISSING}.safetensors`],
    expect: /backend: [\s\S]*parity: /,
  },
  noise: {
    args: ["--labels", `${MISSING}.json`, "--classes", "3", "--rate", "0.1"],
    expect: /noise: /,
  },
  "train:linear": {
    args: ["-d", "demo", "-s", "_pty_test"],
    expect: /backend: [\s\S]*train:linear: No DINOv2 weights/,
  },
  "train:rein": {
    args: ["-d", "demo", "-s", "_pty_test"],
    expect: /backend: [\s\S]*train:rein: No DINOv2 weights/,
  },
  "train:cufit": {
    args: ["-d", "demo", "-s", "_pty_test"],
    expect: /backend: [\s\S]*train:cufit: No DINOv2 weights/,
  },
  evaluate: {
    args: ["--run", MISSING],
    expect: /backend: [\s\S]*evaluate: /,
  },
  predict: {
    args: ["--run", MISSING, `${MISSING}.png`],
    expect: /backend: [\s\S]*predict: /,
  },
  rerun: { args: [MISSING], expect: /rerun: / },
  "label-issues": { args: ["--run", MISSING], expect: /label-issues: / },
  "fetch:medmnist": { args: ["nosuchflag"], expect: /fetch:medmnist: / },
  "fetch:weights": { args: ["nosuchmodel"], expect: /fetch:weights: / },
  "prepare:ham10000": { args: [], expect: /prepare:ham10000: / },
  "prepare:aptos": {
    args: ["--root", "data/__no_such_dir__"],
    expect: /prepare:aptos: /,
  },
  bench: {
    args: ["--method", "cufit", ...TINY_BENCH],
    expect: /images\/s/,
  },
  // A dry run reads the grid and the dataset files and writes nothing.
  sweep: {
    args: ["--grid", "conf/sweeps/demo.json", "--name", "pty", "--dry-run"],
    expect: /sweep pty: 18 cells/,
  },
  table: {
    args: ["nosuchsweep"],
    expect: /table: Sweep "nosuchsweep" not found/,
  },
  // These two only spawn `bench` and `parity` (each tested here) as children.
  "bench:all": { args: ["--help"], expect: /Usage: bench:all/ },
  "gpu:check": { args: ["--help"], expect: /Usage: gpu:check/ },
  // It writes into the checkout; .ci/run runs it for real before the tests.
  "build:native": { args: ["--help"], expect: /Usage: build:native/ },
  "bench:kernels": {
    args: ["--backends", "cpu", "--iters", "1", "--tokens", "16"],
    expect: /GFLOP\/s/,
  },
};

/** Tasks that run with --allow-all (tests only): they cannot prompt. */
const ALLOW_ALL = ["test", "check"];

const tasks = denoConfig.tasks as Record<string, { command: string }>;

const hasScript = await new Deno.Command("script", { args: ["--version"] })
  .output().then((o) => o.success, () => false);

Deno.test("script(1) is installed (util-linux / bsdutils)", () => {
  assert.ok(hasScript, "install bsdutils (Debian) or util-linux for `script`");
});

Deno.test("every task in deno.json has a pseudo-terminal case", () => {
  for (const name of Object.keys(tasks)) {
    if (ALLOW_ALL.includes(name)) {
      assert.match(tasks[name].command, /--allow-all|deno task test/, name);
      continue;
    }
    assert.ok(name in CASES, `task "${name}" has no case in this test`);
    assert.match(tasks[name].command, /^deno run --no-prompt /, name);
  }
});

const quote = (w: string) => `'${w.replaceAll("'", `'"'"'`)}'`;

/**
 * Runs `deno task NAME ARGS` under a pseudo-terminal; returns its output.
 * With `colorEnv`, NO_COLOR and FORCE_COLOR are unset, as on most users'
 * terminals (libraries then probe more of the environment).
 */
async function underTerminal(
  name: string,
  args: string[],
  timeoutMs: number,
  colorEnv = false,
): Promise<{ output: string; prompted: boolean; timedOut: boolean }> {
  const line = ["deno", "task", name, ...args].map(quote).join(" ");
  const child = new Deno.Command(colorEnv ? "env" : "script", {
    args: [
      ...(colorEnv ? ["-u", "NO_COLOR", "-u", "FORCE_COLOR", "script"] : []),
      "-qec",
      line,
      "/dev/null",
    ],
    cwd: ROOT,
    stdin: "piped", // never written: a prompt would wait for ever
    stdout: "piped",
    stderr: "piped",
    ...(colorEnv ? {} : { env: { NO_COLOR: "1" } }),
  }).spawn();
  let output = "";
  let prompted = false;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  const decoder = new TextDecoder();
  const read = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      output += decoder.decode(chunk, { stream: true });
      if (!prompted && /Deno requests/.test(output)) {
        prompted = true;
        child.kill("SIGKILL");
      }
    }
  };
  await Promise.all([read(child.stdout), read(child.stderr), child.status]);
  clearTimeout(timer);
  await child.stdin.close().catch(() => {});
  return { output, prompted, timedOut };
}

for (const [name, { args, expect }] of Object.entries(CASES)) {
  Deno.test({
    name: `deno task ${name} never prompts on a terminal`,
    ignore: !(name in tasks),
    sanitizeResources: false,
    async fn() {
      const { output, prompted, timedOut } = await underTerminal(
        name,
        args,
        300_000,
      );
      // deno-lint-ignore no-control-regex
      const plain = output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
      assert.ok(!prompted, `${name} prompted:\n${plain.slice(-2000)}`);
      assert.ok(!timedOut, `${name} did not finish:\n${plain.slice(-2000)}`);
      assert.match(plain, expect, `${name} output:\n${plain.slice(-2000)}`);
    },
  });
}

for (const name of Object.keys(tasks)) {
  if (ALLOW_ALL.includes(name)) continue;
  Deno.test({
    name: `deno task ${name} --help prints its usage on a colour terminal`,
    sanitizeResources: false,
    async fn() {
      const { output, prompted, timedOut } = await underTerminal(
        name,
        ["--help"],
        120_000,
        true,
      );
      // deno-lint-ignore no-control-regex
      const plain = output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
      assert.ok(!prompted && !timedOut, `${name}:\n${plain.slice(-2000)}`);
      assert.match(plain, new RegExp(`Usage: ${name}\\b`), plain.slice(-2000));
      assert.doesNotMatch(plain, /Requires|has no env access/, plain);
    },
  });
}
