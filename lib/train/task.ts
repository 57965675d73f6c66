/**
 * The body of `train:linear`, `train:rein` and `train:cufit`: parse the
 * flags, train, print the summary. Tasks are one line over this.
 *
 * Errors are one line, `train:<method>: ...`: usage errors end with a
 * `--help` hint, permission errors give the `deno run` command that would
 * work, and Ctrl-C says after which epoch the run stopped and that
 * `--resume` continues it.
 *
 * @module
 */
import { GpuLostError } from "../backend/webgpu/device.ts";
import { permissionHint } from "../cli/permission_hint.ts";
import { usageLine } from "../cli/usage.ts";
import { CliExit, parseTrainArgs } from "./cli.ts";
import { type Method, scheduleWarning, type TrainConfig } from "./config.ts";
import { lastEpochsLabel } from "./metrics.ts";
import { readMetrics, runDirOf } from "./run_dir.ts";
import { NonFiniteLossError, train } from "./trainer.ts";

/** Options of {@linkcode trainTask}. */
export interface TrainTaskOptions {
  /** Folder where `-d <name>` is looked up. @default this project's conf/ */
  confDir?: string;
  /** Output lines. @default console.log */
  log?: (line: string) => void;
  /** In-epoch progress bar. @default true */
  progress?: boolean;
  /**
   * Print "interrupted after epoch N" and exit 130 on Ctrl-C (SIGINT).
   * @default false (the task entry points turn it on)
   */
  handleInterrupt?: boolean;
}

/**
 * What to say when a run is interrupted: the last epoch its folder recorded
 * and how to continue.
 */
export async function interruptedLine(
  task: string,
  runDir: string,
): Promise<string> {
  const metrics = await readMetrics(runDir).catch(() => []);
  const last = metrics.at(-1);
  return last === undefined
    ? `${task}: interrupted before the first epoch ended; start it over with --resume`
    : `${task}: interrupted after epoch ${last.epoch}; continue with --resume`;
}

/**
 * Installs a SIGINT handler that prints {@linkcode interruptedLine} for
 * `runDir` and exits with 130; returns its remover.
 */
export function onInterrupt(task: string, runDir: () => string | null) {
  const handler = () => {
    const dir = runDir();
    const done = dir === null
      ? Promise.resolve(`${task}: interrupted`)
      : interruptedLine(task, dir);
    done.then((line) => {
      // Below a progress bar or live line, not on it.
      console.error(Deno.stderr.isTerminal() ? `\n${line}` : line);
      Deno.exit(130);
    });
  };
  Deno.addSignalListener("SIGINT", handler);
  return () => Deno.removeSignalListener("SIGINT", handler);
}

/** Runs `train:<method>` with `argv`; returns the exit code. */
export async function trainTask(
  method: Method,
  argv: string[],
  options: TrainTaskOptions = {},
): Promise<number> {
  const task = `train:${method}`;
  const log = options.log ?? ((line: string) => console.log(line));
  let config: TrainConfig;
  try {
    config = parseTrainArgs(method, argv, { confDir: options.confDir });
  } catch (e) {
    if (!(e instanceof CliExit)) throw e;
    if (e.exitCode === 0) {
      log(e.message);
      return 0;
    }
    console.error(permissionHint(e, task, argv) ?? usageLine(task, e.message));
    return e.exitCode;
  }
  const warning = scheduleWarning(config);
  if (warning !== null) log(warning);
  const stopListening = options.handleInterrupt
    ? onInterrupt(task, () => runDirOf(config))
    : null;
  try {
    const result = await train(config, {
      log,
      argv,
      progress: options.progress,
    });
    const pct = (x: number) => (100 * x).toFixed(2);
    log(
      `done: ${method} on ${config.dataset.name} at noise ${config.noise.rate}: ` +
        `${lastEpochsLabel(result.metrics.length)} mean test accuracy ${
          pct(result.last10)
        }%, best ${
          result.best
            ? `${pct(result.best.value)}% (epoch ${result.best.epoch})`
            : "n/a"
        }; run folder ${result.runDir} (${result.seconds.toFixed(1)} s)`,
    );
    return 0;
  } catch (e) {
    const hint = permissionHint(e, task, argv);
    console.error(hint ?? `${task}: ${(e as Error).message}`);
    // A run stopped mid-way with its last good checkpoint kept: resumable.
    return e instanceof NonFiniteLossError || e instanceof GpuLostError ? 3 : 1;
  } finally {
    stopListening?.();
  }
}
