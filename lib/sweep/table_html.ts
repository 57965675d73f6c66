/**
 * The sweep's HTML page: one self-contained file (inline CSS and SVG, no
 * scripts, fonts or images to fetch) with a plot per dataset and noise mode,
 * test accuracy against noise rate, one line per method: ours solid with
 * ± std bars over seeds, the paper's dashed in the same colour. Missing
 * points break the line. Below them, Table 1 and the cells.
 *
 * @module
 */
import type { Method } from "../train/config.ts";
import { METHOD_NAMES } from "./paper.ts";
import {
  cellRows,
  datasetLabel,
  type GroupResult,
  LAST_EPOCHS,
  type SweepResults,
  table1Rows,
} from "./table.ts";

/** Line colours by method (Okabe-Ito, readable by colour-blind readers). */
export const METHOD_COLORS: Record<Method, string> = {
  linear: "#0072b2",
  rein: "#d55e00",
  cufit: "#009e73",
};

/** Escapes text for HTML and SVG. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const n2 = (v: number) => Number(v.toFixed(2)).toString();

/** One plot: accuracy % against noise rate for the groups of one dataset and mode. */
export function accuracyPlot(
  title: string,
  groups: GroupResult[],
  methods: Method[],
): string {
  const width = 520;
  const height = 340;
  const m = { left: 52, right: 16, top: 34, bottom: 70 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const rates = [...new Set(groups.map((g) => g.noiseRate))].sort((a, b) =>
    a - b
  );
  const ys = groups.flatMap((g) => [
    ...(g.mean === null ? [] : [g.mean - (g.std ?? 0), g.mean + (g.std ?? 0)]),
    ...(g.paper === null ? [] : [g.paper]),
  ]);
  const yLo = ys.length
    ? Math.max(0, Math.floor(Math.min(...ys) / 10) * 10)
    : 0;
  const yHi = ys.length
    ? Math.min(100, Math.ceil(Math.max(...ys) / 10) * 10)
    : 100;
  const yMax = yHi > yLo ? yHi : yLo + 10;
  const xLo = rates[0] ?? 0;
  const xHi = rates[rates.length - 1] ?? 1;
  // 14 px inside the axes at both ends, so that the end points stay clear of them.
  const sx = (x: number) =>
    m.left + 14 +
    (xHi > xLo ? ((x - xLo) / (xHi - xLo)) * (pw - 28) : (pw - 28) / 2);
  const sy = (y: number) =>
    m.top + ph - ((Math.min(Math.max(y, yLo), yMax) - yLo) / (yMax - yLo)) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${
      width / 2
    }" y="20" text-anchor="middle" font-size="14" font-weight="bold">${
      escapeHtml(title)
    }</text>`,
  ];
  const step = (yMax - yLo) / 5;
  for (let i = 0; i <= 5; i++) {
    const v = yLo + i * step;
    out.push(
      `<line x1="${m.left}" y1="${n2(sy(v))}" x2="${m.left + pw}" y2="${
        n2(sy(v))
      }" stroke="#e3e3e3"/>`,
      `<text x="${m.left - 6}" y="${n2(sy(v))}" dy="4" text-anchor="end">${
        n2(v)
      }</text>`,
    );
  }
  for (const r of rates) {
    out.push(
      `<line x1="${n2(sx(r))}" y1="${m.top + ph}" x2="${n2(sx(r))}" y2="${
        m.top + ph + 4
      }" stroke="#444"/>`,
      `<text x="${n2(sx(r))}" y="${
        m.top + ph + 17
      }" text-anchor="middle">${r}</text>`,
    );
  }
  out.push(
    `<path d="M${m.left} ${m.top}V${m.top + ph}H${
      m.left + pw
    }" fill="none" stroke="#444"/>`,
    `<text x="${m.left + pw / 2}" y="${
      m.top + ph + 33
    }" text-anchor="middle">noise rate</text>`,
    `<text transform="translate(14 ${
      m.top + ph / 2
    }) rotate(-90)" text-anchor="middle">test accuracy % (last ${LAST_EPOCHS} epochs)</text>`,
  );
  const line = (pts: [number, number | null][], dx = 0) => {
    let d = "";
    let pen = false;
    for (const [x, y] of pts) {
      if (y === null) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${n2(sx(x) + dx)} ${n2(sy(y))}`;
      pen = true;
    }
    return d;
  };
  methods.forEach((method, i) => {
    const color = METHOD_COLORS[method];
    // Methods sit a few pixels apart so that their bars do not hide each other.
    const dx = (i - (methods.length - 1) / 2) * 5;
    const gs = rates.map((r) =>
      groups.find((g) => g.method === method && g.noiseRate === r)!
    );
    const paper = gs.map((g) =>
      [g.noiseRate, g.paper] as [number, number | null]
    );
    if (paper.some(([, y]) => y !== null)) {
      out.push(
        `<path class="paper" data-method="${method}" d="${
          line(paper)
        }" fill="none" stroke="${color}" stroke-width="1.5" stroke-dasharray="6 4" opacity="0.8"/>`,
      );
    }
    out.push(
      `<path class="series" data-method="${method}" d="${
        line(gs.map((g) => [g.noiseRate, g.mean]), dx)
      }" fill="none" stroke="${color}" stroke-width="2.5" stroke-linejoin="round"/>`,
    );
    for (const g of gs) {
      if (g.mean === null) continue;
      const x = n2(sx(g.noiseRate) + dx);
      if (g.std !== null && g.std > 0) {
        out.push(
          `<line class="err" x1="${x}" y1="${
            n2(sy(g.mean - g.std))
          }" x2="${x}" y2="${
            n2(sy(g.mean + g.std))
          }" stroke="${color}" stroke-width="1.5"/>`,
        );
      }
      out.push(
        `<circle class="point" cx="${x}" cy="${
          n2(sy(g.mean))
        }" r="3.5" fill="${color}"><title>${
          escapeHtml(
            `${METHOD_NAMES[method]} at ${g.noiseRate}: ${g.mean.toFixed(1)}%${
              g.std === null ? "" : ` ± ${g.std.toFixed(1)}`
            } (${g.values.length} seed${g.values.length === 1 ? "" : "s"})`,
          )
        }</title></circle>`,
      );
    }
    const lx = m.left + i * (pw / methods.length);
    const ly = height - 14;
    out.push(
      `<line x1="${lx}" y1="${ly - 4}" x2="${lx + 22}" y2="${
        ly - 4
      }" stroke="${color}" stroke-width="3"/>`,
      `<text x="${lx + 28}" y="${ly}">${
        escapeHtml(METHOD_NAMES[method])
      }</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n");
}

function htmlTable(header: string[], rows: string[][], cls: string): string {
  const th = header.map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const trs = rows.map((r) =>
    `<tr>${
      r.map((c) =>
        `<td${c === "missing" ? ' class="missing"' : ""}>${escapeHtml(c)}</td>`
      ).join("")
    }</tr>`
  ).join("\n");
  return `<table class="${cls}"><thead><tr>${th}</tr></thead><tbody>\n${trs}\n</tbody></table>`;
}

/** The whole page. */
export function renderTableHtml(r: SweepResults): string {
  const plots: string[] = [];
  for (const d of r.datasets) {
    for (const mode of [...new Set(r.noise.map((x) => x.mode))]) {
      const groups = r.groups.filter((g) =>
        g.dataset === d && g.noiseMode === mode
      );
      plots.push(
        accuracyPlot(
          `${datasetLabel(d)}${mode === "symmetric" ? "" : ` (${mode})`}`,
          groups,
          r.methods,
        ),
      );
    }
  }
  const t = table1Rows(r);
  const c = cellRows(r);
  const done = r.cells.filter((x) => x.last10 !== null).length;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Sweep ${escapeHtml(r.name)}</title>
<style>
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1200px; }
table { border-collapse: collapse; margin: 12px 0 24px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
td.missing { color: #a00; font-style: italic; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
.note { color: #555; }
</style>
</head>
<body>
<h1>Sweep ${escapeHtml(r.name)}</h1>
${r.description ? `<p>${escapeHtml(r.description)}</p>` : ""}
<p class="note">${done} of ${r.cells.length} cells finished. Test accuracy %, mean of the last ${LAST_EPOCHS} epochs; solid lines and points are ours (bars: ± std over seeds)${
    r.groups.some((g) => g.paper !== null)
      ? ", dashed lines the paper's Table 1 (DINOv2 ViT-S/14)"
      : "; the paper has no figures for this grid"
  }. Missing points are cells that have not finished.</p>
<div class="plots">
${plots.join("\n")}
</div>
<h2>Table 1</h2>
${htmlTable(t.header, t.rows, "table1")}
<h2>Cells</h2>
<p class="note">Selection precision / recall % of LPM and IAM (CUFIT), means over the last ${LAST_EPOCHS} epochs.</p>
${htmlTable(c.header, c.rows, "cells")}
</body>
</html>
`;
}
