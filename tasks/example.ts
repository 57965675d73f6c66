/**
 * A short script of the kind one writes in a notebook: train CUFIT for a
 * few epochs on the built-in synthetic data with 40% noisy labels, look at
 * how clean its selected samples are, then run the three-method comparison
 * in miniature and print its table. Under 30 seconds on two cores; writes
 * only into `runs/example/` (replaced on every run).
 *
 * ```sh
 * deno task example
 * ```
 *
 * @module
 */
import {
  DEMO_WEIGHTS,
  loadDatasetConfig,
  resolveConfig,
  runDemo,
  train,
} from "../mod.ts";

if (Deno.args.length > 0) {
  const help = Deno.args.length === 1 && /^(-h|--help)$/.test(Deno.args[0]);
  if (help) {
    console.log(
      "Usage: example\n\nTrains CUFIT for 10 epochs on the demo data, then the " +
        "three-method comparison for 3 epochs; writes runs/example. No options.",
    );
  } else {
    console.error(
      `example: Takes no options, got ${
        JSON.stringify(Deno.args.join(" "))
      }; see \`deno task example --help\``,
    );
  }
  Deno.exit(help ? 0 : 2);
}

const out = "runs/example";
await Deno.remove(out, { recursive: true }).catch(() => {}); // start fresh

// 1. One method by hand: the demo's dataset config, 40% label noise, the
//    committed demo backbone, 10 epochs instead of 100.
const dataset = await loadDatasetConfig("demo");
const config = {
  ...resolveConfig("cufit", dataset, {
    noise: 0.4,
    epochs: 10,
    weights: DEMO_WEIGHTS,
    save: "cufit-example",
  }),
  savePath: out,
};
const run = await train(config, { progress: false, log: () => {} });
for (const m of run.metrics) {
  const { lpm, iam } = m.selection!;
  console.log(
    `epoch ${m.epoch}: test acc ${(m.testAcc * 100).toFixed(1)}%, ` +
      `LPM selects ${lpm.selected}/${lpm.total} (${
        ((lpm.precision ?? 0) * 100).toFixed(0)
      }% clean), IAM ${iam.selected}/${iam.total} (${
        ((iam.precision ?? 0) * 100).toFixed(0)
      }% clean)`,
  );
}

// 2. The comparison, in miniature (the real one: `deno task demo`).
const { table, summary } = await runDemo({
  out: `${out}/demo`,
  epochs: 3,
  png: false,
  progress: false,
  log: () => {},
});
console.log(table);
const cufit = summary.methods.cufit;
console.log(
  `CUFIT last-${cufit?.last_epochs}: ${cufit?.last10_acc.toFixed(3)}`,
);
