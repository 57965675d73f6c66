/**
 * Value checks shared by the config loader and the CLI. Each takes the value
 * and a phrase naming where it came from (`Option --lr`, `Config key "lr"`),
 * and throws a sentence-case error naming that place, the value and what was
 * expected.
 *
 * @module
 */

/** Renders a value for an error message. */
export function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  if (value === undefined) return "undefined";
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function fail(what: string, value: unknown, expected: string): never {
  throw new TypeError(`${what} must be ${expected}, got ${show(value)}`);
}

/** An integer >= `min` (a safe integer). */
export function integerAtLeast(
  value: unknown,
  min: number,
  what: string,
): number {
  if (
    typeof value !== "number" || !Number.isSafeInteger(value) || value < min
  ) {
    fail(
      what,
      value,
      min === 1
        ? "a positive integer"
        : min === 0
        ? "a non-negative integer"
        : `an integer >= ${min}`,
    );
  }
  return value;
}

/** A seed for NumPy-style generators: an integer in [0, 2^32 - 1]. */
export function seed(value: unknown, what: string): number {
  if (
    typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 ||
    value > 0xffffffff
  ) {
    fail(what, value, "an integer from 0 to 4294967295");
  }
  return value;
}

/** A finite number > 0. */
export function positiveNumber(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    fail(what, value, "a positive number");
  }
  return value;
}

/** A finite number in [lo, hi] (or [lo, hi) when `openHigh`). */
export function numberIn(
  value: unknown,
  lo: number,
  hi: number,
  what: string,
  openHigh = false,
): number {
  if (
    typeof value !== "number" || !Number.isFinite(value) || value < lo ||
    (openHigh ? value >= hi : value > hi)
  ) {
    fail(what, value, `a number in [${lo}, ${hi}${openHigh ? ")" : "]"}`);
  }
  return value;
}

/** One of a fixed list of strings. */
export function oneOf<T extends string>(
  value: unknown,
  choices: readonly T[],
  what: string,
): T {
  if (
    typeof value !== "string" || !(choices as readonly string[]).includes(value)
  ) {
    fail(what, value, `one of ${choices.map((c) => `"${c}"`).join(", ")}`);
  }
  return value as T;
}

/** A non-empty string. */
export function nonEmptyString(value: unknown, what: string): string {
  if (typeof value !== "string" || value.length === 0) {
    fail(what, value, "a non-empty string");
  }
  return value;
}

/** A boolean. */
export function boolean(value: unknown, what: string): boolean {
  if (typeof value !== "boolean") fail(what, value, "true or false");
  return value;
}

/**
 * Parses command-line text as a number: decimal or exponent notation only,
 * so `""`, `"0x10"` and `"1e"` are refused rather than read as 0, 16 or NaN.
 */
export function parseNumber(text: string, what: string): number {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text.trim())) {
    fail(what, text, "a number");
  }
  return Number(text);
}
