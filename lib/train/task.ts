/**
 * The body of `train:linear`, `train:rein` and `train:cufit`: parse the
 * flags, train, print the summary. Tasks are one line over this.
 *
 * @module
 */
import { GpuLostError } from "../backend/webgpu/device.ts";
import { CliExit, parseTrainArgs } from "./cli.ts";
import type { Method } from "./config.ts";
import { NonFiniteLossError, train } from "./trainer.ts";

/** Options of {@linkcode trainTask}. */
export interface TrainTaskOptions {
  /** Folder where `-d <name>` is looked up. @default this project's conf/ */
  confDir?: string;
  /** Output lines. @default console.log */
  log?: (line: string) => void;
  /** In-epoch progress bar. @default true */
  progress?: boolean;
}

/** Runs `train:<method>` with `argv`; returns the exit code. */
export async function trainTask(
  method: Method,
  argv: string[],
  options: TrainTaskOptions = {},
): Promise<number> {
  const log = options.log ?? ((line: string) => console.log(line));
  let config;
  try {
    config = parseTrainArgs(method, argv, { confDir: options.confDir });
  } catch (e) {
    if (!(e instanceof CliExit)) throw e;
    (e.exitCode === 0 ? log : console.error)(e.message);
    return e.exitCode;
  }
  try {
    const result = await train(config, {
      log,
      argv,
      progress: options.progress,
    });
    const pct = (x: number) => (100 * x).toFixed(2);
    log(
      `done: ${method} on ${config.dataset.name} at noise ${config.noise.rate}: ` +
        `last-10 mean test accuracy ${pct(result.last10)}%, best ${
          result.best
            ? `${pct(result.best.value)}% (epoch ${result.best.epoch})`
            : "n/a"
        }; run folder ${result.runDir} (${result.seconds.toFixed(1)} s)`,
    );
    return 0;
  } catch (e) {
    // A run stopped mid-way with its last good checkpoint kept: resumable.
    if (e instanceof NonFiniteLossError || e instanceof GpuLostError) {
      console.error(`train:${method}: ${e.message}`);
      return 3;
    }
    console.error(`train:${method}: ${(e as Error).message}`);
    return 1;
  }
}
