// cost-model.ts — what a round of speculation costs on this machine, as the cost-aware tree
// (auto-tree.ts) predicts it. A target forward of n tokens, or a draft pass of n tokens, at a context of
// c cached slots costs fixed + perToken·n + perTokenSlot·n·c microseconds (the last term is attention);
// each round also costs the host's own time for verification and bookkeeping, and each draft pass the
// tree builder's.
import { fail } from "../util/errors.ts";

export interface StepCost {
  fixedUs: number;
  perTokenUs: number;
  perTokenSlotUs: number;
}

export interface CostModel {
  target: StepCost; // a forward plus the reader verification needs
  draft: StepCost;  // a draft pass (its mask, the forward, the top-k read)
  roundUs: number;  // host time per round outside the forwards: verification, compaction, streaming
  buildUs: number;  // the tree builder's own time per drafted round before any pass: root candidates, the tree
  passUs: number;   // the tree builder's own time per draft pass: candidates, choosing the next pass
}

export function stepUs(c: StepCost, tokens: number, context: number): number {
  return c.fixedUs + c.perTokenUs * tokens + c.perTokenSlotUs * tokens * context;
}

export interface Measurement {
  tokens: number;
  context: number;
  us: number;
}

// the columns of the fit: fixed, per token, per token and slot
const features = (m: Measurement): number[] => [1, m.tokens, m.tokens * m.context];

/** Least squares of `us` over the chosen columns (the others held at 0); null if singular. */
function solve(points: Measurement[], cols: number[]): number[] | null {
  const k = cols.length;
  const a = Array.from({ length: k }, () => new Array<number>(k + 1).fill(0));
  for (const p of points) {
    const f = features(p);
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) a[i][j] += f[cols[i]] * f[cols[j]];
      a[i][k] += f[cols[i]] * p.us;
    }
  }
  for (let c = 0; c < k; c++) { // Gauss-Jordan with partial pivoting
    let pivot = c;
    for (let r = c + 1; r < k; r++) if (Math.abs(a[r][c]) > Math.abs(a[pivot][c])) pivot = r;
    if (Math.abs(a[pivot][c]) < 1e-12) return null;
    [a[c], a[pivot]] = [a[pivot], a[c]];
    for (let r = 0; r < k; r++) {
      if (r === c) continue;
      const f = a[r][c] / a[c][c];
      for (let j = c; j <= k; j++) a[r][j] -= f * a[c][j];
    }
  }
  return a.map((row, i) => row[k] / row[i]);
}

/**
 * The StepCost that fits the measurements best with every coefficient >= 0: the unconstrained least
 * squares when it is non-negative, else the best fit over the subsets of columns that are.
 */
export function fitStepCost(points: Measurement[]): StepCost {
  if (points.length === 0) fail("fitStepCost: no measurements");
  let best: { coef: number[]; err: number } | null = null;
  for (const cols of [[0, 1, 2], [0, 1], [0, 2], [1, 2], [0], [1]]) {
    const sol = solve(points, cols);
    if (!sol || sol.some((x) => !(x >= 0))) continue;
    const coef = [0, 0, 0];
    cols.forEach((c, i) => (coef[c] = sol[i]));
    const err = points.reduce((e, p) => e + (features(p).reduce((s, f, i) => s + f * coef[i], 0) - p.us) ** 2, 0);
    if (!best || err < best.err - 1e-9) best = { coef, err };
  }
  if (!best) fail("fitStepCost: no non-negative fit");
  return { fixedUs: best.coef[0], perTokenUs: best.coef[1], perTokenSlotUs: best.coef[2] };
}
