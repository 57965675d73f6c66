/**
 * Self-contained SVG charts, as the demo report and notebooks draw them: line
 * charts over epochs and confusion-matrix heat maps. Plain strings, no fonts
 * or scripts to fetch; text uses the generic `sans-serif` family. In Deno's
 * Jupyter kernel, `Deno.jupyter.display({ "image/svg+xml": svg })` shows one.
 *
 * @module
 */

/** One line of a {@linkcode lineChart}. */
export interface Series {
  name: string;
  color: string;
  /** `[x, y]` points; a `null` y breaks the line (e.g. a 0/0 ratio). */
  points: [number, number | null][];
  /** Draw dashed. @default false */
  dashed?: boolean;
}

/** Options of {@linkcode lineChart}. */
export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** @default 0 */
  yMin?: number;
  /** @default 1 */
  yMax?: number;
  /** Show y ticks as percentages of 1. @default true */
  percent?: boolean;
  /** @default 640 */
  width?: number;
  /** @default 340 */
  height?: number;
}

/** Escapes text for XML and HTML. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const num = (v: number) => Number(v.toFixed(2)).toString();

/** Tick values: about `count` round steps covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Number(v.toFixed(10)));
  }
  return out;
}

/** A line chart with axes, ticks, grid and a legend under the plot. */
export function lineChart(series: Series[], options: LineChartOptions): string {
  const width = options.width ?? 640;
  const height = options.height ?? 340;
  const yMin = options.yMin ?? 0;
  const yMax = options.yMax ?? 1;
  const percent = options.percent ?? true;
  // Long names get two legend columns, short ones three.
  const longest = Math.max(0, ...series.map((s) => s.name.length));
  const columns = longest > 24 ? 2 : 3;
  const legendRows = Math.ceil(series.length / columns);
  const m = { left: 56, right: 16, top: 34, bottom: 44 + 18 * legendRows };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const xMin = xs.length ? Math.min(...xs) : 0;
  const xMax = xs.length ? Math.max(...xs) : 1;
  const sx = (x: number) =>
    m.left + (xMax > xMin ? ((x - xMin) / (xMax - xMin)) * pw : pw / 2);
  const sy = (y: number) =>
    m.top + ph - ((Math.min(Math.max(y, yMin), yMax) - yMin) / (yMax - yMin)) *
      ph;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${
      width / 2
    }" y="20" text-anchor="middle" font-size="14" font-weight="bold">${
      escapeXml(options.title)
    }</text>`,
  );
  for (const t of niceTicks(yMin, yMax)) {
    const y = num(sy(t));
    parts.push(
      `<line x1="${m.left}" y1="${y}" x2="${
        m.left + pw
      }" y2="${y}" stroke="#e3e3e3"/>`,
      `<text x="${m.left - 6}" y="${y}" dy="4" text-anchor="end">${
        percent ? `${Math.round(t * 100)}%` : num(t)
      }</text>`,
    );
  }
  const xTicks = niceTicks(xMin, xMax, Math.min(8, Math.max(1, xMax - xMin)))
    .filter((t) => Number.isInteger(t));
  for (const t of xTicks) {
    const x = num(sx(t));
    parts.push(
      `<line x1="${x}" y1="${m.top + ph}" x2="${x}" y2="${
        m.top + ph + 4
      }" stroke="#444"/>`,
      `<text x="${x}" y="${m.top + ph + 17}" text-anchor="middle">${t}</text>`,
    );
  }
  parts.push(
    `<path d="M${m.left} ${m.top}V${m.top + ph}H${
      m.left + pw
    }" fill="none" stroke="#444"/>`,
    `<text x="${m.left + pw / 2}" y="${m.top + ph + 34}" text-anchor="middle">${
      escapeXml(options.xLabel)
    }</text>`,
    `<text transform="translate(14 ${
      m.top + ph / 2
    }) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}</text>`,
  );
  for (const s of series) {
    let d = "";
    let pen = false;
    for (const [x, y] of s.points) {
      if (y === null || !Number.isFinite(y)) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${num(sx(x))} ${num(sy(y))}`;
      pen = true;
    }
    // A single point draws nothing as a line: mark it with a dot.
    const dots = s.points.length === 1 && s.points[0][1] !== null
      ? `<circle cx="${num(sx(s.points[0][0]))}" cy="${
        num(sy(s.points[0][1]!))
      }" r="3" fill="${s.color}"/>`
      : "";
    parts.push(
      `<path class="series" data-name="${
        escapeXml(s.name)
      }" d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${
        s.dashed ? ' stroke-dasharray="6 4"' : ""
      } stroke-linejoin="round"/>${dots}`,
    );
  }
  series.forEach((s, i) => {
    const col = i % columns;
    const row = Math.floor(i / columns);
    const x = m.left + col * (pw / columns);
    const y = m.top + ph + 52 + row * 18;
    parts.push(
      `<line x1="${x}" y1="${y - 4}" x2="${x + 22}" y2="${
        y - 4
      }" stroke="${s.color}" stroke-width="3"${
        s.dashed ? ' stroke-dasharray="6 4"' : ""
      }/>`,
      `<text x="${x + 28}" y="${y}">${escapeXml(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n");
}

/** Options of {@linkcode confusionChart}. */
export interface ConfusionChartOptions {
  title: string;
  /** Class names in index order. */
  classes: string[];
  /** @default "#2b6cb0" */
  color?: string;
}

/**
 * A confusion matrix (rows true class, columns predicted) as a heat map
 * shaded by the row-normalized share, with the counts written in.
 */
export function confusionChart(
  matrix: number[][],
  options: ConfusionChartOptions,
): string {
  const k = matrix.length;
  const cell = Math.max(22, Math.min(44, Math.floor(360 / Math.max(k, 1))));
  const labelWidth = Math.min(
    130,
    12 + 6.5 * Math.max(...options.classes.map((c) => c.length), 1),
  );
  const m = { left: labelWidth + 20, top: 40, right: 16, bottom: 24 };
  const width = m.left + k * cell + m.right;
  const height = m.top + k * cell + labelWidth + m.bottom;
  const [r0, g0, b0] = hexRgb(options.color ?? "#2b6cb0");
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${
      width / 2
    }" y="18" text-anchor="middle" font-size="13" font-weight="bold">${
      escapeXml(options.title)
    }</text>`,
    `<text x="${m.left + (k * cell) / 2}" y="${
      height - 6
    }" text-anchor="middle">predicted</text>`,
    `<text transform="translate(12 ${
      m.top + (k * cell) / 2
    }) rotate(-90)" text-anchor="middle">true</text>`,
  ];
  for (let i = 0; i < k; i++) {
    const rowSum = matrix[i].reduce((a, b) => a + b, 0);
    for (let j = 0; j < k; j++) {
      const share = rowSum ? matrix[i][j] / rowSum : 0;
      const mix = (c: number) => Math.round(255 + (c - 255) * share);
      const x = m.left + j * cell;
      const y = m.top + i * cell;
      parts.push(
        `<path class="cell" d="M${x} ${y}h${cell}v${cell}h-${cell}z" fill="rgb(${
          mix(r0)
        },${mix(g0)},${mix(b0)})" stroke="#ffffff"/>`,
        `<text x="${x + cell / 2}" y="${
          y + cell / 2 + 4
        }" text-anchor="middle" fill="${
          share > 0.55 ? "#ffffff" : "#222222"
        }">${matrix[i][j]}</text>`,
      );
    }
    parts.push(
      `<text x="${m.left - 6}" y="${
        m.top + i * cell + cell / 2 + 4
      }" text-anchor="end">${
        escapeXml(options.classes[i] ?? String(i))
      }</text>`,
    );
  }
  for (let j = 0; j < k; j++) {
    const x = m.left + j * cell + cell / 2 + 4;
    const y = m.top + k * cell + 6;
    parts.push(
      `<text transform="translate(${x} ${y}) rotate(-90)" text-anchor="end">${
        escapeXml(options.classes[j] ?? String(j))
      }</text>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n");
}

function hexRgb(hex: string): [number, number, number] {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!m) throw new RangeError(`Colour must be "#rrggbb", got "${hex}"`);
  const n = parseInt(m[1], 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}
