// cost-model.ts — what a round of speculation costs on this machine, as the cost-aware tree
// (auto-tree.ts) predicts it. A target forward of n tokens, or a draft pass of n tokens, at a context of
// c cached slots costs fixed + perToken·max(0, n - free) + perTokenSlot·n·c microseconds: the first `free`
// rows ride on the fixed cost (the weights are read once for every row, and a few rows' products hide in
// that), and the last term is attention;
// each round also costs the host's own time for verification and bookkeeping, and each draft pass the
// tree builder's.
import type { AcceptanceCounts } from "./calibration.ts";
import type { ChainCounts } from "./chain-acceptance.ts";
import type { CostReview } from "./cost-review.ts";
import { fail } from "../util/errors.ts";

export interface StepCost {
  fixedUs: number;
  perTokenUs: number;
  perTokenSlotUs: number;
  freeTokens?: number; // rows the fixed cost covers (0 when absent)
  /** The measured cost of 1, 2, .. tokens (table[n - 1]) less the slot term, non-decreasing: used up to its
   * length instead of the line, which few rows do not follow (their products' tiles and weight streams: on
   * the grown 140M model at one thread 6 tokens cost 1.13x a one-token step and 7 tokens 1.33x, where the
   * line through 1-64 tokens said 1.22x and 1.32x), and past it the line's slope from its last entry. */
  table?: number[];
}

export interface CostModel {
  target: StepCost; // a forward plus the reader verification needs
  draft: StepCost;  // a draft pass (its mask, the forward, the top-k read)
  roundUs: number;  // host time per round outside the forwards: verification, compaction, streaming
  buildUs: number;  // the tree builder's own time per drafted round before any pass: root candidates, the tree
  passUs: number;   // the tree builder's own time per draft pass: candidates, choosing the next pass
  batch?: BatchCost; // measured batched target forwards (absent: the single-sequence costs, shared)
  acceptance?: AcceptanceCounts; // the draft's acceptance by its confidence, measured (absent: trusted as it is)
  chain?: ChainCounts; // its first choices' acceptance by depth, measured (absent: priced as always right)
  review?: CostReview; // not in the file: set on a cached model, which runs check against their real rounds
}

/** What batched target forwards cost: BATCH_PROBE sequences at one new token each, and at two each. */
export interface BatchCost {
  oneUs: number;
  twoUs: number;
}

/** Sequences in the measured batch. */
export const BATCH_PROBE = 8;

/**
 * The target's step cost as one of `sharing` sequences that run their forwards together sees it: its share
 * of a batched forward of one token each (between the lone step and the measured batch, linear in the
 * sequences), and each token past its first at what a batched row costs. Without a measured batch, the
 * fixed cost and free rows are split among the sequences.
 */
export function sharedTargetCost(c: CostModel, sharing: number): StepCost {
  const t = c.target;
  if (sharing <= 1) return t;
  if (!c.batch) { // the line's fixed cost and free rows split (a table describes a lone step only)
    return { fixedUs: t.fixedUs / sharing, perTokenUs: t.perTokenUs, perTokenSlotUs: t.perTokenSlotUs, freeTokens: (t.freeTokens ?? 0) / sharing };
  }
  const alone = stepUs({ ...t, perTokenSlotUs: 0 }, 1, 0);
  const perSequence = Math.max(0, (c.batch.oneUs - alone) / (BATCH_PROBE - 1));
  const extraRow = Math.max(0, (c.batch.twoUs - c.batch.oneUs) / BATCH_PROBE);
  const firstRow = (alone + perSequence * (sharing - 1)) / sharing;
  return { fixedUs: Math.max(0, firstRow - extraRow), perTokenUs: extraRow, perTokenSlotUs: t.perTokenSlotUs };
}

export function stepUs(c: StepCost, tokens: number, context: number): number {
  const slots = c.perTokenSlotUs * tokens * context;
  const t = c.table;
  if (!t || t.length === 0) return c.fixedUs + c.perTokenUs * Math.max(0, tokens - (c.freeTokens ?? 0)) + slots;
  if (tokens >= t.length) return t[t.length - 1] + c.perTokenUs * (tokens - t.length) + slots;
  if (tokens <= 1) return t[0] + slots;
  const below = Math.floor(tokens); // between two measured sizes (a fractional count: expected tokens), linearly
  return t[below - 1] + (t[below] - t[below - 1]) * (tokens - below) + slots;
}

/** The table of a StepCost (see there) from measurements of 1, 2, .. `upTo` tokens at one context, the slot
 * term of `fit` taken off; null unless every size was measured. More rows never cost less, so a size costs
 * at most what any larger one measured: a timing that load slowed (they only err upwards: each is the best
 * of several) gives way to its neighbours. */
export function costTable(points: Measurement[], fit: StepCost, upTo: number): number[] | null {
  const table: number[] = [];
  for (let n = 1; n <= upTo; n++) {
    const p = points.find((q) => q.tokens === n);
    if (!p) return null;
    table.push(p.us - fit.perTokenSlotUs * n * p.context);
  }
  for (let i = table.length - 2; i >= 0; i--) table[i] = Math.min(table[i], table[i + 1]);
  return table;
}

export interface Measurement {
  tokens: number;
  context: number;
  us: number;
}

// the columns of the fit: fixed, per token past the free ones, per token and slot
const features = (m: Measurement, free: number): number[] => [1, Math.max(0, m.tokens - free), m.tokens * m.context];

// the free-row counts a fit tries
const FREE_TOKENS = [0, 1, 2, 4, 8, 16];

// each point's weight: errors count relative to the time measured, so that the short steps a tree is
// priced by fit as well as the long ones
const weight = (p: Measurement) => 1 / Math.max(p.us, 1e-9) ** 2;

/** Weighted least squares of `us` over the chosen columns (the others held at 0); null if singular. */
function solve(points: Measurement[], cols: number[], free: number): number[] | null {
  const k = cols.length;
  const a = Array.from({ length: k }, () => new Array<number>(k + 1).fill(0));
  for (const p of points) {
    const f = features(p, free);
    const w = weight(p);
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) a[i][j] += w * f[cols[i]] * f[cols[j]];
      a[i][k] += w * f[cols[i]] * p.us;
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
 * The StepCost that fits the measurements best (in relative error) with every coefficient >= 0, over the
 * free-row counts (a larger count only where it fits better by 1%): for each, the unconstrained least
 * squares when it is non-negative, else the best fit over the subsets of columns that are.
 */
export function fitStepCost(points: Measurement[]): StepCost {
  if (points.length === 0) fail("fitStepCost: no measurements");
  let best: { coef: number[]; free: number; err: number } | null = null;
  for (const free of FREE_TOKENS) {
    for (const cols of [[0, 1, 2], [0, 1], [0, 2], [1, 2], [0], [1]]) {
      const sol = solve(points, cols, free);
      if (!sol || sol.some((x) => !(x >= 0))) continue;
      const coef = [0, 0, 0];
      cols.forEach((c, i) => (coef[c] = sol[i]));
      const err = points.reduce((e, p) => e + weight(p) * (features(p, free).reduce((s, f, i) => s + f * coef[i], 0) - p.us) ** 2, 0);
      const better = !best || (free === best.free ? err < best.err - 1e-9 : err < best.err * 0.99 - 1e-9);
      if (better) best = { coef, free, err };
    }
  }
  if (!best) fail("fitStepCost: no non-negative fit");
  const fit: StepCost = { fixedUs: best.coef[0], perTokenUs: best.coef[1], perTokenSlotUs: best.coef[2] };
  if (best.free > 0) fit.freeTokens = best.free;
  return fit;
}
