// loop.ts — the training loop: linear warmup then cosine decay of the learning rate, one shim step per
// iteration, periodic validation and checkpoints, and a stop flag that Ctrl-C sets between steps.
import type { HeadTrainer, TrainStats } from "./trainer.ts";

export interface LoopOptions {
  steps: number;    // total optimizer steps of the run (a resumed run counts the earlier ones)
  warmup: number;   // steps of linear warmup
  lr: number;       // peak learning rate
  batch: number;
  window: number;   // tokens per training window
  noise: number;
  gradClip: number;
  seed: number;
  evalEvery: number; // 0 = only at the end
  saveEvery: number; // 0 = only at the end
}

// the cosine ends at this fraction of the peak rate rather than 0
export const MIN_LR_FRACTION = 0.1;

/** The learning rate of step `step` (1-based). */
export function learningRate(step: number, o: Pick<LoopOptions, "steps" | "warmup" | "lr">): number {
  if (step <= o.warmup) return (o.lr * step) / o.warmup;
  const progress = Math.min(1, (step - o.warmup) / Math.max(1, o.steps - o.warmup));
  const floor = o.lr * MIN_LR_FRACTION;
  return floor + (o.lr - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/** The seed of one step's draws: a function of the run's seed and the step alone, so a resumed run
 * draws what the uninterrupted run would have. */
export function stepSeed(seed: number, step: number): bigint {
  return BigInt.asUintN(64, BigInt(seed) * 0x9e3779b97f4a7c15n + BigInt(step));
}

export interface LoopHooks {
  progress(step: number, stats: TrainStats, lr: number): void;
  evaluate(step: number): void;
  checkpoint(step: number): void;
  stopRequested(): boolean;
}

export interface LoopResult {
  step: number;         // steps completed, earlier runs included
  interrupted: boolean; // stopped by a stop request before `steps`
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Steps from `fromStep` to o.steps; yields to the event loop between steps so a SIGINT handler can run. */
export async function runLoop(trainer: HeadTrainer, o: LoopOptions, fromStep: number, hooks: LoopHooks): Promise<LoopResult> {
  let step = fromStep;
  while (step < o.steps) {
    await nextTurn();
    if (hooks.stopRequested()) return { step, interrupted: true };
    step++;
    const lr = learningRate(step, o);
    const stats = trainer.step({
      batch: o.batch, maxLen: o.window, lr, noise: o.noise, gradClip: o.gradClip, seed: stepSeed(o.seed, step),
    });
    hooks.progress(step, stats, lr);
    if (step === o.steps) break;
    if (o.evalEvery > 0 && step % o.evalEvery === 0) hooks.evaluate(step);
    if (o.saveEvery > 0 && step % o.saveEvery === 0) hooks.checkpoint(step);
  }
  return { step, interrupted: false };
}
