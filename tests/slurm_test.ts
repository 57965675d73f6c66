import assert from "node:assert/strict";
import { join } from "node:path";
import { checkGrid, expandGrid } from "../lib/sweep/grid.ts";
import {
  arrayScript,
  compressIndices,
  expandArrayId,
} from "../lib/sweep/slurm.ts";
import {
  DEMO_CUT,
  denoTask,
  makeProject,
  metricsWithoutTimes,
  slurmCluster,
} from "./_sweep_project.ts";

const cells = expandGrid(
  checkGrid({
    datasets: ["demo"],
    noise_rates: [0.2, 0.4],
    methods: ["linear", "rein", "cufit"],
    seeds: [0, 1],
  }, "t"),
);

Deno.test("arrayScript() asks for the settings given and runs array task i as cell i", () => {
  const some = [cells[0], cells[2], cells[3], cells[4], cells[9]];
  const s = arrayScript(some, {
    name: "t1",
    dir: "checkpoints/sweeps/t1",
    projectDir: "/srv/cufit",
    partition: "gpu",
    time: "12:00:00",
    cpusPerTask: 8,
    mem: "32G",
    gpus: 1,
    parallel: 4,
    retries: 2,
  });
  const lines = s.split("\n");
  assert.equal(lines[0], "#!/bin/bash");
  for (
    const want of [
      "#SBATCH --array=0,2-4,9%4",
      "#SBATCH --partition=gpu",
      "#SBATCH --time=12:00:00",
      "#SBATCH --cpus-per-task=8",
      "#SBATCH --mem=32G",
      "#SBATCH --gres=gpu:1",
      "#SBATCH --chdir=/srv/cufit",
      "#SBATCH --output=/srv/cufit/checkpoints/sweeps/t1/slurm/%A_%a.out",
    ]
  ) assert.ok(lines.includes(want), `${want} in\n${s}`);
  assert.match(
    lines.at(-2)!,
    /^exec deno task sweep run-cell --name t1 --index "\$SLURM_ARRAY_TASK_ID" .*--threads "\$\{SLURM_CPUS_PER_TASK:-8\}" --retries 2$/,
  );
  // The cells are listed with their exact training command.
  assert.ok(lines.includes(
    `#   9: deno task train:rein ${cells[9].args.join(" ")}`,
  ));
  // Defaults: no partition, no GPU, no throttle.
  const d = arrayScript([cells[1]], { name: "t1", dir: "d", projectDir: "/p" });
  assert.ok(d.includes("#SBATCH --array=1\n"));
  assert.ok(!/--partition|--gres/.test(d));
});

Deno.test("arrayScript() refuses values that would change the script", () => {
  const base = { name: "t1", dir: "d", projectDir: "/p" };
  assert.throws(
    () => arrayScript([cells[0]], { ...base, partition: "gpu\nrm -rf /" }),
    /Partition "gpu\\nrm -rf \/" may hold only/,
  );
  assert.throws(
    () => arrayScript([cells[0]], { ...base, projectDir: "/my project" }),
    /Path "\/my project" cannot go into a Slurm script/,
  );
});

Deno.test("compressIndices() and expandArrayId() read and write Slurm's array ranges", () => {
  assert.equal(compressIndices([7, 0, 2, 3, 4]), "0,2-4,7");
  assert.deepEqual(expandArrayId("12_[0-2,5%2]"), {
    job: "12",
    tasks: [0, 1, 2, 5],
  });
  assert.deepEqual(expandArrayId("12_4"), { job: "12", tasks: [4] });
  assert.deepEqual(expandArrayId("13"), { job: "13", tasks: [] });
});

const cluster = await slurmCluster();
const required = Deno.env.get("CUFIT_REQUIRE_SLURM") === "1";
if (typeof cluster === "string") {
  console.log(`slurm_test: Slurm tests skipped: ${cluster}`);
}

Deno.test({
  name:
    "the demo sweep gives every cell identical metrics through --engine slurm and --engine local",
  ignore: typeof cluster === "string" && !required,
  sanitizeResources: false,
  async fn() {
    if (typeof cluster === "string") {
      throw new Error(
        `Slurm is required here (CUFIT_REQUIRE_SLURM=1): ${cluster}`,
      );
    }
    const project = await makeProject();
    try {
      // 1. Submit the demo grid to Slurm, 1 CPU per array task.
      const sub = await denoTask(project, [
        "sweep",
        ...DEMO_CUT,
        "--name",
        "viaslurm",
        "--engine",
        "slurm",
        "--cpus-per-task",
        "1",
        "--mem",
        "1G",
        "--time",
        "10:00",
      ], cluster.env);
      assert.equal(sub.code, 0, sub.out);
      const job = /submitted job (\d+) \(18 array tasks/.exec(sub.out);
      assert.ok(job, sub.out);
      const script = await Deno.readTextFile(
        join(project, "checkpoints/sweeps/viaslurm/slurm/array-1.sh"),
      );
      assert.match(script, /#SBATCH --array=0-17\n/);
      // 2. The same grid locally, 2 workers x 1 thread, meanwhile.
      const local = await denoTask(project, [
        "sweep",
        ...DEMO_CUT,
        "--name",
        "here",
        "--jobs",
        "2",
        "--threads",
        "1",
      ]);
      assert.equal(local.code, 0, local.out);
      // 3. Wait for Slurm; status reads squeue/scontrol and the cell folders.
      let status = "";
      for (let i = 0; i < 600; i++) {
        status = (await denoTask(
          project,
          ["sweep", "status", "viaslurm"],
          cluster.env,
        )).out;
        // Done in the cell folders and finished in Slurm: a task that wrote
        // its last record is still RUNNING or COMPLETING for a moment.
        if (
          /sweep viaslurm: 18 done/.test(status) &&
          !/\b(PENDING|CONFIGURING|RUNNING|COMPLETING)\b/.test(status)
        ) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.match(status, /sweep viaslurm: 18 done; Slurm jobs \d+/);
      assert.match(status, /COMPLETED/);
      // 4. Identical metrics, cell by cell.
      const runs = (name: string) =>
        join(project, "checkpoints/sweeps", name, "runs");
      const ids = [...Deno.readDirSync(runs("here"))].map((e) => e.name).sort();
      assert.equal(ids.length, 18);
      for (const id of ids) {
        assert.deepEqual(
          await metricsWithoutTimes(join(runs("viaslurm"), id)),
          await metricsWithoutTimes(join(runs("here"), id)),
          id,
        );
        assert.equal(
          await Deno.readTextFile(join(runs("viaslurm"), id, "avgacc.txt")),
          await Deno.readTextFile(join(runs("here"), id, "avgacc.txt")),
        );
      }
      const state = JSON.parse(
        await Deno.readTextFile(
          join(project, "checkpoints/sweeps/viaslurm/cells", `${ids[0]}.json`),
        ),
      );
      assert.equal(state.engine, "slurm");
      assert.match(state.job, new RegExp(`^${job![1]}_\\d+$`));
      // 5. Re-submitting a finished sweep submits nothing; cancel runs scancel.
      const again = await denoTask(project, [
        "sweep",
        "--name",
        "viaslurm",
        "--engine",
        "slurm",
      ], cluster.env);
      assert.equal(again.code, 0, again.out);
      assert.match(again.out, /18 done.*0 to run/);
      assert.doesNotMatch(again.out, /submitted job/);
      const cancel = await denoTask(
        project,
        ["sweep", "cancel", "viaslurm"],
        cluster.env,
      );
      assert.equal(cancel.code, 0, cancel.out);
      assert.match(cancel.out, new RegExp(`scancel ${job![1]}`));
    } finally {
      // Stop Slurm first: a job step still winding down can write into the
      // project while it is being removed ("Directory not empty").
      await cluster.stop();
      await removeTree(project);
    }
  },
});

Deno.test({
  name: "sweep status and cancel say what is wrong without a sweep",
  async fn() {
    const project = await makeProject();
    try {
      const r = await denoTask(project, ["sweep", "status", "nothing"]);
      assert.equal(r.code, 1);
      assert.match(
        r.out,
        /sweep: Sweep "nothing" not found: no "checkpoints\/sweeps\/nothing\/sweep.json"/,
      );
    } finally {
      await Deno.remove(project, { recursive: true });
    }
  },
});

/** Removes a folder, retrying while something still writes into it. */
async function removeTree(path: string): Promise<void> {
  for (let attempt = 1;; attempt++) {
    try {
      return await Deno.remove(path, { recursive: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      if (attempt >= 20) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
