/**
 * Limits that protect readers from hostile files, each settable by an
 * option, else by an environment variable, else a default.
 *
 * The variable is read only when the permission is already granted (checked
 * with `Deno.permissions.querySync`), so a task without `--allow-env` for it
 * never prompts: it uses the default.
 *
 * @module
 */

/** A resolved limit, and how it was chosen (for the error that cites it). */
export interface Limit {
  value: number;
  how: string;
}

/**
 * Resolves a limit: `option` when given, else the variable `env` when set,
 * else `fallback`. Throws naming the option or variable for a value that is
 * not a positive whole number.
 */
export function resolveLimit(
  optionName: string,
  option: number | undefined,
  env: string,
  fallback: number,
): Limit {
  if (option !== undefined) {
    if (!Number.isSafeInteger(option) || option <= 0) {
      throw new Error(
        `Option ${optionName} is ${option}: expected a positive whole number`,
      );
    }
    return { value: option, how: `option ${optionName}` };
  }
  const text = readEnv(env);
  if (text !== undefined && text !== "") {
    const value = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new Error(
        `Environment variable ${env} is "${text}": expected a positive whole number`,
      );
    }
    return { value, how: `set by ${env}` };
  }
  return { value: fallback, how: `the default; ${env} raises it` };
}

function readEnv(name: string): string | undefined {
  try {
    if (
      Deno.permissions.querySync({ name: "env", variable: name }).state !==
        "granted"
    ) {
      return undefined;
    }
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}
