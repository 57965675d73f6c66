/**
 * Test helpers for sweeps: a throw-away copy of this project (code, conf,
 * demo data; node_modules hard-linked) in a temp dir, so that `deno task
 * sweep` and the training tasks it starts run exactly as a user runs them,
 * with the tasks' own permissions, and write only there; and a Slurm
 * cluster (the one `.ci/run` started, named by `SLURM_CONF`, or one this
 * process starts with `.ci/slurm.sh` when it can).
 */
import { join } from "node:path";

/** This repository's root. */
export const ROOT = new URL("..", import.meta.url).pathname;

/** Makes the project copy; returns its path. */
export async function makeProject(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "cufit-sweep-" });
  for (const f of ["deno.json", "deno.lock"]) {
    await Deno.copyFile(join(ROOT, f), join(dir, f));
  }
  const cp = async (args: string[]) => {
    const out = await new Deno.Command("cp", { args, stderr: "piped" })
      .output();
    return out.success;
  };
  for (const d of ["lib", "tasks", "conf", "data"]) {
    if (!await cp(["-r", join(ROOT, d), join(dir, d)])) {
      throw new Error(`Cannot copy ${d} into ${dir}`);
    }
  }
  // Hard links are instant; another file system needs a real copy.
  if (
    !await cp(["-al", join(ROOT, "node_modules"), join(dir, "node_modules")])
  ) {
    await Deno.remove(join(dir, "node_modules"), { recursive: true }).catch(
      () => {},
    );
    if (
      !await cp(["-r", join(ROOT, "node_modules"), join(dir, "node_modules")])
    ) {
      throw new Error(`Cannot copy node_modules into ${dir}`);
    }
  }
  return dir;
}

/** Output of a finished command. */
export interface Ran {
  code: number;
  out: string;
}

/** Runs `deno task <args>` in `cwd` with `env` added. */
export async function denoTask(
  cwd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Ran> {
  const out = await new Deno.Command("deno", {
    args: ["task", "-q", ...args],
    cwd,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  return { code: out.code, out: text };
}

/** The demo grid cut for tests: 1 epoch of 2 batches per cell. */
export const DEMO_CUT = [
  "--grid",
  "conf/sweeps/demo.json",
  "--epochs",
  "1",
  "--max-batches",
  "2",
];

/** A run's epochs without the time-dependent fields. */
export async function metricsWithoutTimes(runDir: string): Promise<unknown[]> {
  const text = await Deno.readTextFile(join(runDir, "metrics.jsonl"));
  return text.trim().split("\n").map((l) => {
    const { seconds: _s, imagesPerSecond: _i, ...rest } = JSON.parse(l);
    return rest;
  });
}

/** A Slurm cluster the tests can submit to. */
export interface SlurmCluster {
  env: Record<string, string>;
  stop: () => Promise<void>;
}

async function works(cmd: string, args: string[], env: Record<string, string>) {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      env,
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : null;
  } catch {
    return null;
  }
}

/**
 * The cluster named by `SLURM_CONF` when `sinfo` answers, else one started
 * with `.ci/slurm.sh` (needs root and Debian's slurm-wlm and munge), else
 * `null` with the reason.
 */
export async function slurmCluster(): Promise<SlurmCluster | string> {
  const conf = Deno.env.get("SLURM_CONF");
  if (conf) {
    const env = { SLURM_CONF: conf };
    if (await works("sinfo", ["-h"], env) !== null) {
      return { env, stop: async () => {} };
    }
  }
  // slurmd -V answers without a slurm.conf (sinfo does not).
  const slurmd = await works("slurmd", ["-V"], {}) ??
    await works("/usr/sbin/slurmd", ["-V"], {});
  if (slurmd === null) {
    return "Slurm is not installed (apt-get install slurm-wlm munge)";
  }
  if (Deno.uid() !== 0) return "starting a test cluster needs root";
  const dir = await Deno.makeTempDir({ prefix: "cufit-slurm-" });
  const script = join(ROOT, ".ci", "slurm.sh");
  const env = { SLURM_TEST_PORT: String(20000 + (Deno.pid % 20000)) };
  const up = await works("bash", [script, "up", dir], env);
  if (up === null) {
    await works("bash", [script, "down", dir], {});
    return `.ci/slurm.sh could not start a cluster (logs in ${dir}/log)`;
  }
  return {
    env: { SLURM_CONF: join(dir, "slurm.conf") },
    stop: async () => {
      await works("bash", [script, "down", dir], {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
