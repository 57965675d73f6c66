import assert from "node:assert/strict";
import { join } from "node:path";
import { checkGrid, expandGrid } from "../lib/sweep/grid.ts";
import {
  SWEEP_FORMAT,
  sweepDatasetFile,
  toFileKeys,
} from "../lib/sweep/sweep_dir.ts";
import {
  collectResults,
  renderCellsCsv,
  renderGroupsCsv,
  renderMarkdown,
  type SweepResults,
} from "../lib/sweep/table.ts";
import { renderTableHtml } from "../lib/sweep/table_html.ts";
import { chromium, hasChromium } from "./_chromium.ts";

const grid = checkGrid({
  description: "A made-up sweep",
  datasets: ["bloodmnist", "demo"],
  noise_rates: [0.2, 0.4],
  methods: ["linear", "cufit"],
  seeds: [0, 1],
  overrides: { epochs: 12 },
}, "t");

/** 12 epochs whose last 10 test accuracies average `last10`. */
function epochs(last10: number, withSelection: boolean): string[] {
  return Array.from({ length: 12 }, (_, e) =>
    JSON.stringify({
      epoch: e,
      lr: 0.001,
      trainLoss: 1,
      trainAcc: 0.5,
      // Epochs 0 and 1 are outside the last 10; the rest alternate around the mean.
      testAcc: e < 2 ? 0.1 : last10 + (e % 2 === 0 ? 0.01 : -0.01),
      seconds: 2,
      unknownField: { x: 1 },
      ...(withSelection
        ? {
          selection: {
            lpm: {
              total: 10,
              selected: 5,
              clean: 8,
              cleanSelected: 4,
              precision: e < 2 ? 0 : 0.9,
              recall: e < 2 ? 0 : 0.5,
            },
            iam: {
              total: 10,
              selected: 0,
              clean: 8,
              cleanSelected: 0,
              precision: null,
              recall: 0,
            },
          },
        }
        : {}),
    }));
}

/** A sweep folder with made-up runs: some finished, one cut short, some absent. */
async function fakeSweep(): Promise<string> {
  const dir = await Deno.makeTempDir();
  const cells = expandGrid(grid, {
    datasetFile: (d) => sweepDatasetFile(dir, d),
  });
  await Deno.writeTextFile(
    join(dir, "sweep.json"),
    JSON.stringify({
      format: SWEEP_FORMAT,
      name: "fake",
      createdAt: "2026-01-01T00:00:00Z",
      gridFile: "x.json",
      grid: toFileKeys(grid),
      cells,
    }),
  );
  const acc: Record<string, number> = {
    // bloodmnist 0.2: both seeds; 0.4: one seed of linear, none of cufit.
    "bloodmnist-linear-sym0.2-s0": 0.8,
    "bloodmnist-linear-sym0.2-s1": 0.9,
    "bloodmnist-cufit-sym0.2-s0": 0.95,
    "bloodmnist-cufit-sym0.2-s1": 0.97,
    "bloodmnist-linear-sym0.4-s0": 0.7,
    "demo-linear-sym0.2-s0": 0.6,
    "demo-linear-sym0.2-s1": 0.6,
  };
  for (const [id, a] of Object.entries(acc)) {
    const run = join(dir, "runs", id);
    await Deno.mkdir(run, { recursive: true });
    await Deno.writeTextFile(
      join(run, "config.json"),
      JSON.stringify({ config: { epochs: 12 } }),
    );
    const lines = epochs(a, id.includes("cufit"));
    // A resumed run may repeat an epoch (the last record counts), and a crash
    // may leave half a line.
    if (id.endsWith("s1")) {
      lines.splice(
        3,
        0,
        JSON.stringify({ ...JSON.parse(lines[5]), testAcc: 0 }),
      );
    }
    await Deno.writeTextFile(
      join(run, "metrics.jsonl"),
      lines.join("\n") + "\n" + (id.endsWith("s0") ? '{"epoch": 12, "te' : ""),
    );
  }
  // Cut short: 5 of 12 epochs.
  const cut = join(dir, "runs", "bloodmnist-cufit-sym0.4-s1");
  await Deno.mkdir(cut, { recursive: true });
  await Deno.writeTextFile(
    join(cut, "config.json"),
    JSON.stringify({ config: { epochs: 12 } }),
  );
  await Deno.writeTextFile(
    join(cut, "metrics.jsonl"),
    epochs(0.5, true).slice(0, 5).join("\n") + "\n",
  );
  return dir;
}

const near = (a: number | null, b: number) =>
  assert.ok(a !== null && Math.abs(a - b) < 1e-9, `${a} vs ${b}`);

Deno.test("collectResults() averages the last 10 epochs over seeds beside the paper's figure, and leaves missing cells missing", async () => {
  const dir = await fakeSweep();
  try {
    const r = await collectResults(dir);
    const g = (d: string, rate: number, m: string) =>
      r.groups.find((x) =>
        x.dataset === d && x.noiseRate === rate && x.method === m
      )!;
    const lin = g("bloodmnist", 0.2, "linear");
    near(lin.mean, 85);
    near(lin.std, Math.sqrt(50)); // sample std of 80 and 90
    assert.equal(lin.paper, 96.7);
    near(lin.diff, 85 - 96.7);
    assert.deepEqual(lin.values.length, 2);
    const one = g("bloodmnist", 0.4, "linear");
    near(one.mean, 70);
    assert.equal(one.std, null);
    // No finished seed: missing, not 0; the cut-short run does not count.
    const none = g("bloodmnist", 0.4, "cufit");
    assert.equal(none.mean, null);
    assert.deepEqual(none.values, []);
    assert.equal(none.paper, 98.3);
    assert.equal(none.diff, null);
    // Datasets the paper lacks have no paper figure.
    assert.equal(g("demo", 0.2, "linear").paper, null);
    // Cells: selection means over the last 10 epochs; a 0/0 precision is skipped.
    const cufit = r.cells.find((c) => c.id === "bloodmnist-cufit-sym0.2-s0")!;
    near(cufit.selection.lpm.precision, 0.9);
    near(cufit.selection.lpm.recall, 0.5);
    assert.equal(cufit.selection.iam.precision, null);
    near(cufit.last10, 0.95);
    near(cufit.best!, 0.96);
    const cut = r.cells.find((c) => c.id === "bloodmnist-cufit-sym0.4-s1")!;
    assert.deepEqual([cut.epochsDone, cut.epochs, cut.last10], [5, 12, null]);
    const absent = r.cells.find((c) => c.id === "demo-cufit-sym0.4-s1")!;
    assert.deepEqual([absent.state, absent.epochsDone, absent.last10], [
      "pending",
      0,
      null,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("renderMarkdown() and the CSVs show missing as missing or empty, never 0", async () => {
  const dir = await fakeSweep();
  try {
    const r = await collectResults(dir);
    const md = renderMarkdown(r);
    assert.match(
      md,
      /\| BloodMnist \| 0\.2 +\| 85\.0 ± 7\.1 +\| 96\.7 +\| -11\.7 \| 96\.0 ± 1\.4 +\| 98\.8 +\| -2\.8 \|/,
    );
    assert.match(
      md,
      /\| BloodMnist \| 0\.4 +\| 70\.0 \(1\/2 seeds\) +\| 95\.8 +\| -25\.8 \| missing +\| 98\.3 +\| – +\|/,
    );
    assert.match(md, /\| demo +\| 0\.4 +\| missing +\| – +\| – +\| missing/);
    assert.match(
      md,
      /\| bloodmnist-cufit-sym0\.2-s0 +\| done +\| 12\/12 +\| 95\.0 +\| 96\.0 +\| 90\.0 \/ 50\.0 +\| – \/ 0\.0 +\|/,
    );
    assert.match(
      md,
      /\| bloodmnist-cufit-sym0\.4-s1 +\| pending +\| 5\/12 +\| missing/,
    );
    const csv = renderGroupsCsv(r).split("\n");
    assert.equal(
      csv[0],
      "dataset,noise_mode,noise_rate,method,seeds_done,seeds,mean_acc,std_acc,paper_acc,diff",
    );
    assert.ok(csv.includes("bloodmnist,symmetric,0.4,cufit,0,2,,,98.3,"));
    const cells = renderCellsCsv(r).split("\n");
    assert.ok(
      cells.some((l) =>
        l.startsWith("15,demo-cufit-sym0.4-s1,") && l.includes(",pending,0,,,,")
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "table.html draws accuracy against noise per dataset in headless Chromium",
  ignore: !hasChromium,
  async fn() {
    const dir = await fakeSweep();
    try {
      const r: SweepResults = await collectResults(dir);
      const html = renderTableHtml(r);
      assert.doesNotMatch(html, /<script|src=|href=/); // self-contained
      await Deno.writeTextFile(join(dir, "table.html"), html);
      const url = `file://${join(dir, "table.html")}`;
      const dom = await chromium(["--dump-dom", url], join(dir, "p1"));
      assert.equal(dom.code, 0);
      // One plot per dataset; per method a line of ours, and the paper's
      // dashed one where the paper has figures.
      assert.equal((dom.stdout.match(/<svg /g) ?? []).length, 2);
      const ours = [
        ...dom.stdout.matchAll(
          /<path class="series" data-method="(\w+)" d="([^"]*)"/g,
        ),
      ];
      assert.equal(ours.length, 4);
      // bloodmnist linear has both rates: a line from one point to the next.
      assert.match(ours[0][2], /^M[\d.]+ [\d.]+L[\d.]+ [\d.]+$/);
      const paper = [...dom.stdout.matchAll(/<path class="paper"/g)];
      assert.equal(paper.length, 2);
      // Points with error bars for the groups of two seeds; missing groups draw nothing.
      assert.equal(
        (dom.stdout.match(/<circle class="point"/g) ?? []).length,
        4,
      );
      assert.equal((dom.stdout.match(/<line class="err"/g) ?? []).length, 2);
      assert.ok((dom.stdout.match(/<td class="missing">/g) ?? []).length >= 3);
      // 2. And it paints: a screenshot holds the lines' colours.
      const png = join(dir, "shot.png");
      const shot = await chromium(
        [`--screenshot=${png}`, "--window-size=1200,900", url],
        join(dir, "p2"),
      );
      assert.equal(shot.code, 0);
      assert.ok((await Deno.stat(png)).size > 10_000);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
