/**
 * A progress bar for long loops: downloads, data preparation, epochs.
 *
 * On a terminal it redraws one line (bar, count, rate, ETA) at most ~10 times
 * a second; elsewhere (CI logs, files) it prints a plain line at every 10% of
 * the total or every few seconds, whichever comes first, so logs stay short.
 *
 * @module
 */

/** Where a {@linkcode Progress} writes: `Deno.stderr` or a test double. */
export interface ProgressStream {
  writeSync(p: Uint8Array): number;
  isTerminal?(): boolean;
}

/** Options of {@linkcode Progress}. */
export interface ProgressOptions {
  /** Text before the bar, e.g. `"epoch 3"`. @default "" */
  label?: string;
  /** Name of one counted item, e.g. `"img"`; ignored with `bytes`. @default "it" */
  unit?: string;
  /** Where lines go. @default Deno.stderr */
  stream?: ProgressStream;
  /** Redraw one line in place; otherwise print plain lines. @default stream.isTerminal() */
  tty?: boolean;
  /** Count bytes: show KiB/MiB/GiB and rates per second of them. @default false */
  bytes?: boolean;
  /** Count already done before this run (a resumed download); excluded from the rate. @default 0 */
  initial?: number;
  /** Clock in milliseconds, for tests. @default performance.now */
  now?: () => number;
}

const TTY_INTERVAL_MS = 100;
const PLAIN_INTERVAL_MS = 5000;
const BAR_WIDTH = 24;
const encoder = new TextEncoder();

/**
 * Counts work done and reports it.
 *
 * A `total` of 0 (or `NaN`) means unknown: no bar, percentage or ETA, only the
 * count and the rate. `total` may be set later, e.g. once a server answers.
 */
export class Progress {
  total: number;
  count: number;
  readonly #label: string;
  readonly #unit: string;
  readonly #stream: ProgressStream;
  readonly #tty: boolean;
  readonly #bytes: boolean;
  readonly #initial: number;
  readonly #now: () => number;
  readonly #start: number;
  #info = "";
  #lastDraw = -Infinity;
  #lastDecile = 0;
  #lastLineCount: number;
  #finished = false;

  constructor(total: number, options: ProgressOptions = {}) {
    this.total = total;
    this.#initial = options.initial ?? 0;
    this.count = this.#initial;
    this.#label = options.label ?? "";
    this.#unit = options.unit ?? "it";
    this.#stream = options.stream ?? Deno.stderr;
    this.#tty = options.tty ?? (this.#stream.isTerminal?.() ?? false);
    this.#bytes = options.bytes ?? false;
    this.#now = options.now ?? (() => performance.now());
    this.#start = this.#now();
    // A terminal shows the bar at once; a log waits for the first tenth.
    this.#lastDraw = this.#tty ? -Infinity : this.#start;
    this.#lastLineCount = this.count;
    this.#lastDecile = this.#decile();
  }

  /** Adds `n` to the count; `info` (e.g. `"loss 0.53"`) replaces the trailing text. */
  tick(n = 1, info?: string): void {
    if (this.#finished) return;
    this.count += n;
    if (info !== undefined) this.#info = info;
    const now = this.#now();
    if (this.#tty) {
      if (now - this.#lastDraw >= TTY_INTERVAL_MS) this.#draw(now);
      return;
    }
    const decile = this.#decile();
    const due = decile > this.#lastDecile ||
      (now - this.#lastDraw >= PLAIN_INTERVAL_MS &&
        this.count !== this.#lastLineCount);
    if (due) {
      this.#lastDecile = decile;
      this.#lastLineCount = this.count;
      this.#lastDraw = now;
      this.#write(this.#line(now) + "\n");
    }
  }

  /** Ends the bar with a final line: count, elapsed time, rate and `summary`. */
  done(summary?: string): void {
    if (this.#finished) return;
    this.#finished = true;
    const now = this.#now();
    const elapsed = now - this.#start;
    const parts = [
      `${this.#label ? this.#label + " " : ""}done: ${
        this.#amount(this.count)
      }`,
      `in ${formatDuration(elapsed)}`,
    ];
    const rate = this.#rate(now);
    if (rate !== undefined) parts.push(`(${this.#rateText(rate)})`);
    if (summary) parts.push(summary);
    this.#write((this.#tty ? "\r\x1b[2K" : "") + parts.join(" ") + "\n");
  }

  #decile(): number {
    if (!(this.total > 0)) return 0;
    return Math.min(10, Math.floor((this.count / this.total) * 10));
  }

  #rate(now: number): number | undefined {
    const seconds = (now - this.#start) / 1000;
    const done = this.count - this.#initial;
    return seconds > 0 && done > 0 ? done / seconds : undefined;
  }

  #draw(now: number): void {
    this.#lastDraw = now;
    let line = this.#line(now);
    const columns = terminalColumns(this.#stream);
    if (line.length > columns - 1) line = line.slice(0, columns - 1);
    this.#write("\r\x1b[2K" + line);
  }

  #line(now: number): string {
    const parts: string[] = [];
    if (this.#label) parts.push(this.#label);
    const known = this.total > 0;
    if (known) {
      const fraction = Math.min(1, this.count / this.total);
      if (this.#tty) {
        const filled = Math.round(fraction * BAR_WIDTH);
        parts.push(`[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}]`);
      }
      parts.push(`${String(Math.floor(fraction * 100)).padStart(3)}%`);
      parts.push(
        this.#bytes
          ? `${formatBytes(this.count)}/${formatBytes(this.total)}`
          : `${this.count}/${this.total} ${this.#unit}`,
      );
    } else {
      parts.push(this.#amount(this.count));
    }
    const rate = this.#rate(now);
    if (rate !== undefined) {
      parts.push(this.#rateText(rate));
      if (known && this.count < this.total) {
        parts.push(
          `ETA ${formatDuration(((this.total - this.count) / rate) * 1000)}`,
        );
      }
    }
    if (this.#info) parts.push(this.#info);
    return parts.join(" ");
  }

  #amount(n: number): string {
    return this.#bytes ? formatBytes(n) : `${n} ${this.#unit}`;
  }

  #rateText(rate: number): string {
    if (this.#bytes) return `${formatBytes(rate)}/s`;
    return `${rate >= 100 ? rate.toFixed(0) : rate.toFixed(1)} ${this.#unit}/s`;
  }

  #write(text: string): void {
    const data = encoder.encode(text);
    let written = 0;
    while (written < data.length) {
      written += this.#stream.writeSync(data.subarray(written));
    }
  }
}

/** `1536` -> `"1.5 KiB"`; binary units, one decimal above bytes. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let i = 0;
  while (Math.abs(value) >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${units[i]}`;
}

/** Milliseconds as `m:ss`, or `h:mm:ss` from an hour on. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "?";
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function terminalColumns(stream: ProgressStream): number {
  if (stream !== Deno.stderr && stream !== Deno.stdout) return 120;
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 120;
  }
}
