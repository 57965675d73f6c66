/**
 * The demo report's "likely mislabeled" section: the 16 training images a
 * run (CUFIT's when the demo ran it) most strongly rejects, as thumbnails
 * with their given and suggested labels, and the precision/recall line of
 * the flagged set next to the confident-learning baseline's.
 *
 * The thumbnails are PNG `data:` URIs inside inline SVG `<image>` elements,
 * so the report stays one self-contained file that fetches nothing.
 *
 * @module
 */
import { escapeXml } from "../demo/charts.ts";
import { findLabelIssues } from "./find_label_issues.ts";
import { precisionRecallLine, topThumbnails } from "./report.ts";

/** How many thumbnails the demo shows. */
export const DEMO_TOP = 16;

/** One thumbnail of the section. */
export interface DemoIssueItem {
  index: number;
  file: string;
  given: string;
  suggested: string;
  /** Whether the injected noise flipped this label (null when unknown). */
  flipped: boolean | null;
  score: number;
  /** PNG `data:` URI. */
  image: string;
}

/** What the section shows. */
export interface DemoLabelIssues {
  /** The run it comes from. */
  runDir: string;
  method: string;
  /** The precision/recall line (see `precisionRecallLine`). */
  line: string;
  items: DemoIssueItem[];
}

/** The section's content for a finished run folder. */
export async function demoLabelIssues(
  runDir: string,
  options: { top?: number } = {},
): Promise<DemoLabelIssues> {
  const top = options.top ?? DEMO_TOP;
  const r = await findLabelIssues(runDir, { top });
  const thumbs = await topThumbnails(r, top);
  const names = r.dataset.classes;
  return {
    runDir,
    method: r.config.method,
    line: precisionRecallLine(r),
    items: r.ranking.issues.slice(0, top).map((x) => ({
      index: x.index,
      file: r.dataset.describe(x.index),
      given: names[x.given] ?? String(x.given),
      suggested: names[x.suggested] ?? "-",
      flipped: r.truth ? r.truth.isNoisy[x.index] === 1 : null,
      score: x.score,
      image: thumbs.get(x.index)!,
    })),
  };
}

/** The section's HTML body (the caller adds the heading). */
export function renderDemoLabelIssues(li: DemoLabelIssues): string {
  const e = escapeXml;
  const figures = li.items.map((x) =>
    `<figure class="issue"><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64" role="img" aria-label="training image ${x.index}"><image href="${x.image}" width="64" height="64" style="image-rendering:pixelated"/></svg><figcaption>#${x.index}: given <b>${
      e(x.given)
    }</b>, suggested <b>${e(x.suggested)}</b>${
      x.flipped === null ? "" : x.flipped ? " (flipped)" : " (label was clean)"
    }</figcaption></figure>`
  ).join("\n");
  return `<p>The training images the ${
    e(li.method.toUpperCase())
  } run most strongly rejects: how often its modules refused the given label during training, and by how much its final modules prefer another class (<code>deno task label-issues --run ${
    e(li.runDir)
  }</code> writes the full ranking as CSV and HTML).</p>
<p class="verdict">${e(li.line)}</p>
<div class="plots issues">
${figures}
</div>
<style>.issues figure { width: 150px; margin: 0; font-size: 12px; } .issues svg { display: block; }</style>`;
}
