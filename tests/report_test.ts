import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { escapeXml, lineChart, niceTicks } from "../lib/demo/charts.ts";
import { renderReport, reportPlots, writeReport } from "../lib/demo/report.ts";
import type { DemoOutcome, MethodOutcome } from "../lib/demo/summary.ts";
import { loadDatasetConfig, resolveConfig } from "../lib/train/config.ts";
import type { Method } from "../lib/train/learner.ts";
import type { EpochMetrics } from "../lib/train/metrics.ts";
import { chromium, hasChromium } from "./_chromium.ts";

function methodOutcome(method: Method, peak: number): MethodOutcome {
  const metrics: EpochMetrics[] = Array.from({ length: 12 }, (_, e) => ({
    epoch: e,
    lr: 1e-3,
    trainLoss: 1 / (e + 1),
    trainAcc: 0.4 + e * 0.02,
    testAcc: peak - Math.abs(e - 5) * 0.01,
    ...(method === "cufit"
      ? {
        heads: { lpm: { testAcc: 0.6 }, iam: { testAcc: 0.7 }, lam: {} },
        selection: {
          lpm: {
            total: 100,
            selected: 50,
            clean: 60,
            cleanSelected: 45 + (e % 3),
            precision: 0.9 + e * 0.005,
            recall: e === 3 ? null : 0.7 + e * 0.01,
          },
          iam: {
            total: 100,
            selected: 55,
            clean: 60,
            cleanSelected: 50,
            precision: 0.92,
            recall: 0.8,
          },
        },
      }
      : {}),
  }));
  return {
    method,
    metrics,
    last10: peak - 0.03,
    best: { epoch: 5, value: peak },
    confusion: [[8, 1, 1], [2, 7, 1], [0, 3, 7]],
    runDir: `/tmp/x/runs/${method}`,
    seconds: 42,
    config: resolveConfig(method, loadDatasetConfig("demo"), {
      epochs: 12,
      noise: 0.4,
      save: method,
    }),
  };
}

function outcome(synthetic = true): DemoOutcome {
  return {
    noiseRate: 0.4,
    actualNoiseRate: 0.38,
    backend: "wasm+openblas",
    seconds: 150,
    dataset: {
      name: synthetic ? "demo" : "bloodmnist",
      classes: ["disc-smooth", "ring <b>", "ellipse"],
      train: 30,
      test: 30,
      synthetic,
    },
    weights: "data/demo/backbone.safetensors",
    weightsNote: "pre-trained on shapes",
    methods: [
      methodOutcome("linear", 0.7),
      methodOutcome("rein", 0.65),
      methodOutcome("cufit", 0.8),
    ],
  };
}

Deno.test("renderReport() is self-contained: no scripts, links, fonts or remote URLs", () => {
  const html = renderReport(outcome());
  assert.match(html, /^<!DOCTYPE html>/);
  assert.doesNotMatch(html, /<script|<link|<img|@import|@font-face|url\(/i);
  const urls = html.match(/https?:\/\/[^\s"'<>]+/g) ?? [];
  // Only the SVG namespace, which is a name, not something fetched.
  assert.deepEqual(
    [...new Set(urls)],
    ["http://www.w3.org/2000/svg"],
  );
});

Deno.test("renderReport() says the default is synthetic and what real runs need", () => {
  const html = renderReport(outcome(true));
  assert.match(html, /built-in synthetic demo/);
  assert.match(html, /--data bloodmnist --weights/);
  const real = renderReport(outcome(false));
  assert.doesNotMatch(real, /built-in synthetic demo/);
  assert.match(real, /Dataset <code>bloodmnist<\/code>/);
});

Deno.test("renderReport() escapes class names and shows the verdict and the config", () => {
  const html = renderReport(outcome());
  assert.match(html, /ring &#60;b&#62;/);
  assert.doesNotMatch(html, /ring <b>/);
  assert.match(html, /CUFIT beats Rein by 15\.0 points/);
  // A table of the settings, not a JSON dump with absolute paths.
  assert.match(html, /<h2>Settings<\/h2>/);
  assert.match(html, /<tr><td>epochs<\/td><td>12<\/td><\/tr>/);
  assert.match(html, /<tr><td>label noise<\/td><td>symmetric, rate 0\.4/);
  assert.doesNotMatch(html, /&#34;epochs&#34;|\/tmp\/x/);
});

Deno.test("reportPlots() draws accuracy, selection and one confusion matrix per method", () => {
  const plots = reportPlots(outcome());
  assert.deepEqual([...plots.keys()], [
    "accuracy",
    "selection",
    "confusion_linear",
    "confusion_rein",
    "confusion_cufit",
  ]);
  const sel = plots.get("selection")!;
  // Four lines: LPM and IAM precision and recall; the 0/0 recall breaks a line.
  const paths = [...sel.matchAll(/class="series"[^>]*d="([^"]*)"/g)].map((m) =>
    m[1]
  );
  assert.equal(paths.length, 4);
  assert.equal(paths[1].split("M").length - 1, 2);
  const noCufit = reportPlots({
    ...outcome(),
    methods: outcome().methods.slice(0, 2),
  });
  assert.ok(!noCufit.has("selection"));
});

Deno.test("lineChart() maps values into the plot area and clamps out-of-range ones", () => {
  const svg = lineChart(
    [{ name: "a", color: "#ff0000", points: [[1, 0], [2, 1], [3, 2]] }],
    { title: "t", xLabel: "x", yLabel: "y", width: 200, height: 200 },
  );
  const d = /class="series"[^>]*d="([^"]*)"/.exec(svg)![1];
  const ys = [...d.matchAll(/[ML][\d.]+ ([\d.]+)/g)].map((m) => Number(m[1]));
  assert.equal(ys.length, 3);
  assert.ok(ys[0] > ys[1]);
  assert.equal(ys[1], ys[2]);
});

Deno.test("niceTicks() steps in round numbers and escapeXml() escapes markup", () => {
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(1, 30, 5), [10, 20, 30]);
  assert.deepEqual(niceTicks(0, 0.5, 5), [0, 0.1, 0.2, 0.3, 0.4, 0.5]);
  assert.equal(
    escapeXml(`<a href="x">&'`),
    "&#60;a href=&#34;x&#34;&#62;&#38;&#39;",
  );
});

Deno.test("writeReport() writes summary.json with the issue's keys, the report and PNGs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = await writeReport(join(dir, "out"), outcome());
    const names = files.map((f) => f.slice(join(dir, "out").length + 1));
    assert.deepEqual(names.sort(), [
      "accuracy.png",
      "confusion_cufit.png",
      "confusion_linear.png",
      "confusion_rein.png",
      "report.html",
      "selection.png",
      "summary.json",
    ]);
    const summary = JSON.parse(
      await Deno.readTextFile(join(dir, "out", "summary.json")),
    );
    assert.deepEqual(Object.keys(summary), [
      "dataset",
      "synthetic",
      "noise_rate",
      "actual_noise_rate",
      "epochs",
      "seed",
      "noise_seed",
      "backend",
      "weights",
      "seconds",
      "methods",
    ]);
    assert.equal(summary.epochs, 12);
    assert.equal(summary.seed, 0);
    assert.deepEqual(Object.keys(summary.methods), ["linear", "rein", "cufit"]);
    assert.deepEqual(Object.keys(summary.methods.cufit), [
      "last10_acc",
      "last_epochs",
      "best_acc",
      "selection",
    ]);
    // The last epoch's selection figures.
    const sel = summary.methods.cufit.selection;
    assert.deepEqual(Object.keys(sel), ["lpm", "iam"]);
    assert.ok(Math.abs(sel.lpm.precision - 0.955) < 1e-9);
    assert.ok(Math.abs(sel.lpm.recall - 0.81) < 1e-9);
    assert.deepEqual(sel.iam, { precision: 0.92, recall: 0.8 });
    assert.deepEqual(summary.methods.linear.selection, {});
    const meta = await sharp(join(dir, "out", "accuracy.png")).metadata();
    assert.equal(meta.format, "png");
    assert.ok(meta.width! >= 640, `width ${meta.width}`);
    // The rasterized chart is not blank: the lines' colours are in it.
    const { data, info } = await sharp(join(dir, "out", "accuracy.png"))
      .raw().toBuffer({ resolveWithObject: true });
    assert.ok(countColour(data, info.channels, [0xd5, 0x5e, 0x00]) > 100);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Pixels within 40 of an RGB colour. */
function countColour(
  data: Uint8Array,
  channels: number,
  rgb: [number, number, number],
): number {
  let n = 0;
  for (let i = 0; i < data.length; i += channels) {
    if (
      Math.abs(data[i] - rgb[0]) < 40 && Math.abs(data[i + 1] - rgb[1]) < 40 &&
      Math.abs(data[i + 2] - rgb[2]) < 40
    ) n++;
  }
  return n;
}

Deno.test({
  name: "report.html draws its plots in headless Chromium",
  ignore: !hasChromium,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await writeReport(dir, outcome(), { png: false });
      const url = `file://${join(dir, "report.html")}`;
      // 1. The DOM Chromium built: every chart's lines are SVG paths with data.
      const dom = await chromium(
        ["--dump-dom", url],
        await Deno.makeTempDir({ dir }),
      );
      assert.equal(dom.code, 0);
      const series = [
        ...dom.stdout.matchAll(/<path class="series"[^>]*d="([^"]*)"/g),
      ].map((m) => m[1]);
      assert.equal(series.length, 3 + 4);
      for (const d of series) assert.match(d, /^M[\d.]+ [\d.]+L/);
      const cells = dom.stdout.match(/<path class="cell"/g) ?? [];
      assert.equal(cells.length, 3 * 9);
      // 2. What it painted: the method colours appear on the screenshot.
      const png = join(dir, "shot.png");
      const shot = await chromium(
        [`--screenshot=${png}`, "--window-size=1200,2400", url],
        await Deno.makeTempDir({ dir }),
      );
      assert.equal(shot.code, 0);
      const { data, info } = await sharp(png).raw().toBuffer({
        resolveWithObject: true,
      });
      for (
        const rgb of [[0x00, 0x72, 0xb2], [0xd5, 0x5e, 0x00], [
          0x00,
          0x9e,
          0x73,
        ]] as [number, number, number][]
      ) {
        assert.ok(
          countColour(data, info.channels, rgb) > 200,
          `colour ${rgb} barely painted`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
