/**
 * The demo's report: one self-contained `report.html` (inline SVG and CSS,
 * nothing fetched, no scripts) with the test-accuracy curves of every method,
 * CUFIT's selection precision and recall per epoch for LPM and IAM, a
 * confusion matrix per method and the resolved configuration; and PNG copies
 * of the plots for terminals and notebooks.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import { renderDemoLabelIssues } from "../label_issues/demo_section.ts";
import type { Method } from "../train/learner.ts";
import { milestones } from "../train/config.ts";
import { lastEpochsLabel } from "../train/metrics.ts";
import { confusionChart, escapeXml, lineChart, type Series } from "./charts.ts";
import {
  type DemoOutcome,
  formatPercent,
  formatSeconds,
  METHOD_LABELS,
  summarize,
  verdict,
} from "./summary.ts";

/** Line colours per method and module (colour-blind-safe Okabe-Ito hues). */
const COLORS: Record<string, string> = {
  linear: "#0072b2",
  rein: "#d55e00",
  cufit: "#009e73",
  lpm: "#0072b2",
  iam: "#cc79a7",
};

/** The report's plots as SVG strings, keyed by the PNG file stem. */
export function reportPlots(outcome: DemoOutcome): Map<string, string> {
  const plots = new Map<string, string>();
  const acc: Series[] = outcome.methods.map((m) => ({
    name: `${METHOD_LABELS[m.method]} (${lastEpochsLabel(m.metrics.length)} ${
      (m.last10 * 100).toFixed(1)
    }%)`,
    color: COLORS[m.method],
    points: m.metrics.map((r) => [r.epoch + 1, r.testAcc]),
  }));
  plots.set(
    "accuracy",
    lineChart(acc, {
      title: `Test accuracy, ${
        Math.round(outcome.noiseRate * 100)
      }% noisy training labels`,
      xLabel: "epoch",
      yLabel: "test accuracy",
    }),
  );
  const cufit = outcome.methods.find((m) => m.method === "cufit");
  if (cufit) {
    const sel: Series[] = [];
    for (const module of ["lpm", "iam"]) {
      for (const what of ["precision", "recall"] as const) {
        sel.push({
          name: `${module.toUpperCase()} ${what}`,
          color: COLORS[module],
          dashed: what === "recall",
          points: cufit.metrics.map((r) => [
            r.epoch + 1,
            r.selection?.[module]?.[what] ?? null,
          ]),
        });
      }
    }
    plots.set(
      "selection",
      lineChart(sel, {
        title: "CUFIT sample selection (precision: clean among selected)",
        xLabel: "epoch",
        yLabel: "share",
      }),
    );
  }
  for (const m of outcome.methods) {
    const acc = m.metrics[m.metrics.length - 1]?.testAcc;
    plots.set(
      `confusion_${m.method}`,
      confusionChart(m.confusion, {
        title: `${METHOD_LABELS[m.method]}: final model${
          acc === undefined ? "" : `, ${(acc * 100).toFixed(1)}%`
        }`,
        classes: outcome.dataset.classes,
        color: COLORS[m.method],
      }),
    );
  }
  return plots;
}

const CSS = `
body { font-family: sans-serif; max-width: 1100px; margin: 24px auto; padding: 0 16px; color: #222; line-height: 1.45; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 8px 12px; }
.verdict { background: #eef6ee; border-left: 4px solid #009e73; padding: 8px 12px; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
pre { background: #f6f6f6; padding: 10px; overflow-x: auto; font-size: 12px; }
`;

const pct = formatPercent;

/** The full `report.html` text of an outcome. */
export function renderReport(outcome: DemoOutcome): string {
  const plots = reportPlots(outcome);
  const summary = summarize(outcome);
  const e = escapeXml;
  const { dataset } = outcome;
  const rows = outcome.methods.map((m) => {
    const s = summary.methods[m.method]!;
    const pr = (k: string) =>
      s.selection[k]
        ? `${pct(s.selection[k].precision)} / ${pct(s.selection[k].recall)}`
        : "-";
    return `<tr><td>${e(METHOD_LABELS[m.method])}</td><td>${
      pct(s.last10_acc)
    }</td><td>${pct(s.best_acc)} (epoch ${(m.best?.epoch ?? 0) + 1})</td><td>${
      pr("lpm")
    }</td><td>${pr("iam")}</td><td>${formatSeconds(m.seconds)}</td></tr>`;
  });
  const dataNote = dataset.synthetic
    ? `<p class="note"><b>This is the built-in synthetic demo.</b> The images are generated lesion-like pictures (shapes, textures and tints on a skin-coloured background), not medical data, and the backbone is a small DINOv2-architecture ViT that this project pre-trained itself on a different synthetic task (predicting shape and texture on other images), not Meta's DINOv2. It shows the mechanism CUFIT relies on, at toy scale, in minutes on a CPU. The paper's numbers need real data and real weights: <code>deno task fetch:medmnist bloodmnist</code>, <code>deno task fetch:weights dinov2_vits14</code>, then <code>deno task demo --data bloodmnist --weights data/weights/dinov2_vits14_pretrain.pth --yes</code> (100 epochs at 224 px: hours on a CPU, a GPU backend recommended).</p>`
    : `<p class="note">Dataset <code>${
      e(dataset.name)
    }</code> with backbone weights <code>${e(outcome.weights)}</code>.</p>`;
  const lastN = lastEpochsLabel(
    Math.max(0, ...outcome.methods.map((m) => m.metrics.length)),
  );
  const section = (title: string, body: string) =>
    `<h2>${e(title)}</h2>\n${body}`;
  const confusion = outcome.methods.map((m) =>
    `<figure>${plots.get(`confusion_${m.method}`)}</figure>`
  ).join("\n");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CUFIT-TS demo: ${e(dataset.name)}, noise ${outcome.noiseRate}</title>
<style>${CSS}</style>
</head>
<body>
<h1>CUFIT-TS demo: linear probing vs Rein vs CUFIT under label noise</h1>
<p>Dataset <b>${
    e(dataset.name)
  }</b> (${dataset.train} training / ${dataset.test} test images, ${dataset.classes.length} classes);
${
    Math.round(outcome.noiseRate * 100)
  }% symmetric label noise on the training labels (${
    pct(outcome.actualNoiseRate)
  } actually flipped, seed 0; test labels clean).
All three methods trained on the same noisy labels with a frozen backbone (<code>${
    e(outcome.weights)
  }</code>); backend ${e(outcome.backend)}; ${
    formatSeconds(outcome.seconds)
  } in all.</p>
${dataNote}
${
    section(
      "Results",
      `<table>
<tr><th>method</th><th>${lastN} test acc</th><th>best test acc</th><th>LPM selection P / R</th><th>IAM selection P / R</th><th>time</th></tr>
${rows.join("\n")}
</table>
<p class="verdict">${e(verdict(outcome))}</p>
<p>${
        e(lastN[0].toUpperCase() + lastN.slice(1))
      } accuracy is the paper's figure: the mean test accuracy of the last ${
        lastN.slice(5)
      } epochs (the paper averages the last 10 of 100). Selection precision is the share of clean labels among the samples a module selected (its prediction agrees with the noisy label), recall the share of clean samples it selected, over the last epoch.</p>`,
    )
  }
${
    section(
      "Test accuracy per epoch",
      `<figure>${plots.get("accuracy")}</figure>`,
    )
  }
${
    plots.has("selection")
      ? section(
        "CUFIT's selection per epoch",
        `<p>LPM (the linear probe) selects the samples that train IAM (the first Rein adapter); IAM selects those that train LAM (the second adapter, which predicts).</p>
<figure>${plots.get("selection")}</figure>`,
      )
      : ""
  }
${
    outcome.labelIssues
      ? section(
        "Likely mislabeled training images",
        renderDemoLabelIssues(outcome.labelIssues),
      )
      : ""
  }
${
    section(
      "Confusion matrices (test set, final model)",
      `<div class="plots">${confusion}</div>`,
    )
  }
${
    section(
      "Settings",
      `${
        outcome.weightsNote ? `<p>Backbone: ${e(outcome.weightsNote)}</p>` : ""
      }${settingsTable(outcome)}
<p>Each method's run folder (<code>runs/&lt;method&gt;/</code> beside this report) holds its <code>config.json</code> (the full resolved configuration, argv and input digests), <code>metrics.jsonl</code> and <code>train.log</code>.</p>`,
    )
  }
</body>
</html>
`;
}

/** The settings every method shared, as rows of an HTML table. */
export function settingsTable(outcome: DemoOutcome): string {
  const c = outcome.methods[0]?.config;
  if (!c) return "";
  const rows: [string, string][] = [
    [
      "dataset",
      `${c.dataset.name}${
        outcome.dataset.synthetic ? " (synthetic)" : ""
      }, ${c.dataset.numClasses} classes`,
    ],
    [
      "label noise",
      `${c.noise.mode}, rate ${c.noise.rate} (${
        pct(outcome.actualNoiseRate)
      } flipped), noise seed ${c.noise.seed}`,
    ],
    ["backbone weights", outcome.weights],
    ["epochs", String(c.epochs)],
    ["batch size", String(c.batchSize)],
    [
      "learning rate",
      `${c.lr}, x${c.gamma} at epochs ${
        milestones(c.epochs, c.milestoneFractions).join(", ")
      } (Adam)`,
    ],
    ["seed", `${c.seed} (shuffling, augmentation, init)`],
    [
      "images",
      `resize ${c.resize} px, crop ${c.crop} px, ${
        c.augment ? "random crop and flip" : "center crop"
      }`,
    ],
    ["backend", outcome.backend],
  ];
  if (c.maxBatches !== null) {
    rows.push(["batches per epoch", `at most ${c.maxBatches}`]);
  }
  if (c.skipBad) rows.push(["unreadable images", "skipped (--skip-bad)"]);
  const e = escapeXml;
  return `<table>\n${
    rows.map(([k, v]) => `<tr><td>${e(k)}</td><td>${e(v)}</td></tr>`).join(
      "\n",
    )
  }\n</table>`;
}

/** Options of {@linkcode writeReport}. */
export interface WriteReportOptions {
  /**
   * Also write a PNG of every plot (`accuracy.png`, `selection.png`,
   * `confusion_<method>.png`), rasterized by sharp.
   * @default true
   */
  png?: boolean;
}

/**
 * Writes `report.html`, `summary.json` and the plot PNGs into `dir`; returns
 * the paths written.
 */
export async function writeReport(
  dir: string,
  outcome: DemoOutcome,
  options: WriteReportOptions = {},
): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const written: string[] = [];
  const put = async (name: string, data: string | Uint8Array) => {
    const path = join(dir, name);
    await writeFileAtomic(path, data);
    written.push(path);
  };
  await put("summary.json", JSON.stringify(summarize(outcome), null, 2) + "\n");
  await put("report.html", renderReport(outcome));
  if (options.png ?? true) {
    const { default: sharp } = await import("sharp");
    for (const [stem, svg] of reportPlots(outcome)) {
      // density 144 renders at twice the SVG's 72-dpi size: crisp text.
      const png = await sharp(new TextEncoder().encode(svg), { density: 144 })
        .png()
        .toBuffer();
      await put(`${stem}.png`, new Uint8Array(png));
    }
  }
  return written;
}

/** The methods in the report's order. */
export const REPORT_ORDER: readonly Method[] = ["linear", "rein", "cufit"];
