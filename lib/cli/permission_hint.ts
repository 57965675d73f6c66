/**
 * Turns Deno's permission errors into one line a user can act on.
 *
 * A task started with `deno task NAME` runs with the scoped permissions that
 * `deno.json` gives it (read `.`, write `./checkpoints`, ...), and flags cannot
 * be added through `deno task`. When a user points a task elsewhere
 * (`-d /some/other.json`, `--run /elsewhere`), Deno refuses with
 * `Requires write access to "x", run again with the --allow-write flag`,
 * which names a flag the user cannot pass. {@linkcode permissionHint} reads
 * the kind and the path from that message (anywhere in the error's `cause`
 * chain) and answers with the `deno run ...` command that would work: the
 * task's own flags from `deno.json`, widened by exactly that path (its
 * folder, for reads and writes), followed by the same arguments.
 *
 * @module
 */
import { dirname } from "node:path";
import denoConfig from "../../deno.json" with { type: "json" };

/** What a permission error asked for. */
export interface PermissionRequest {
  /** `read`, `write`, `env`, `ffi`, `sys`, `net` or `run`. */
  kind: string;
  /** The path, variable, host or call; null when Deno named none. */
  target: string | null;
}

const REQUIRES = /Requires (\w+) access(?: to "([^"]*)")?/;

/**
 * The permission an error (or an error in its `cause` chain) reports as
 * missing; null for any other error.
 */
export function permissionRequest(err: unknown): PermissionRequest | null {
  for (let e = err, depth = 0; e != null && depth < 8; depth++) {
    const message = e instanceof Error ? e.message : String(e);
    const m = REQUIRES.exec(message);
    if (m) return { kind: m[1], target: m[2] ?? null };
    if (
      e instanceof Deno.errors.NotCapable ||
      e instanceof Deno.errors.PermissionDenied
    ) {
      // A permission error that names no flag: keep Deno's words.
      return null;
    }
    e = e instanceof Error ? e.cause : undefined;
  }
  return null;
}

/** Splits a deno.json task command into words (single quotes group). */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  for (const m of command.matchAll(/'([^']*)'|(\S+)/g)) {
    words.push(m[1] ?? m[2]);
  }
  return words;
}

/** A word quoted for a POSIX shell when it needs quoting. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word)
    ? word
    : `'${word.replaceAll("'", `'"'"'`)}'`;
}

/** The `deno run` words of a task in deno.json, or null for an unknown task. */
export function taskCommand(task: string): string[] | null {
  const tasks = denoConfig.tasks as Record<string, { command: string }>;
  const command = tasks[task]?.command;
  return command === undefined ? null : splitCommand(command);
}

/** The scope to grant for a request: a read or write widens to a folder. */
function scopeOf(request: PermissionRequest): string | null {
  const { kind, target } = request;
  if (target === null) return null;
  if (kind !== "read" && kind !== "write") return target;
  try {
    if (Deno.statSync(target).isDirectory) return target;
  } catch {
    // Unreadable or not there yet: grant its folder.
  }
  return dirname(target);
}

/**
 * The `deno run ...` words that run `task` with `args` and the extra
 * permission `request` asks for; null when the task is not in deno.json.
 * A write also widens a scoped read by the same folder: a task reads what it
 * writes (a run folder's lock and checkpoints), and a command that granted
 * only the write would fail next on the read.
 */
export function widenedCommand(
  task: string,
  request: PermissionRequest,
  args: readonly string[],
): string[] | null {
  const words = taskCommand(task);
  if (words === null) return null;
  const scope = scopeOf(request);
  const widen = (kind: string) => {
    const flag = `--allow-${kind}`;
    const at = words.findIndex((w) => w === flag || w.startsWith(`${flag}=`));
    const widened = scope === null ? flag : `${flag}=${scope}`;
    if (at < 0) {
      // Before the script: `deno run` is the first two words.
      const script = words.findIndex((w) => w.endsWith(".ts"));
      words.splice(script < 0 ? 2 : script, 0, widened);
    } else if (words[at].includes("=") && scope !== null) {
      words[at] = `${words[at]},${scope}`;
    } else {
      words[at] = flag;
    }
  };
  widen(request.kind);
  if (
    request.kind === "write" && scope !== null &&
    words.some((w) => w.startsWith("--allow-read="))
  ) {
    widen("read");
  }
  return [...words, ...args];
}

/**
 * One line for a permission error met by `deno task <task> <args>`:
 * what was refused and the `deno run ...` command that grants it; null when
 * `err` is not a permission error.
 */
export function permissionHint(
  err: unknown,
  task: string,
  args: readonly string[],
): string | null {
  const request = permissionRequest(err);
  if (request === null) return null;
  const what = request.target === null
    ? `${request.kind} access`
    : `${request.kind} access to "${request.target}"`;
  const command = widenedCommand(task, request, args);
  const how = command === null
    ? `run it with --allow-${request.kind}`
    : `to allow it, run it directly: ${command.map(shellQuote).join(" ")}`;
  return `${task}: \`deno task ${task}\` has no ${what} (deno.json scopes its permissions); ${how}`;
}
