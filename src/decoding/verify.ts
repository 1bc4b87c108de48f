// tree verification: walk down from the root, accepting children the target agrees with, and let
// the target choose one more (bonus) token after the last accepted node. lossless (eagle.md §5).
import { fail } from "../util/errors.ts";
import { sampleFrom } from "./sampling.ts";
import { childrenOf, type DraftTree } from "./tree.ts";

export interface Verdict {
  path: number[]; // accepted tree nodes, root first; the root is always accepted
  bonus: number; // token id the target chose after the last accepted node
}

/**
 * Greedy: follow the child whose token is the target's argmax at its parent. Sibling tokens are
 * distinct, so at most one child matches; bonus = the argmax at the last accepted node.
 */
export function verifyGreedy(t: DraftTree, targetArgmax: Int32Array): Verdict {
  if (targetArgmax.length !== t.tokens.length)
    fail(`verifyGreedy: ${targetArgmax.length} argmax rows for a tree of ${t.tokens.length} nodes`);
  const children = childrenOf(t);
  const path = [0];
  for (let node = 0; ; ) {
    const next = children[node].find((c) => t.tokens[c] === targetArgmax[node]);
    if (next === undefined) return { path, bonus: targetArgmax[node] };
    path.push(next);
    node = next;
  }
}

// total mass of a row, in float64
function massOf(p: Float32Array, node: number): number {
  let total = 0;
  for (let i = 0; i < p.length; i++) {
    if (!(p[i] >= 0)) fail(`verifySampled: node ${node} has probability ${p[i]} for token ${i}`);
    total += p[i];
  }
  return total;
}

/**
 * Sampled. Draft tokens are deterministic top-k, so each child x is a point-mass proposal, q(x) = 1,
 * and speculative sampling accepts it with probability min(1, p(x)/q(x)) = p(x). On rejection the
 * target's distribution becomes the residual norm(max(p - δx, 0)): p with x zeroed, renormalised,
 * and the next sibling is tried against that. With r the current residual:
 *   accept child x  iff  u < r(x) / Σr          (one draw u per sibling test)
 * If every child is rejected, the bonus is sampled from the final residual; if the accepted node is
 * a leaf, from its full distribution (one draw for the bonus either way). Children are tried in
 * ascending node order, so draws are consumed in that order, then one for the bonus.
 * `distribution(node)` is called once per accepted node and its array is mutated in place.
 */
export function verifySampled(t: DraftTree, distribution: (node: number) => Float32Array, draw: () => number): Verdict {
  const children = childrenOf(t);
  const path = [0];
  for (let node = 0; ; ) {
    const p = distribution(node);
    let mass = massOf(p, node);
    if (!(mass > 0)) fail(`verifySampled: node ${node} has a distribution of total mass ${mass}`);
    let next = -1;
    for (const c of children[node]) {
      const x = t.tokens[c];
      if (!(x >= 0 && x < p.length)) fail(`verifySampled: node ${c} has token ${x}, outside a vocabulary of ${p.length}`);
      if (draw() < p[x] / mass) {
        next = c;
        break;
      }
      p[x] = 0; // residual: p conditioned on "not x"; sampleFrom renormalises
      mass = massOf(p, node);
    }
    if (next < 0) return { path, bonus: sampleFrom(p, draw()) };
    path.push(next);
    node = next;
  }
}
