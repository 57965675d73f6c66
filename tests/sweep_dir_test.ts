import assert from "node:assert/strict";
import { join } from "node:path";
import { checkGrid, expandGrid } from "../lib/sweep/grid.ts";
import {
  readRunProgress,
  readSweep,
  SWEEP_FORMAT,
  sweepDatasetFile,
  toFileKeys,
} from "../lib/sweep/sweep_dir.ts";

const grid = checkGrid({
  datasets: ["demo"],
  noise_rates: [0.4],
  methods: ["linear", "cufit"],
  seeds: [0],
}, "t");

async function writeRecord(dir: string, edit: (cells: unknown[]) => void) {
  const cells = expandGrid(grid, {
    datasetFile: (d) => sweepDatasetFile(dir, d),
  });
  edit(cells);
  await Deno.writeTextFile(
    join(dir, "sweep.json"),
    JSON.stringify({
      format: SWEEP_FORMAT,
      name: "x",
      createdAt: "",
      gridFile: "",
      grid: toFileKeys(grid),
      cells,
    }),
  );
}

Deno.test("readSweep() re-derives the cells from the grid and refuses an edited command", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeRecord(dir, () => {});
    const r = await readSweep(dir);
    assert.equal(r.cells.length, 2);
    assert.equal(r.cells[1].task, "train:cufit");
    for (
      const edit of [
        (c: unknown[]) => ((c[0] as { task: string }).task = "bench:all"),
        (c: unknown[]) =>
          (c[1] as { args: string[] }).args.push("--init", "/x"),
      ]
    ) {
      await writeRecord(dir, edit);
      await assert.rejects(
        () => readSweep(dir),
        /lists cells that its grid does not make: it was edited/,
      );
    }
    await Deno.writeTextFile(join(dir, "sweep.json"), '{"format": "other"}');
    await assert.rejects(() => readSweep(dir), /is not a sweep record/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readRunProgress() knows a run that has not started, one under way and a finished one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let p = await readRunProgress(join(dir, "none"));
    assert.deepEqual([p.started, p.complete, p.records.length], [
      false,
      false,
      0,
    ]);
    await Deno.writeTextFile(
      join(dir, "config.json"),
      JSON.stringify({ config: { epochs: 2 } }),
    );
    await Deno.writeTextFile(
      join(dir, "metrics.jsonl"),
      '{"epoch":0,"testAcc":0.5}\n{"epoch":1,"te',
    );
    p = await readRunProgress(dir);
    assert.deepEqual([p.started, p.epochs, p.complete, p.records.length], [
      true,
      2,
      false,
      1,
    ]);
    await Deno.writeTextFile(
      join(dir, "metrics.jsonl"),
      '{"epoch":0,"testAcc":0.5}\n{"epoch":1,"testAcc":0.75,"seconds":3}\n',
    );
    await Deno.writeTextFile(join(dir, "avgacc.txt"), "0.625");
    p = await readRunProgress(dir);
    assert.equal(p.complete, true);
    assert.equal(p.avgAcc, 0.625);
    assert.equal(p.records[1].seconds, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
