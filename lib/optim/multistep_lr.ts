/**
 * `torch.optim.lr_scheduler.MultiStepLR` as pure functions: the learning
 * rate is multiplied by `gamma` at each milestone epoch.
 *
 * @module
 */

/** The reference's milestones: int(0.5 E), int(0.75 E), int(0.9 E). */
export function referenceMilestones(
  epochs: number,
  fractions: readonly number[] = [0.5, 0.75, 0.9],
): number[] {
  return fractions.map((f) => Math.floor(f * epochs));
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
  // 1. Count milestones already passed (torch repeats a milestone listed twice).
  let passed = 0;
  for (const m of options.milestones) if (epoch >= m) passed++;
  // 2. Decay once per milestone passed.
  return options.lr * gamma ** passed;
}
