/**
 * One style for every task's usage errors: `<task>: <what is wrong> (did
 * you mean ...?); see \`deno task <task> --help\``, on one line.
 *
 * Commander words its errors `error: unknown option '--epoch'` with the
 * suggestion on a second line, `(Did you mean --epochs?)`; our own checks
 * say `Option --noise must be ...`. {@linkcode usageLine} folds either into
 * the one-line form.
 *
 * @module
 */

/** A commander or check message as one clause: no `error:`, no newline, no final period. */
export function usageMessage(message: string): string {
  const text = message
    .replace(/^error: /, "")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .map((line) => line.replace(/^\(Did you mean/, "(did you mean"))
    .join(" ")
    .replace(/\.$/, "");
  return text.length > 0 ? text[0].toUpperCase() + text.slice(1) : text;
}

/** `<task>: <message>; see \`deno task <task> --help\``. */
export function usageLine(task: string, message: string): string {
  return `${task}: ${usageMessage(message)}; see \`deno task ${task} --help\``;
}

/**
 * `argv` with a short option's `-n=value` split into `-n value` (commander
 * reads `-n=-0.1` as the value `=-0.1`).
 */
export function splitShortEquals(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (const arg of argv) {
    const m = /^(-[A-Za-z])=(.*)$/s.exec(arg);
    if (m) out.push(m[1], m[2]);
    else out.push(arg);
  }
  return out;
}
