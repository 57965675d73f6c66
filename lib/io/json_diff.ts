/**
 * The first place where two JSON values differ, as a dotted key path: what
 * a resumed run, a re-run and a re-opened sweep report when their record and
 * the new settings disagree ("config key "noise.rate" was 0.4, now 0.2").
 *
 * @module
 */

/** Where two values differ: the key path and both values there. */
export interface JsonDifference {
  key: string;
  was: unknown;
  now: unknown;
}

/** Options of {@linkcode firstDifference}. */
export interface FirstDifferenceOptions {
  /** Path of the values compared, prefixed to every key. @default "" */
  path?: string;
  /** Key paths that may differ (and are not looked into). @default none */
  ignore?: (key: string) => boolean;
}

/**
 * The first key path, in object-key order, where `was` and `now` differ, or
 * `null` when they are equal. Objects and arrays are compared key by key;
 * everything else with `Object.is`.
 */
export function firstDifference(
  was: unknown,
  now: unknown,
  options: FirstDifferenceOptions = {},
): JsonDifference | null {
  return walk(was, now, options.path ?? "", options.ignore);
}

function walk(
  was: unknown,
  now: unknown,
  key: string,
  ignore?: (key: string) => boolean,
): JsonDifference | null {
  if (ignore?.(key)) return null;
  if (
    was !== null && now !== null && typeof was === "object" &&
    typeof now === "object"
  ) {
    const keys = new Set([...Object.keys(was), ...Object.keys(now)]);
    for (const k of keys) {
      const d = walk(
        (was as Record<string, unknown>)[k],
        (now as Record<string, unknown>)[k],
        key === "" ? k : `${key}.${k}`,
        ignore,
      );
      if (d !== null) return d;
    }
    return null;
  }
  return Object.is(was, now) ? null : { key, was, now };
}
