import assert from "node:assert/strict";
import { checkGrid, expandGrid } from "../lib/sweep/grid.ts";
import {
  cellEpochs,
  estimateRemaining,
  formatDuration,
} from "../lib/sweep/local.ts";
import type { CellStatus, RunProgress } from "../lib/sweep/sweep_dir.ts";

const cells = expandGrid(checkGrid({
  datasets: ["demo", "synthetic"],
  noise_rates: [0.4],
  methods: ["linear", "cufit"],
  seeds: [0],
  overrides: { epochs: 10 },
}, "t"));

function progress(seconds: number[]): RunProgress {
  return {
    started: true,
    epochs: 10,
    records: seconds.map((s, epoch) => ({
      epoch,
      testAcc: 0.5,
      seconds: s,
      selection: {},
    })),
    complete: seconds.length === 10,
    avgAcc: null,
  };
}

function status(state: CellStatus["state"], seconds = 0): CellStatus {
  return {
    id: "x",
    index: 0,
    state,
    attempts: state === "pending" ? 0 : 1,
    failures: 0,
    exitCode: null,
    signal: null,
    startedAt: null,
    endedAt: null,
    seconds,
    engine: "local",
    job: null,
  };
}

Deno.test("estimateRemaining() prices missing epochs by dataset and method, then method, plus startup", () => {
  // demo linear: done, 10 epochs of 1 s in 14 s (4 s startup);
  // demo cufit: 2 of 10 epochs at 5 s; synthetic cells: nothing yet.
  const p = new Map([
    [0, progress(Array(10).fill(1))],
    [1, progress([5, 5])],
  ]);
  const s = new Map([
    [0, status("done", 14)],
    [1, status("running")],
    [2, status("pending")],
    [3, status("pending")],
  ]);
  const r = estimateRemaining(cells, p, s, (c) => cellEpochs(c, 100));
  // cufit demo: 8 x 5 + 4; linear synthetic: 10 x 1 (linear's mean) + 4;
  // cufit synthetic: 10 x 5 + 4.
  assert.equal(r.measured, 12);
  assert.equal(r.seconds, 44 + 14 + 54);
  // Nothing measured: no estimate rather than a guess.
  assert.deepEqual(
    estimateRemaining(cells, new Map(), new Map(), () => 10),
    { seconds: null, measured: 0 },
  );
});

Deno.test("cellEpochs() reads a cell's --epochs, else its dataset's", () => {
  assert.equal(cellEpochs(cells[0], 100), 10);
  const plain = expandGrid(checkGrid({
    datasets: ["demo"],
    noise_rates: [0.4],
    methods: ["linear"],
    seeds: [0],
  }, "t"))[0];
  assert.equal(cellEpochs(plain, 100), 100);
});

Deno.test("formatDuration() reads at a glance from seconds to days", () => {
  assert.equal(formatDuration(44.6), "45 s");
  assert.equal(formatDuration(200), "3 min 20 s");
  assert.equal(formatDuration(7500), "2 h 05 min");
  assert.equal(formatDuration(3 * 86400 + 4 * 3600 + 60), "3 d 4 h");
});
