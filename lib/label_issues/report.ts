/**
 * The label-issue files of a run folder:
 *
 * - `label_issues.csv`: every training sample, most suspect first: rank,
 *   dataset index, file, given label and name, suggested label and name,
 *   score, flagged, the fraction of epochs each recording module selected
 *   it (`lpm_selected`, `iam_selected`, ...), and, when the noise was
 *   injected, the true label and whether the label was flipped;
 * - `label_issues.html`: self-contained (images are `data:` URIs, one inline
 *   script, nothing fetched): the figures of the score and of the
 *   confident-learning baseline, and the top K samples as thumbnails in a
 *   table sortable by clicking a column heading (or by `#sort=<column>` in
 *   the address, `-<column>` for descending);
 * - `label_issues.json`: the figures ({@linkcode labelIssuesSummary}).
 *
 * Each is written to a temporary file and renamed.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import { escapeXml } from "../demo/charts.ts";
import { formatPercent } from "../demo/summary.ts";
import type { LabelIssuesResult } from "./find_label_issues.ts";
import type { FlagStats } from "./score.ts";
import { thumbnailDataUri } from "./thumbnail.ts";

/** The figures of a result, as `label_issues.json` and `--json` hold them. */
export interface LabelIssuesSummary {
  flagged: number;
  precision: number | null;
  recall: number | null;
  f1: number | null;
  precision_at_k: number | null;
  k: number;
  average_precision: number | null;
  estimated_noise_rate: number;
  actual_noise_rate: number | null;
  variant: string;
  method: string;
  samples: number;
  epochs: number;
  baseline: {
    method: "confident_learning";
    module: string;
    flagged: number;
    precision: number | null;
    recall: number | null;
    f1: number | null;
    precision_at_k: number | null;
    average_precision: number | null;
  };
}

/** The figures of a result (stats are null when the run injected no noise). */
export function labelIssuesSummary(r: LabelIssuesResult): LabelIssuesSummary {
  const s = r.stats;
  const b = r.baseline.stats;
  return {
    flagged: r.ranking.flagged,
    precision: s?.precision ?? null,
    recall: s?.recall ?? null,
    f1: s?.f1 ?? null,
    precision_at_k: s?.precision_at_k ?? null,
    k: r.top,
    average_precision: s?.average_precision ?? null,
    estimated_noise_rate: r.ranking.estimatedNoiseRate,
    actual_noise_rate: r.truth?.actualRate ?? null,
    variant: r.ranking.variant,
    method: r.config.method,
    samples: r.dataset.length,
    epochs: r.epochs,
    baseline: {
      method: "confident_learning",
      module: r.baseline.module,
      flagged: r.baseline.flagged,
      precision: b?.precision ?? null,
      recall: b?.recall ?? null,
      f1: b?.f1 ?? null,
      precision_at_k: b?.precision_at_k ?? null,
      average_precision: b?.average_precision ?? null,
    },
  };
}

/** One CSV field, quoted when it holds a comma, quote or line break. */
function csvField(v: string | number | null): string {
  if (v === null) return "";
  const s = typeof v === "number"
    ? (Number.isFinite(v) ? String(Number(v.toPrecision(6))) : "")
    : v;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** The `label_issues.csv` text. */
export function renderLabelIssuesCsv(r: LabelIssuesResult): string {
  const names = r.dataset.classes;
  const modules = r.ranking.modules.history;
  const header = [
    "rank",
    "index",
    "file",
    "given_label",
    "given_name",
    "suggested_label",
    "suggested_name",
    "score",
    "flagged",
    ...modules.map((m) => `${m}_selected`),
    ...(r.truth ? ["true_label", "true_name", "label_flipped"] : []),
  ];
  const lines = [header.join(",")];
  r.ranking.issues.forEach((x, rank) => {
    lines.push(
      [
        rank + 1,
        x.index,
        r.dataset.describe(x.index),
        x.given,
        names[x.given] ?? null,
        x.suggested < 0 ? null : x.suggested,
        names[x.suggested] ?? null,
        x.score,
        x.flagged ? 1 : 0,
        ...modules.map((m) => x.selectedFraction[m] ?? null),
        ...(r.truth
          ? [
            r.truth.clean[x.index],
            names[r.truth.clean[x.index]] ?? null,
            r.truth.isNoisy[x.index],
          ]
          : []),
      ].map(csvField).join(","),
    );
  });
  return lines.join("\n") + "\n";
}

const pct = formatPercent;

/** One line: the score's precision/recall against the baseline's (for reports and logs). */
export function precisionRecallLine(r: LabelIssuesResult): string {
  const s = r.stats;
  const b = r.baseline.stats;
  if (!s || !b) {
    return `${r.ranking.flagged} flagged (estimated noise rate ${
      pct(r.ranking.estimatedNoiseRate)
    }); no injected noise to check them against`;
  }
  return `${r.ranking.flagged} flagged (estimated noise rate ${
    pct(r.ranking.estimatedNoiseRate)
  }, actual ${pct(r.truth!.actualRate)}): precision ${
    pct(s.precision)
  }, recall ${pct(s.recall)}, F1 ${pct(s.f1)}, precision@${s.k} ${
    pct(s.precision_at_k)
  }; confident learning on ${r.baseline.module.toUpperCase()}: ${b.flagged} flagged, precision ${
    pct(b.precision)
  }, recall ${pct(b.recall)}, F1 ${pct(b.f1)}, precision@${b.k} ${
    pct(b.precision_at_k)
  }`;
}

const CSS = `
body { font-family: sans-serif; max-width: 1200px; margin: 24px auto; padding: 0 16px; color: #222; line-height: 1.45; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; vertical-align: middle; }
td.l, th.l { text-align: left; }
#issues th { cursor: pointer; background: #f3f3f3; user-select: none; }
#issues th[aria-sort=ascending]::after { content: " \\25B2"; }
#issues th[aria-sort=descending]::after { content: " \\25BC"; }
tr.noisy td.truth { color: #b00020; font-weight: bold; }
img.thumb { width: 64px; height: 64px; image-rendering: pixelated; display: block; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 8px 12px; }
`;

// Sorts the table by a column's data-v values; #sort=<key> or #sort=-<key> picks the first sort.
const SCRIPT = `
(function () {
  var table = document.getElementById("issues");
  var heads = table.tHead.rows[0].cells;
  function sortBy(col, desc) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var num = heads[col].dataset.type === "num";
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      var d = num ? Number(x) - Number(y) : (x < y ? -1 : x > y ? 1 : 0);
      if (num && isNaN(d)) d = isNaN(Number(x)) ? 1 : -1;
      return desc ? -d : d;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    for (var i = 0; i < heads.length; i++) heads[i].removeAttribute("aria-sort");
    heads[col].setAttribute("aria-sort", desc ? "descending" : "ascending");
  }
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      sortBy(col, th.getAttribute("aria-sort") === "ascending");
    });
  });
  var m = /sort=(-?)([a-z_]+)/.exec(location.hash);
  if (m) {
    for (var i = 0; i < heads.length; i++) {
      if (heads[i].dataset.key === m[2]) sortBy(i, m[1] === "-");
    }
  }
})();
`;

function statsRow(name: string, flagged: number, s: FlagStats | null): string {
  return `<tr><td class="l">${escapeXml(name)}</td><td>${flagged}</td><td>${
    pct(s?.precision)
  }</td><td>${pct(s?.recall)}</td><td>${pct(s?.f1)}</td><td>${
    pct(s?.precision_at_k)
  }</td><td>${pct(s?.average_precision)}</td></tr>`;
}

/** One sentence on what the result's score variant measures. */
function describeVariant(r: LabelIssuesResult): string {
  const upper = (ms: string[]) => ms.map((m) => m.toUpperCase()).join(" and ");
  const history = `how often ${
    upper(r.ranking.modules.history)
  } refused the given label during training`;
  const margin = `the margin by which the final ${
    upper(r.ranking.modules.final)
  } prefer another class to it`;
  switch (r.ranking.variant) {
    case "selection":
      return `${history}.`;
    case "late_selection":
      return `${history}, later epochs weighing more.`;
    case "final_probability":
      return `${margin}.`;
    default:
      return `half ${history} (later epochs weighing more), half ${margin}.`;
  }
}

/** Options of {@linkcode renderLabelIssuesHtml}. */
export interface RenderHtmlOptions {
  /** Thumbnail `data:` URIs by dataset index (missing ones show no image). */
  thumbnails?: Map<number, string>;
}

/** The `label_issues.html` text (thumbnails passed in, see {@linkcode topThumbnails}). */
export function renderLabelIssuesHtml(
  r: LabelIssuesResult,
  options: RenderHtmlOptions = {},
): string {
  const e = escapeXml;
  const names = r.dataset.classes;
  const label = (y: number) => y < 0 ? "-" : `${y} ${e(names[y] ?? String(y))}`;
  const modules = r.ranking.modules.history;
  const shown = r.ranking.issues.slice(0, r.top);
  const th = (key: string, text: string, type: "num" | "str", l = false) =>
    `<th data-key="${key}" data-type="${type}"${
      l ? ' class="l"' : ""
    }>${text}</th>`;
  const head = [
    th("rank", "rank", "num"),
    `<th data-key="image" data-type="str" class="l">image</th>`,
    th("index", "index", "num"),
    th("file", "file", "str", true),
    th("given", "given label", "str", true),
    th("suggested", "suggested", "str", true),
    ...(r.truth ? [th("true", "true label", "str", true)] : []),
    th("score", "score", "num"),
    ...modules.map((m) => th(m, `${m.toUpperCase()} selected`, "num")),
  ].join("");
  const rows = shown.map((x, rank) => {
    const uri = options.thumbnails?.get(x.index);
    const noisy = r.truth?.isNoisy[x.index] === 1;
    const cells = [
      `<td data-v="${rank + 1}">${rank + 1}</td>`,
      `<td class="l" data-v="">${
        uri ? `<img class="thumb" alt="sample ${x.index}" src="${uri}">` : ""
      }</td>`,
      `<td data-v="${x.index}">${x.index}</td>`,
      `<td class="l" data-v="${e(r.dataset.describe(x.index))}">${
        e(r.dataset.describe(x.index))
      }</td>`,
      `<td class="l" data-v="${e(names[x.given] ?? "")}">${
        label(x.given)
      }</td>`,
      `<td class="l" data-v="${e(names[x.suggested] ?? "")}">${
        label(x.suggested)
      }</td>`,
      ...(r.truth
        ? [
          `<td class="l truth" data-v="${noisy ? 1 : 0}">${
            label(r.truth.clean[x.index])
          }${noisy ? " (flipped)" : ""}</td>`,
        ]
        : []),
      `<td data-v="${x.score}">${x.score.toFixed(3)}</td>`,
      ...modules.map((m) =>
        `<td data-v="${x.selectedFraction[m]}">${
          pct(x.selectedFraction[m])
        }</td>`
      ),
    ];
    return `<tr${noisy ? ' class="noisy"' : ""}>${cells.join("")}</tr>`;
  });
  const bl = r.baseline;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Label issues: ${e(r.runDir)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>Likely mislabeled training images</h1>
<p>Run <code>${e(r.runDir)}</code>: ${e(r.config.method)} on ${
    e(r.config.dataset.name)
  } (${r.dataset.length} training images, ${names.length} classes, ${r.epochs} epochs), ${
    r.truth
      ? `${pct(r.config.noise.rate)} ${
        e(r.config.noise.mode)
      } label noise injected (${pct(r.truth.actualRate)} flipped)`
      : "no injected noise"
  }.</p>
<p>Score (variant <code>${e(r.ranking.variant)}</code>, 0 to 1): ${
    describeVariant(r)
  } Flagged: score above 0.5, ${r.ranking.flagged} images (estimated noise rate ${
    pct(r.ranking.estimatedNoiseRate)
  }).</p>
<h2>Against the injected noise</h2>
${
    r.truth
      ? `<table>
<tr><th class="l">method</th><th>flagged</th><th>precision</th><th>recall</th><th>F1</th><th>precision@${r.top}</th><th>average precision</th></tr>
${statsRow("this run's curriculum score", r.ranking.flagged, r.stats)}
${
        statsRow(
          `confident learning on ${bl.module.toUpperCase()} probabilities`,
          bl.flagged,
          bl.stats,
        )
      }
</table>
<p>Confident learning (Northcutt et al., 2021): per-class thresholds at the mean self-confidence of each given class, flagged when the confident class differs from the given one; ranked by self-confidence. It uses the run's final in-sample ${
        e(bl.module.toUpperCase())
      } probabilities, not cross-validated ones.</p>`
      : `<p class="note">The run injected no noise, so there is nothing to check the flags against.</p>`
  }
<h2>Top ${shown.length} (click a heading to sort)</h2>
<table id="issues">
<thead><tr>${head}</tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

/** Thumbnails of the top `count` samples of a result, by dataset index. */
export async function topThumbnails(
  r: LabelIssuesResult,
  count: number,
  size = 64,
): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for (const x of r.ranking.issues.slice(0, count)) {
    out.set(x.index, await thumbnailDataUri(r.dataset, x.index, size));
  }
  return out;
}

/** Writes `label_issues.csv`, `.html` and `.json` into the run folder; returns their paths. */
export async function writeLabelIssues(
  r: LabelIssuesResult,
): Promise<string[]> {
  const paths = ["csv", "html", "json"].map((x) =>
    join(r.runDir, `label_issues.${x}`)
  );
  await writeFileAtomic(paths[0], renderLabelIssuesCsv(r));
  await writeFileAtomic(
    paths[1],
    renderLabelIssuesHtml(r, { thumbnails: await topThumbnails(r, r.top) }),
  );
  await writeFileAtomic(
    paths[2],
    JSON.stringify(labelIssuesSummary(r), null, 2) + "\n",
  );
  return paths;
}
