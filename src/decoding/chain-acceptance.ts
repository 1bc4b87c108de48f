// chain-acceptance.ts — how far the draft's first choices carry, measured: in a round's tree, the draft's
// top-ranked child of the root, its top-ranked child, and so on down (the chain of first choices), and at
// each depth how often the target accepted that child when it accepted its parent — and, for sampled runs,
// the chance it would have (the target's probability of that child at temperature 1, which is what
// sampling's matched verification accepts it with). Measured once with the cost model, from the same greedy
// run as the acceptance calibration (calibrate.ts), this is what a draft as good as this pair's yields: a
// chain of m drafted tokens is expected to give 1 + Σ_i Π_{j<=i} c_j tokens.
// auto asks it before feeding a sequence's prompt to the draft at all (auto-tree.ts, #couldPay): where not
// even such a chain beats a plain step — a one-token step that is nearly free per extra row is rare on a
// compute-bound model, and a wide batch shares its step's cost — the draft's prefill and passes are not spent.
import type { DraftTree } from "./tree.ts";

/** Depths counted: deeper chains reuse the deepest rate. */
export const CHAIN_DEPTHS = 8;
const LEAST_SEEN = 8; // a depth seen fewer times than this takes its parent depth's rate

/** Outcomes by depth (index d: depth d + 1) along the chain of first choices. */
export interface ChainCounts {
  seen: number[];     // rounds whose chain reached this depth's parent, accepted, with a child drafted under it
  accepted: number[]; // those where the target accepted the child too (greedy)
  sampled: number[];  // the target's probabilities of those children at temperature 1, summed
}

export function emptyChainCounts(): ChainCounts {
  const zeros = () => new Array<number>(CHAIN_DEPTHS).fill(0);
  return { seen: zeros(), accepted: zeros(), sampled: zeros() };
}

/** Counts one greedy verified round: `path`, the accepted nodes from the root; `probability(node, token)`, the
 * target's probability of `token` after `node` at temperature 1. A node's first child in node order is its
 * top-ranked one (a tree keeps a node's children in rank order, and the best of them whenever any). */
export function countChain(counts: ChainCounts, tree: DraftTree, path: number[], probability: (node: number, token: number) => number): void {
  const n = tree.tokens.length;
  let node = 0;
  for (let d = 0; d < CHAIN_DEPTHS; d++) {
    let first = -1;
    for (let c = node + 1; c < n; c++) {
      if (tree.parents[c] === node) {
        first = c;
        break;
      }
    }
    if (first < 0) return;
    counts.seen[d]++;
    counts.sampled[d] += probability(node, tree.tokens[first]);
    if (path[d + 1] !== first) return;
    counts.accepted[d]++;
    node = first;
  }
}

/** Per depth, the chance that the target accepts the chain's child given its parent, in a greedy run
 * ((accepted + ½) / (seen + 1)) or a sampled one (the same of the summed probabilities); a depth seen too
 * seldom takes the depth above's rate. Null when the first depth was seen too seldom. */
export function chainRates(counts: ChainCounts, sampled: boolean): number[] | null {
  if (!((counts.seen[0] ?? 0) >= LEAST_SEEN)) return null;
  const hits = sampled ? counts.sampled : counts.accepted;
  const rates: number[] = [];
  for (let d = 0; d < CHAIN_DEPTHS; d++) {
    const seen = counts.seen[d] ?? 0;
    rates.push(seen >= LEAST_SEEN ? ((hits[d] ?? 0) + 0.5) / (seen + 1) : rates[d - 1]);
  }
  return rates;
}

/** Expected tokens of a round whose tree is the chain of m first choices: the bonus plus each accepted one. */
export function chainTokens(rates: number[], m: number): number {
  let tokens = 1;
  let reach = 1;
  for (let i = 0; i < m; i++) {
    reach *= rates[Math.min(i, rates.length - 1)];
    tokens += reach;
  }
  return tokens;
}
