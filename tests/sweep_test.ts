import assert from "node:assert/strict";
import { join } from "node:path";
import {
  DEMO_CUT,
  denoTask,
  makeProject,
  metricsWithoutTimes,
} from "./_sweep_project.ts";

const sweeps = (project: string, ...p: string[]) =>
  join(project, "checkpoints/sweeps", ...p);

async function cellStates(project: string, name: string) {
  const out: Record<string, { state: string; attempts: number }> = {};
  try {
    for (const e of Deno.readDirSync(sweeps(project, name, "cells"))) {
      if (!e.name.endsWith(".json")) continue;
      try {
        out[e.name.slice(0, -5)] = JSON.parse(
          await Deno.readTextFile(sweeps(project, name, "cells", e.name)),
        );
      } catch {
        // being renamed into place
      }
    }
  } catch {
    // not created yet
  }
  return out;
}

/** table.json without wall times and attempts (which differ between the runs). */
async function tableWithoutTimes(project: string, name: string) {
  const t = JSON.parse(
    await Deno.readTextFile(sweeps(project, name, "table.json")),
  );
  return {
    groups: t.groups,
    cells: t.cells.map((
      { seconds: _s, attempts: _a, exitCode: _e, ...rest }: Record<
        string,
        unknown
      >,
    ) => rest),
  };
}

Deno.test("a local sweep killed midway and run again completes with the uninterrupted sweep's table", async () => {
  const project = await makeProject();
  try {
    // 1. The uninterrupted sweep.
    const full = await denoTask(project, [
      "sweep",
      ...DEMO_CUT,
      "--name",
      "full",
      "--jobs",
      "2",
    ]);
    assert.equal(full.code, 0, full.out);
    assert.match(full.out, /sweep full: 18\/18 done, 0 failed, 0 interrupted/);
    assert.match(full.out, /\[ 1\/18\] demo-linear-sym0.2-s0: done in .*ETA/);
    // 2. The same sweep, its process group killed with SIGKILL after 5 cells.
    const child = new Deno.Command("setsid", {
      args: [
        "deno",
        "task",
        "-q",
        "sweep",
        ...DEMO_CUT,
        "--name",
        "killed",
        "--jobs",
        "2",
      ],
      cwd: project,
      env: { NO_COLOR: "1" },
      stdout: "null",
      stderr: "null",
    }).spawn();
    let done = 0;
    for (let i = 0; i < 1200 && done < 5; i++) {
      await new Promise((r) => setTimeout(r, 100));
      done = Object.values(await cellStates(project, "killed")).filter((s) =>
        s.state === "done"
      ).length;
    }
    Deno.kill(-child.pid, "SIGKILL");
    await child.status;
    const at = await cellStates(project, "killed");
    const finished = Object.values(at).filter((s) => s.state === "done").length;
    assert.ok(
      finished >= 5 && finished < 18,
      `${finished} cells done at the kill`,
    );
    // 3. Run again: the done cells are skipped, the rest run or resume.
    const again = await denoTask(project, [
      "sweep",
      ...DEMO_CUT,
      "--name",
      "killed",
      "--jobs",
      "2",
    ]);
    assert.equal(again.code, 0, again.out);
    // The cells done at the kill are skipped (a cell killed after its last
    // epoch, before it was recorded, counts as done too); the rest run.
    const plan = /(\d+) done, 0 failed \(out of retries\), (\d+) to run/.exec(
      again.out,
    );
    assert.ok(plan, again.out);
    assert.equal(Number(plan[1]) + Number(plan[2]), 18);
    assert.ok(Number(plan[1]) >= finished && Number(plan[2]) > 0, again.out);
    const after = await cellStates(project, "killed");
    for (const [id, s] of Object.entries(at)) {
      if (s.state === "done") {
        assert.equal(after[id].attempts, 1, `${id} ran again`);
      }
    }
    // 4. The same results, cell by cell and in the table.
    for (const id of Object.keys(after)) {
      assert.deepEqual(
        await metricsWithoutTimes(sweeps(project, "killed", "runs", id)),
        await metricsWithoutTimes(sweeps(project, "full", "runs", id)),
      );
    }
    for (const name of ["full", "killed"]) {
      const t = await denoTask(project, ["table", name]);
      assert.equal(t.code, 0, t.out);
    }
    assert.deepEqual(
      await tableWithoutTimes(project, "killed"),
      await tableWithoutTimes(project, "full"),
    );
    // 5. Once more: nothing left to run, also for a cell killed after its
    // last epoch, before the sweep recorded it as done.
    const file = sweeps(project, "killed", "cells", "demo-rein-sym0.4-s1.json");
    const st = JSON.parse(await Deno.readTextFile(file));
    await Deno.writeTextFile(
      file,
      JSON.stringify({ ...st, state: "running", exitCode: null }),
    );
    const idle = await denoTask(project, ["sweep", "--name", "killed"]);
    assert.equal(idle.code, 0, idle.out);
    assert.match(idle.out, /18 done, 0 failed \(out of retries\), 0 to run/);
    assert.match(idle.out, /every cell is done/);
    assert.equal(JSON.parse(await Deno.readTextFile(file)).state, "done");
  } finally {
    await Deno.remove(project, { recursive: true });
  }
});

Deno.test("a failing cell is retried up to --retries while the other cells finish", async () => {
  const project = await makeProject();
  try {
    await Deno.writeTextFile(
      join(project, "conf/sweeps/two.json"),
      JSON.stringify({
        datasets: ["demo"],
        noise_rates: [0.4],
        methods: ["linear", "rein"],
        seeds: [0],
        overrides: {
          epochs: 1,
          max_batches: 1,
          weights: "data/demo/backbone.safetensors",
        },
      }),
    );
    // A run folder that is not a run: its cell's training task fails.
    const broken = sweeps(project, "f", "runs", "demo-linear-sym0.4-s0");
    await Deno.mkdir(broken, { recursive: true });
    await Deno.writeTextFile(join(broken, "config.json"), "{}");
    const grid = ["--grid", "conf/sweeps/two.json", "--name", "f"];
    const first = await denoTask(project, ["sweep", ...grid]);
    assert.equal(first.code, 1, first.out);
    assert.match(first.out, /demo-linear-sym0.4-s0: failed .*\(exit 1\)/);
    assert.match(first.out, /sweep f: 1\/2 done, 1 failed/);
    let states = await cellStates(project, "f");
    assert.deepEqual(states["demo-linear-sym0.4-s0"].attempts, 2); // 1 + 1 retry
    assert.equal(states["demo-rein-sym0.4-s0"].state, "done");
    const log = await Deno.readTextFile(
      sweeps(project, "f", "logs", "demo-linear-sym0.4-s0.log"),
    );
    assert.match(log, /=== attempt 2 .*train:linear .*--resume/);
    assert.match(log, /=== attempt 2 ended: failed, exit 1/);
    // Out of retries: nothing runs until --retries is raised.
    const idle = await denoTask(project, ["sweep", ...grid]);
    assert.equal(idle.code, 1);
    assert.match(
      idle.out,
      /nothing to run; 1 cell\(s\) failed .*raise --retries/,
    );
    await Deno.remove(broken, { recursive: true });
    const fixed = await denoTask(project, ["sweep", ...grid, "--retries", "2"]);
    assert.equal(fixed.code, 0, fixed.out);
    states = await cellStates(project, "f");
    assert.equal(states["demo-linear-sym0.4-s0"].state, "done");
    assert.equal(states["demo-linear-sym0.4-s0"].attempts, 3);
    // The table shows the cells; a grid that changed is refused.
    const other = await denoTask(project, [
      "sweep",
      "--grid",
      "conf/sweeps/demo.json",
      "--name",
      "f",
    ]);
    assert.equal(other.code, 1);
    assert.match(
      other.out,
      /Sweep "f" was made from a different grid: "description" was/,
    );
  } finally {
    await Deno.remove(project, { recursive: true });
  }
});

Deno.test("sweep --dry-run lists each cell's exact command and writes nothing", async () => {
  const project = await makeProject();
  try {
    const r = await denoTask(project, [
      "sweep",
      ...DEMO_CUT,
      "--name",
      "dry",
      "--dry-run",
      "--jobs",
      "2",
      "--threads",
      "1",
    ]);
    assert.equal(r.code, 0, r.out);
    const lines = r.out.split("\n").filter((l) => /^\d+\t/.test(l));
    assert.equal(lines.length, 18);
    assert.equal(
      lines[4],
      "4\tdemo-cufit-sym0.2-s0\tpending\tdeno task train:cufit -d checkpoints/sweeps/dry/conf/demo.json -n 0.2 -s demo-cufit-sym0.2-s0 --noise-mode symmetric --seed 0 --epochs 1 --weights data/demo/backbone.safetensors --max-batches 2 --threads 1",
    );
    assert.match(
      r.out,
      /18 cells \(1 dataset x 3 noise x 3 methods x 2 seeds\), 18 epochs in all/,
    );
    await assert.rejects(
      () => Deno.stat(join(project, "checkpoints")),
      Deno.errors.NotFound,
    );
    // The Slurm engine's dry run prints its script.
    const s = await denoTask(project, [
      "sweep",
      ...DEMO_CUT,
      "--name",
      "dry",
      "--dry-run",
      "--engine",
      "slurm",
      "--parallel",
      "3",
    ]);
    assert.equal(s.code, 0, s.out);
    assert.match(s.out, /#SBATCH --array=0-17%3/);
  } finally {
    await Deno.remove(project, { recursive: true });
  }
});
