import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { initBackend } from "../lib/backend/backend.ts";
import { escapeXml } from "../lib/demo/charts.ts";
import { renderReport } from "../lib/demo/report.ts";
import type { DemoOutcome } from "../lib/demo/summary.ts";
import { confidentLearning } from "../lib/label_issues/confident_learning.ts";
import { demoLabelIssues } from "../lib/label_issues/demo_section.ts";
import {
  findLabelIssues,
  type LabelIssuesResult,
} from "../lib/label_issues/find_label_issues.ts";
import { SelectionHistory } from "../lib/label_issues/history.ts";
import {
  labelIssuesSummary,
  renderLabelIssuesCsv,
  renderLabelIssuesHtml,
  writeLabelIssues,
} from "../lib/label_issues/report.ts";
import {
  FINAL_MODULES,
  flagStats,
  rankLabelIssues,
  SCORE_VARIANTS,
  type ScoreVariant,
  selectionRate,
} from "../lib/label_issues/score.ts";
import {
  readTrainProbabilities,
  softmaxRows,
  type TrainProbabilities,
} from "../lib/label_issues/train_probabilities.ts";
import { loadCheckpoint, saveCheckpoint } from "../lib/train/checkpoint.ts";
import { loadDatasetConfig, resolveConfig } from "../lib/train/config.ts";
import type { TrainConfig } from "../lib/train/config.ts";
import type { Method } from "../lib/train/learner.ts";
import type { EpochMetrics } from "../lib/train/metrics.ts";
import { train } from "../lib/train/trainer.ts";
import {
  readSafetensors,
  writeSafetensors,
} from "../lib/weights/safetensors.ts";
import { tinyWorkspace } from "./_tiny.ts";
import { chromium, hasChromium } from "./_chromium.ts";

const close = (a: number, b: number, tol = 1e-9) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

Deno.test("confidentLearning() finds the off-diagonal samples of a hand-computed confident joint", () => {
  // Thresholds: t0 = (.8 + .6 + .2) / 3, t1 = (.8 + .6 + .2) / 3, t2 = (.8 + .7 + .4) / 3.
  const probs = [
    [0.8, 0.1, 0.1], // y 0: confidently 0
    [0.6, 0.3, 0.1], // y 0: 0
    [0.2, 0.7, 0.1], // y 0: confidently 1 -> issue
    [0.1, 0.8, 0.1], // y 1: 1
    [0.2, 0.6, 0.2], // y 1: 1
    [0.7, 0.2, 0.1], // y 1: confidently 0 -> issue
    [0.1, 0.1, 0.8], // y 2: 2
    [0.1, 0.2, 0.7], // y 2: 2
    [0.3, 0.3, 0.4], // y 2: no class passes its threshold: not counted
  ];
  const labels = [0, 0, 0, 1, 1, 1, 2, 2, 2];
  const cl = confidentLearning(probs.flat(), labels, { classes: 3 });
  close(cl.thresholds[0], 1.6 / 3);
  close(cl.thresholds[1], 1.6 / 3);
  close(cl.thresholds[2], 1.9 / 3);
  assert.deepEqual(cl.confidentJoint, [[2, 1, 0], [1, 2, 0], [0, 0, 2]]);
  assert.deepEqual([...cl.confidentClass], [0, 0, 1, 1, 1, 0, 2, 2, -1]);
  assert.deepEqual([...cl.issues], [0, 0, 1, 0, 0, 1, 0, 0, 0]);
  close(cl.score[2], 0.8);
});

Deno.test("confidentLearning() picks the most probable of several confident classes", () => {
  // t0 = .3, t1 = .35, t2 = .35: low thresholds, so rows pass several.
  const probs = [
    [0.4, 0.35, 0.25], // y 0: 0 (and maybe 1): 0 is more probable -> 0
    [0.2, 0.5, 0.3], // y 0: only 1 -> issue
    [0.3, 0.4, 0.3], // y 1: 0 and 1 pass; 1 is more probable -> no issue
    [0.45, 0.3, 0.25], // y 1: only 0 -> issue
    [0.3, 0.3, 0.4], // y 2: 0 and 2 pass; 2 wins
    [0.1, 0.6, 0.3], // y 2: only 1 -> issue
  ];
  const cl = confidentLearning(probs.flat(), [0, 0, 1, 1, 2, 2], {
    classes: 3,
  });
  assert.deepEqual([...cl.confidentClass], [0, 1, 1, 0, 2, 1]);
  assert.deepEqual(cl.confidentJoint, [[1, 1, 0], [1, 1, 0], [0, 1, 1]]);
  assert.deepEqual([...cl.issues], [0, 1, 0, 1, 0, 1]);
  assert.throws(
    () => confidentLearning([0.5, 0.5], [3], { classes: 2 }),
    /label 3 of sample 0 is outside \[0, 2\)/,
  );
  assert.throws(
    () => confidentLearning([0.5, 0.5, 1], [0], { classes: 2 }),
    /3 probabilities do not make 1 rows of 2 classes/,
  );
});

Deno.test("SelectionHistory maps shuffled batches to dataset indices and round-trips through a checkpoint", async () => {
  const h = new SelectionHistory(11, ["lpm", "iam"]);
  // Epoch 0 in shuffled order, two batches.
  h.record(0, [9, 2, 5], { lpm: [1, 0, 1], iam: [0, 0, 1] });
  h.record(0, [10, 0], { lpm: [1, 1], iam: [1, 0] });
  h.record(1, [2], { lpm: [1], iam: [1] });
  assert.equal(h.epochs, 2);
  assert.equal(h.rowBytes, 2);
  assert.deepEqual(
    Array.from({ length: 11 }, (_, i) => h.seen(0, i) ? 1 : 0),
    [1, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1],
  );
  assert.ok(h.selected("lpm", 0, 9) && !h.selected("iam", 0, 9));
  assert.ok(h.selected("lpm", 0, 10) && h.selected("iam", 0, 10));
  assert.ok(!h.selected("lpm", 0, 2) && h.selected("lpm", 1, 2));
  assert.ok(!h.selected("lpm", 1, 9), "unseen is not selected");
  assert.deepEqual([...h.counts("lpm").seen].slice(0, 3), [1, 0, 2]);
  assert.throws(
    () => h.record(0, [11], { lpm: [1], iam: [1] }),
    /dataset index 11 outside \[0, 11\)/,
  );
  assert.throws(
    () => h.record(0, [1, 2], { lpm: [1] }),
    /module "lpm" gave 1 mask values for a batch of 2/,
  );
  // Through a real checkpoint: the bits travel in its safetensors file.
  const dir = await Deno.makeTempDir();
  try {
    await saveCheckpoint(dir, "last", {
      params: new Map(),
      optimizer: {},
      epoch: 1,
      rngState: null,
      metrics: { selectionHistory: h.toState() as never },
    });
    const { tensors } = await readSafetensors(join(dir, "last.safetensors"));
    assert.deepEqual(
      tensors.get("state.metrics.selectionHistory.bits")?.shape,
      [2, 3, 2],
    );
    const back = SelectionHistory.fromState(
      ((await loadCheckpoint(dir, "last")).metrics as Record<string, unknown>)
        .selectionHistory,
      "last.json",
      { samples: 11, modules: ["lpm", "iam"] },
    );
    assert.deepEqual(back.toState(), h.toState());
    assert.throws(
      () =>
        SelectionHistory.fromState(h.toState(), "last.json", { samples: 12 }),
      /last\.json: selection history covers 11 samples, but the training set has 12/,
    );
    back.truncate(1);
    assert.equal(back.epochs, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Probabilities from per-sample `[K]` rows (the same for every module listed). */
function probabilities(
  rows: number[][],
  labels: number[],
  modules: ("lpm" | "iam" | "lam")[] = ["lpm"],
): TrainProbabilities {
  const flat = Float32Array.from(rows.flat());
  return {
    samples: rows.length,
    classes: rows[0].length,
    probs: Object.fromEntries(modules.map((m) => [m, flat])),
    labels: Int32Array.from(labels),
    epoch: 0,
  };
}

Deno.test("rankLabelIssues() weighs late rejections more, breaks ties by probability, and flags above 1/2", () => {
  const h = new SelectionHistory(5, ["lpm"]);
  // Sample: 0 always selected; 1 never; 2 selected early, rejected late;
  // 3 rejected early, selected late; 4 never seen.
  const sel = [[1, 0, 1, 0], [1, 0, 1, 0], [1, 0, 0, 1], [1, 0, 0, 1]];
  sel.forEach((m, e) => h.record(e, [0, 1, 2, 3], { lpm: m }));
  const late = selectionRate(h, "lpm", { weighting: "late" });
  close(late[2], 3 / 10);
  close(late[3], 7 / 10);
  assert.ok(Number.isNaN(late[4]));
  const probs = probabilities(
    [[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.6, 0.4], [NaN, NaN]],
    [0, 0, 0, 0, 1],
  );
  const r = rankLabelIssues(h, probs);
  assert.deepEqual(r.issues.map((x) => x.index), [1, 2, 3, 0, 4]);
  // Probabilities are float32.
  close(r.issues[0].score, (1 + 0.8) / 2, 1e-7);
  close(r.issues[1].score, (0.7 + 0.5) / 2, 1e-7);
  assert.equal(r.issues[0].suggested, 1);
  assert.equal(r.flagged, 2);
  close(r.estimatedNoiseRate, 2 / 5);
  assert.deepEqual(r.issues[1].selectedFraction, { lpm: 0.5 });
  // The uniform-selection variant cannot tell samples 2 and 3 apart by history.
  const u = rankLabelIssues(h, probs, { variant: "selection" });
  close(u.issues.find((x) => x.index === 2)!.score, 0.5);
  close(u.issues.find((x) => x.index === 3)!.score, 0.5);
  assert.throws(
    () => rankLabelIssues(h, probs, { variant: "nope" as never }),
    /Unknown score variant "nope"/,
  );
});

Deno.test("flagStats() counts precision, recall, F1, precision at K and average precision", () => {
  const isNoisy = [1, 0, 1, 0, 1, 0];
  const s = flagStats([1, 1, 1, 0, 0, 0], isNoisy, {
    ranking: [0, 2, 1, 4, 3, 5],
    k: 2,
  });
  close(s.precision!, 2 / 3);
  close(s.recall!, 2 / 3);
  close(s.f1!, 2 / 3);
  assert.equal(s.k, 2);
  close(s.precision_at_k!, 1);
  close(s.average_precision!, (1 + 1 + 3 / 4) / 3);
  const none = flagStats([0, 0], [0, 0], { ranking: [0, 1], k: 5 });
  assert.equal(none.precision, null);
  assert.equal(none.recall, null);
  assert.equal(none.k, 2);
});

Deno.test("softmaxRows() is a max-shifted softmax per row", () => {
  const p = softmaxRows([0, 0, 1000, 1000 + Math.log(3)], 2);
  close(p[0], 0.5, 1e-7);
  close(p[3], 0.75, 1e-6);
});

// --- A real (tiny) run, end to end -----------------------------------------

await initBackend("wasm", { log: () => {} });

async function tinyRun(dir: string, method: Method, epochs = 2) {
  await tinyWorkspace({
    dir,
    conf: {
      epoch: String(epochs),
      synthetic: { train_per_class: 8, test_per_class: 2, size: 32, seed: 0 },
    },
  });
  const config = resolveConfig(
    method,
    loadDatasetConfig(`${dir}/synthetic.json`),
    {
      noise: 0.4,
      save: method,
      weights: `${dir}/w.safetensors`,
      backend: "wasm",
    },
  );
  await train(config, { log: () => {}, progress: false, argv: [] });
  return join(dir, "runs", method);
}

Deno.test("a finished run keeps its final probabilities; label-issues writes CSV, HTML and JSON with the baseline", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const runDir = await tinyRun(dir, "cufit");
    const tp = await readTrainProbabilities(runDir);
    assert.equal(tp.samples, 24);
    assert.deepEqual(Object.keys(tp.probs).sort(), ["iam", "lam", "lpm"]);
    for (let i = 0; i < 24; i++) {
      const row = tp.probs.lam!.subarray(i * 3, i * 3 + 3);
      close(row[0] + row[1] + row[2], 1, 1e-5);
    }
    const task = await import("../tasks/label_issues.ts");
    const out: string[] = [];
    assert.equal(
      await task.main(
        ["--run", runDir, "--top", "5", "--json"],
        (l) => out.push(l),
      ),
      0,
    );
    await assert.rejects(
      task.main(["--run", runDir, "--top", "0"], () => {}),
      /^UsageError: Option --top must be a positive integer, got "0"; see `deno task label-issues --help`$/,
    );
    const json = JSON.parse(out[out.length - 1]);
    assert.deepEqual(Object.keys(json).slice(0, 5), [
      "flagged",
      "precision",
      "recall",
      "f1",
      "precision_at_k",
    ]);
    assert.equal(json.k, 5);
    assert.equal(json.epochs, 2);
    assert.equal(json.baseline.method, "confident_learning");
    assert.equal(json.baseline.module, "lpm");
    assert.deepEqual(
      json,
      JSON.parse(await Deno.readTextFile(join(runDir, "label_issues.json"))),
    );
    // The CSV: one line per training sample, most suspect first.
    const csv = (await Deno.readTextFile(join(runDir, "label_issues.csv")))
      .trim().split("\n");
    assert.equal(
      csv[0],
      "rank,index,file,given_label,given_name,suggested_label,suggested_name,score,flagged,lpm_selected,iam_selected,true_label,true_name,label_flipped",
    );
    assert.equal(csv.length, 1 + 24);
    const scores = csv.slice(1).map((l) => Number(l.split(",")[7]));
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
    assert.equal(
      csv.slice(1).filter((l) => l.split(",")[8] === "1").length,
      json.flagged,
    );
    assert.match(csv[1], /^1,\d+,synthetic:train\[\d+\],/);
    // The HTML: top 5 with embedded thumbnails, nothing fetched.
    const html = await Deno.readTextFile(join(runDir, "label_issues.html"));
    assert.equal(
      (html.match(/<img class="thumb"[^>]*src="data:image\/png;base64,/g) ??
        []).length,
      5,
    );
    assert.doesNotMatch(html, /<link|@import|url\(|src="http/i);
    assert.match(html, /confident learning on LPM probabilities/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("linear and Rein runs rank from their one module", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const method of ["linear", "rein"] as const) {
      const r = await findLabelIssues(await tinyRun(dir, method, 1));
      const module = method === "linear" ? "lpm" : "rein";
      assert.deepEqual(r.ranking.modules, {
        history: [module],
        final: [module],
      });
      assert.equal(r.baseline.module, module);
      assert.equal(r.epochs, 1);
      // K is at most the training set: precision at K counts K samples.
      const all = await findLabelIssues(r.runDir, { top: 100_000 });
      assert.equal(all.top, all.dataset.length);
      assert.equal(labelIssuesSummary(all).k, all.dataset.length);
      assert.match(
        renderLabelIssuesCsv(r).split("\n")[0],
        new RegExp(`,${module}_selected,`),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A result whose thumbnails are all magenta, to find them on a screenshot. */
function magenta(r: LabelIssuesResult): LabelIssuesResult {
  const data = new Uint8Array(16 * 16 * 3);
  for (let i = 0; i < data.length; i += 3) {
    data[i] = 255;
    data[i + 2] = 255;
  }
  return {
    ...r,
    dataset: {
      ...r.dataset,
      classes: r.dataset.classes,
      describe: (i: number) => r.dataset.describe(i),
      image: () =>
        Promise.resolve({ data, width: 16, height: 16, channels: 3 }),
    },
  };
}

Deno.test({
  name:
    "label_issues.html sorts by a column and shows its thumbnails in headless Chromium",
  ignore: !hasChromium,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const runDir = await tinyRun(dir, "cufit", 1);
      const r = magenta(await findLabelIssues(runDir, { top: 8 }));
      await writeLabelIssues(r);
      const url = `file://${join(runDir, "label_issues.html")}`;
      // 1. #sort=index: the script reorders the rows by dataset index.
      const dom = await chromium(
        ["--dump-dom", `${url}#sort=index`],
        await Deno.makeTempDir({ dir }),
      );
      assert.equal(dom.code, 0);
      const body = dom.stdout.slice(dom.stdout.indexOf("<tbody>"));
      const indices = [
        ...body.matchAll(
          /<tr[^>]*><td data-v="\d+">\d+<\/td><td[^>]*>.*?<\/td><td data-v="(\d+)">/g,
        ),
      ]
        .map((m) => Number(m[1]));
      assert.equal(indices.length, 8);
      assert.deepEqual(indices, [...indices].sort((a, b) => a - b));
      const ranked = r.ranking.issues.slice(0, 8).map((x) => x.index);
      assert.deepEqual(
        [...indices].sort((a, b) => a - b),
        [...ranked].sort((a, b) => a - b),
      );
      assert.match(
        dom.stdout,
        /data-key="index"[^>]*aria-sort="ascending"|aria-sort="ascending"[^>]*data-key="index"/,
      );
      // 2. What it painted: eight 64 x 64 magenta thumbnails.
      const png = join(dir, "shot.png");
      const shot = await chromium(
        [`--screenshot=${png}`, "--window-size=1200,1600", url],
        await Deno.makeTempDir({ dir }),
      );
      assert.equal(shot.code, 0);
      const { data, info } = await sharp(png).raw().toBuffer({
        resolveWithObject: true,
      });
      let n = 0;
      for (let i = 0; i < data.length; i += info.channels) {
        if (data[i] > 220 && data[i + 1] < 40 && data[i + 2] > 220) n++;
      }
      assert.ok(n > 8 * 64 * 64 * 0.9, `${n} magenta pixels`);
      const summary = labelIssuesSummary(r);
      assert.equal(summary.k, 8);
      assert.match(renderLabelIssuesHtml(r), /Top 8/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** The recorded demo run (see tests/fixtures/label_issues/README.md). */
async function recordedRun(name: string) {
  const { tensors, metadata } = await readSafetensors(
    new URL(`./fixtures/label_issues/${name}.safetensors`, import.meta.url)
      .pathname,
  );
  const labels = tensors.get("labels")!.data as Int32Array;
  const modules = metadata!.modules.split(",") as ("lpm" | "iam")[];
  const history = SelectionHistory.fromState({
    format: "cufit-ts-selection-history/1",
    samples: labels.length,
    modules,
    bits: tensors.get("history"),
  }, name);
  const probs: TrainProbabilities = {
    samples: labels.length,
    classes: tensors.get("probs.lpm")!.shape[1],
    probs: Object.fromEntries(
      ["lpm", "iam", "lam"].map((
        m,
      ) => [m, tensors.get(`probs.${m}`)!.data as Float32Array]),
    ),
    labels,
    epoch: history.epochs - 1,
  };
  return {
    history,
    probs,
    isNoisy: tensors.get("is_noisy")!.data as Uint8Array,
  };
}

/** Every score variant's figures, and the confident-learning baseline's, on a recorded run. */
async function compareVariants(name: string) {
  const { history, probs, isNoisy } = await recordedRun(name);
  assert.equal(history.epochs, 100);
  const figures = (variant: ScoreVariant) => {
    const r = rankLabelIssues(history, probs, {
      variant,
      finalModules: FINAL_MODULES.cufit,
    });
    const mask = new Uint8Array(history.samples);
    for (const x of r.issues) if (x.flagged) mask[x.index] = 1;
    return flagStats(mask, isNoisy, {
      ranking: r.issues.map((x) => x.index),
    });
  };
  const v = Object.fromEntries(
    SCORE_VARIANTS.map((name) => [name, figures(name)]),
  ) as Record<ScoreVariant, ReturnType<typeof figures>>;
  const cl = confidentLearning(probs.probs.lpm!, probs.labels, {
    classes: probs.classes,
  });
  const clOrder = [...cl.score.keys()].sort((a, b) =>
    cl.score[b] - cl.score[a] || a - b
  );
  const base = flagStats(cl.issues, isNoisy, { ranking: clOrder });
  return { v, base, noisy: isNoisy.reduce((a, b) => a + b, 0) };
}

Deno.test("score variants compared on a recorded CUFIT demo run at 40% noise", async () => {
  const { v, base, noisy } = await compareVariants("demo_cufit40");
  assert.equal(noisy, 116);
  // 1. The default: 109 of its 137 flags are flipped labels, 109 of 116 found.
  assert.equal(v.curriculum.flagged, 137);
  close(v.curriculum.precision!, 109 / 137);
  close(v.curriculum.recall!, 109 / 116);
  // 2. At least the baseline's precision and recall (CL: 92 of 117, 92 of 116).
  assert.equal(base.flagged, 117);
  close(base.precision!, 92 / 117);
  assert.ok(v.curriculum.precision! >= base.precision!);
  assert.ok(v.curriculum.recall! >= base.recall!);
  assert.ok(v.curriculum.average_precision! > base.average_precision! + 0.05);
  // 3. The history alone flags about as well but ranks worse.
  for (const h of ["selection", "late_selection"] as const) {
    assert.ok(v[h].recall! >= v.curriculum.recall!, h);
    assert.ok(
      v.curriculum.average_precision! > v[h].average_precision! + 0.03,
      h,
    );
    assert.ok(v.curriculum.precision_at_k! > v[h].precision_at_k!, h);
  }
  // 4. The final margin alone is as good here (within one sample).
  assert.ok(
    Math.abs(
      v.curriculum.average_precision! - v.final_probability.average_precision!,
    ) < 0.01,
  );
  assert.ok(Math.abs(v.curriculum.flagged - v.final_probability.flagged) <= 1);
});

Deno.test("score variants compared on a recorded CUFIT demo run at 20% noise", async () => {
  const { v, base, noisy } = await compareVariants("demo_cufit20");
  assert.equal(noisy, 62);
  // 1. The default finds every flipped label, among 96 flags.
  assert.equal(v.curriculum.flagged, 96);
  close(v.curriculum.recall!, 1);
  close(v.curriculum.precision!, 62 / 96);
  // 2. Here the baseline flags fewer and more precisely (41 of 57), finding
  //    two thirds; the default's F1 and ranking are better.
  assert.equal(base.flagged, 57);
  close(base.precision!, 41 / 57);
  assert.ok(v.curriculum.precision! < base.precision!);
  assert.ok(v.curriculum.f1! > base.f1! + 0.05);
  assert.ok(v.curriculum.average_precision! > base.average_precision! + 0.05);
  // 3. Both halves matter for the ranking: the combination beats the final
  //    margin alone and the history alone.
  assert.ok(
    v.curriculum.average_precision! >
      v.final_probability.average_precision! + 0.02,
  );
  for (const h of ["selection", "late_selection"] as const) {
    assert.ok(
      v.curriculum.average_precision! > v[h].average_precision! + 0.05,
      h,
    );
  }
});

Deno.test("the demo report's likely-mislabeled section: 16 inline thumbnails and the precision/recall line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const runDir = await tinyRun(dir, "cufit", 1);
    const li = await demoLabelIssues(runDir);
    assert.equal(li.items.length, 16);
    assert.equal(li.method, "cufit");
    assert.match(
      li.line,
      /^\d+ flagged \(estimated noise rate [\d.]+%, actual [\d.]+%\): precision .*; confident learning on LPM: \d+ flagged, precision /,
    );
    const outcome: DemoOutcome = {
      noiseRate: 0.4,
      actualNoiseRate: 0.4,
      backend: "wasm",
      seconds: 1,
      dataset: {
        name: "demo",
        classes: ["a", "b", "c"],
        train: 24,
        test: 6,
        synthetic: true,
      },
      weights: "w.safetensors",
      weightsNote: null,
      methods: [{
        method: "linear",
        metrics: [
          {
            epoch: 0,
            lr: 1e-3,
            trainLoss: 1,
            trainAcc: 0.5,
            testAcc: 0.5,
          } as EpochMetrics,
        ],
        last10: 0.5,
        best: { epoch: 0, value: 0.5 },
        confusion: [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        runDir,
        seconds: 1,
        // The tiny run's own resolved config, as the demo passes it.
        config: JSON.parse(
          await Deno.readTextFile(join(runDir, "config.json")),
        ).config as TrainConfig,
      }],
      labelIssues: li,
    };
    const html = renderReport(outcome);
    assert.match(html, /<h2>Likely mislabeled training images<\/h2>/);
    assert.equal(
      (html.match(/<image href="data:image\/png;base64,/g) ?? []).length,
      16,
    );
    assert.doesNotMatch(html, /<img|<script|<link/);
    assert.ok(html.includes(escapeXml(li.line)));
    const without = renderReport({ ...outcome, labelIssues: undefined });
    assert.doesNotMatch(without, /Likely mislabeled/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readTrainProbabilities() names the file and what it expected", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => readTrainProbabilities(dir),
      /has no train_probabilities\.safetensors: training writes it after its last epoch/,
    );
    await writeSafetensors(join(dir, "train_probabilities.safetensors"), {
      labels: { dtype: "I32", shape: [2], data: Int32Array.from([0, 1]) },
      "probs.lpm": { dtype: "F32", shape: [3, 2], data: new Float32Array(6) },
    }, { metadata: { format: "cufit-ts-train-probabilities/1" } });
    await assert.rejects(
      () => readTrainProbabilities(dir),
      /tensor "probs\.lpm" is F32 \[3,2\], expected F32 \[2, K\]/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
