import assert from "node:assert/strict";
import {
  permissionHint,
  permissionRequest,
  shellQuote,
  splitCommand,
  taskCommand,
  widenedCommand,
} from "../lib/cli/permission_hint.ts";

const denied = (kind: string, target: string) =>
  new Deno.errors.NotCapable(
    `Requires ${kind} access to "${target}", run again with the --allow-${kind} flag`,
  );

Deno.test("permissionRequest() reads the kind and target, also from a cause", () => {
  assert.deepEqual(permissionRequest(denied("write", "runs/demo/x")), {
    kind: "write",
    target: "runs/demo/x",
  });
  const wrapped = new Error("Cannot open run", {
    cause: denied("read", "/elsewhere/config.json"),
  });
  assert.deepEqual(permissionRequest(wrapped), {
    kind: "read",
    target: "/elsewhere/config.json",
  });
  assert.equal(permissionRequest(new Error("no such file")), null);
});

Deno.test("widenedCommand() widens exactly the refused scope of the task's own flags", () => {
  const words = widenedCommand(
    "train:cufit",
    { kind: "write", target: "/nonexistent-dir/run1" },
    ["-d", "demo", "-s", "run1"],
  )!;
  const write = words.find((w) => w.startsWith("--allow-write="))!;
  assert.equal(write, "--allow-write=./checkpoints,/nonexistent-dir");
  // A write widens the read by the same folder (the run folder is read too).
  const read = words.find((w) => w.startsWith("--allow-read="))!;
  assert.equal(
    read,
    "--allow-read=.,/proc/self/exe,/usr/bin/ldd,/nonexistent-dir",
  );
  assert.deepEqual(words.slice(-5), [
    "tasks/train_cufit.ts",
    "-d",
    "demo",
    "-s",
    "run1",
  ]);
  // Every other flag is the task's own.
  const own = taskCommand("train:cufit")!;
  const widened = (w: string) => /^--allow-(write|read)/.test(w);
  assert.deepEqual(
    words.filter((w) => !widened(w)).slice(0, own.length - 2),
    own.filter((w) => !widened(w)),
  );
  // A read widens only the read.
  const reading = widenedCommand(
    "evaluate",
    { kind: "read", target: "/nonexistent-dir/config.json" },
    [],
  )!;
  assert.ok(!reading.some((w) => w.startsWith("--allow-write")));
  // A kind the task lacks is added before the script.
  const env = widenedCommand("noise", { kind: "env", target: "HOME" }, [])!;
  assert.ok(env.indexOf("--allow-env=HOME") < env.indexOf("tasks/noise.ts"));
});

Deno.test("permissionHint() is one line naming the path and a working deno run command", () => {
  const line = permissionHint(
    denied("read", "/tmp/x/other.json"),
    "evaluate",
    ["--run", "/tmp/x", "--split", "a b"],
  )!;
  assert.ok(!line.includes("\n"));
  assert.match(
    line,
    /^evaluate: `deno task evaluate` has no read access to "\/tmp\/x\/other.json"/,
  );
  assert.match(
    line,
    /deno run --no-prompt --allow-read=\.,[^ ]*,\/tmp\/x .*tasks\/evaluate\.ts --run \/tmp\/x --split 'a b'$/,
  );
  assert.equal(permissionHint(new Error("other"), "evaluate", []), null);
});

Deno.test("splitCommand() and shellQuote() round-trip a quoted flag", () => {
  assert.deepEqual(splitCommand("deno run '--allow-net=a,*.b' x.ts"), [
    "deno",
    "run",
    "--allow-net=a,*.b",
    "x.ts",
  ]);
  assert.equal(shellQuote("--allow-net=a,*.b"), "'--allow-net=a,*.b'");
  assert.equal(shellQuote("it's"), `'it'"'"'s'`);
});
