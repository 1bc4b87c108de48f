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
  const path = [0];
  for (let node = 0; ; ) {
    const next = matchingChild(t, node, targetArgmax[node]);
    if (next < 0) return { path, bonus: targetArgmax[node] };
    path.push(next);
    node = next;
  }
}

/**
 * Sampled, for a tree whose children are the draft's top-k picks (point masses): at each accepted node the
 * target's own token is drawn from its distribution there with the uniform for that depth (`sample(node, u)`,
 * called once per accepted node), and the child carrying that token, if any, is accepted; else the drawn
 * token is the bonus. Every emitted token is the target's draw, so the text is the one plain sampling makes
 * with the same uniforms, whatever the tree; and a child x is accepted with probability r(x), exactly as
 * speculative sampling's point-mass rule (verifySampled) accepts it, so the tree yields as much.
 */
export function verifyMatched(t: DraftTree, sample: (node: number, u: number) => number, drawAt: (depth: number) => number): Verdict {
  if (t.proposal) fail("verifyMatched: a tree of drawn children is verified by verifySampled");
  const path = [0];
  for (let node = 0; ; ) {
    const token = sample(node, drawAt(t.depth[node]));
    const next = matchingChild(t, node, token);
    if (next < 0) return { path, bonus: token };
    path.push(next);
    node = next;
  }
}

// the child of `node` whose token is `token`, or -1 (children come after their parent)
function matchingChild(t: DraftTree, node: number, token: number): number {
  for (let c = node + 1; c < t.tokens.length; c++) if (t.parents[c] === node && t.tokens[c] === token) return c;
  return -1;
}

// total mass of a row, in float64; `row` names it in errors
function massOf(p: Float32Array | Float64Array, row: string): number {
  let total = 0;
  for (let i = 0; i < p.length; i++) {
    if (!(p[i] >= 0)) fail(`verifySampled: ${row} has probability ${p[i]} for token ${i}`);
    total += p[i];
  }
  return total;
}

/**
 * Sampled: speculative sampling down the tree (eagle.md §5). At an accepted node, with r the target's
 * distribution there, its children are tried in node order, each a proposal x drawn from some q_j:
 *   accept x  iff  u < r(x) / q_j(x)          (one draw u per sibling test)
 *   else      r <- norm(max(r - q_j, 0))      and the next sibling is tried against that residual
 * If every child is rejected, the bonus is sampled from the final residual; if the accepted node is a
 * leaf, from its full distribution (one draw for the bonus either way). The emitted token then follows r
 * exactly, whatever the proposals, so every token of the round follows the target.
 * - top-k drafting (the default; EAGLE-2 and auto always): children are deterministic, each a point mass,
 *   q_j = δx, so x is accepted with probability r(x) and the residual is r with x zeroed.
 * - sampled drafting (EAGLE-1 at T > 0, as the official v1 evaluate_posterior): the children were drawn
 *   without replacement, in node order, from q, the draft's processed distribution at the node
 *   (tree.proposal); q_j is q with the earlier siblings removed, renormalised: what x was drawn from.
 * `distribution(node)` is called once per accepted node and a point-mass node's array is mutated in place.
 */
export function verifySampled(t: DraftTree, distribution: (node: number) => Float32Array, draw: () => number): Verdict {
  const children = childrenOf(t);
  const path = [0];
  for (let node = 0; ; ) {
    const p = distribution(node);
    const mass = massOf(p, `node ${node}`);
    if (!(mass > 0)) fail(`verifySampled: node ${node} has a distribution of total mass ${mass}`);
    for (const c of children[node]) {
      const x = t.tokens[c];
      if (!(x >= 0 && x < p.length)) fail(`verifySampled: node ${c} has token ${x}, outside a vocabulary of ${p.length}`);
    }
    const q = t.proposal?.[node];
    const { next, residual } = q ? tryDrawn(t, node, children[node], p, mass, q, draw) : tryPointMasses(t, node, children[node], p, mass, draw);
    if (next < 0) return { path, bonus: sampleFrom(residual, draw()) };
    path.push(next);
    node = next;
  }
}

// point masses: r(x) = p[x] / mass; the residual is p with the rejected tokens zeroed (sampleFrom renormalises)
function tryPointMasses(t: DraftTree, node: number, kids: Int32Array, p: Float32Array, mass: number, draw: () => number) {
  for (const c of kids) {
    const x = t.tokens[c];
    if (draw() < p[x] / mass) return { next: c, residual: p };
    p[x] = 0;
    mass = massOf(p, `node ${node}`);
  }
  return { next: -1, residual: p };
}

// children drawn without replacement from q: float64 residual r and the draw distribution q_j, both normalised
function tryDrawn(t: DraftTree, node: number, kids: Int32Array, p: Float32Array, mass: number, q: Float32Array, draw: () => number) {
  const n = p.length;
  if (q.length !== n) fail(`verifySampled: a proposal over ${q.length} tokens for a vocabulary of ${n}`);
  const r = new Float64Array(n);
  for (let i = 0; i < n; i++) r[i] = p[i] / mass;
  const left = new Float64Array(q); // q with the tried siblings removed
  let leftMass = massOf(left, `node ${node}'s proposal`);
  const rest = new Float64Array(n);
  for (const c of kids) {
    const x = t.tokens[c];
    const qx = left[x] / leftMass;
    if (!(qx > 0)) fail(`verifySampled: node ${c} (token ${x}) has probability ${qx} under the distribution it was drawn from`);
    if (draw() < r[x] / qx) return { next: c, residual: r };
    let restMass = 0;
    for (let i = 0; i < n; i++) restMass += rest[i] = Math.max(r[i] - left[i] / leftMass, 0);
    // only rounding can empty it (u within 1e-15 of 1): x's rejection had no real probability, take x
    if (!(restMass > 0)) return { next: c, residual: r };
    for (let i = 0; i < n; i++) r[i] = rest[i] / restMass;
    leftMass -= left[x];
    left[x] = 0;
  }
  return { next: -1, residual: r };
}
