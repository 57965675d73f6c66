/**
 * `torch.optim.lr_scheduler.MultiStepLR` as pure functions: the learning
 * rate is multiplied by `gamma` at each milestone epoch.
 *
 * @module
 */

/** The reference's milestones: int(0.5 E), int(0.75 E), int(0.9 E) (Python's truncation). */
export function referenceMilestones(
  epochs: number,
  fractions: readonly number[] = [0.5, 0.75, 0.9],
): number[] {
  return fractions.map((f) => Math.trunc(f * epochs));
}

/**
 * The learning rate in effect during `epoch` (0-based), with the scheduler
 * stepped once after each epoch as the reference does.
 */
export function multiStepLr(
  epoch: number,
  options: { lr: number; milestones: readonly number[]; gamma?: number },
): number {
  const gamma = options.gamma ?? 0.1;
  // 1. Milestones as torch holds them: a Counter, so a repeated milestone
  //    (E < 4 makes several 0s or 1s) decays by gamma^count at once.
  const counts = new Map<number, number>();
  for (const m of options.milestones) counts.set(m, (counts.get(m) ?? 0) + 1);
  // 2. After `epoch` scheduler steps, every milestone m <= epoch has fired
  //    (milestone 0 fires at construction, when last_epoch becomes 0).
  // 3. Apply them in order with torch's chained update `lr * gamma ** count`,
  //    so the float result matches bit for bit (1e-5 * 0.1 is not 1e-6).
  let lr = options.lr;
  for (const m of [...counts.keys()].sort((a, b) => a - b)) {
    if (m <= epoch) lr = lr * gamma ** counts.get(m)!;
  }
  return lr;
}
