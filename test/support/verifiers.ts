// verifiers for the tests of the law of whole rounds: deliberately wrong ones, each one fault away from the
// rule of src/decoding/verify.ts (a test must reject every one), and a correct alternative that must pass.
// They see the target's raw logits per tree node, so a fault can be a wrong filter or a wrong row.
import type { Verifier } from "../../src/decoding/decode.ts";
import { sampleFrom, type SamplingParams, sampleToken, targetDistribution } from "../../src/decoding/sampling.ts";
import { childrenOf, type DraftTree } from "../../src/decoding/tree.ts";
import { type Verdict, verifyMatched, verifySampled } from "../../src/decoding/verify.ts";

/** A verifier over raw target logits: `logits(node)` is the target's row after the node's path. */
export type RowVerifier = (tree: DraftTree, logits: (node: number) => Float32Array, sampling: SamplingParams, draw: () => number) => Verdict;

/** A RowVerifier plugged into decode: rows read from the tree forward, draws from the run's rng. */
export function inDecode(v: RowVerifier): Verifier {
  return (tree, target, sampling, rng, vocab) => v(tree, (node) => target.logitsRow(node, new Float32Array(vocab)), sampling, () => rng.next());
}

export type Fault =
  | "raw leaf bonus"          // the bonus at a reached leaf from softmax(raw logits): no temperature, no filters (EAGLE PR #215's bug)
  | "rejected token kept"     // after a rejection r is left as it was: later siblings and the bonus see x again
  | "residual not renormalised" // after a rejection, the next sibling is tested against r(x), not r(x) / sum(r)
  | "stale leaf residual"     // a leaf accepted after a sibling was rejected: its bonus from the parent's residual (EAGLE PR #47's bug)
  | "top-p on the residual"   // after each rejection the residual is cut to its own top-p nucleus again
  | "reused uniform"          // one draw per node, reused for every sibling test there
  | "filters at the root only" // below the root: softmax(logits / T), no top-k or top-p
  | "raw softmax below the root" // below the root: softmax(logits), no temperature, no filters
  | "parent's row"            // below the root, a node reads its parent's row instead of its own
  | "ratio not divided by q"  // sampled children: accept iff u < r(x), though the residual still takes q_j off
  | "point-mass residual"     // sampled children: accepted with r(x) / q_j(x), but the residual only drops x
  | "q keeps drawn siblings"; // sampled children: q_j is the draft's whole q, the earlier siblings not removed
// (testing drawn children as point masses throughout, u < r(x) and r minus x, is no fault: that rule is
// lossless for any children chosen before verification; it only accepts less than r(x) / q_j(x) does)

export const POINT_MASS_FAULTS: Fault[] = [
  "raw leaf bonus", "rejected token kept", "residual not renormalised", "stale leaf residual", "top-p on the residual", "reused uniform",
  "filters at the root only", "raw softmax below the root", "parent's row",
];
export const SAMPLED_DRAFT_FAULTS: Fault[] = ["ratio not divided by q", "point-mass residual", "q keeps drawn siblings"];

const RAW: SamplingParams = { temperature: 1, topK: 0, topP: 1 };

function normalised(x: ArrayLike<number>): Float64Array {
  let mass = 0;
  for (let i = 0; i < x.length; i++) mass += x[i];
  return Float64Array.from(x as ArrayLike<number>, (v) => v / mass);
}

// the top-p nucleus of a probability row, renormalised (targetDistribution of its logs)
function nucleusOf(r: Float64Array, topP: number): Float64Array {
  const logits = Float32Array.from(r, (v) => Math.log(v));
  return Float64Array.from(targetDistribution(logits, { temperature: 1, topK: 0, topP }));
}

/**
 * The rule of verify.ts written out once more, in float64, with one fault switched in. Children are tried
 * in node order; a child x drawn from q_j (the tree's proposal with earlier siblings removed, or a point
 * mass for top-k drafting) is accepted iff u < r(x) / q_j(x); on rejection r <- norm(max(r - q_j, 0));
 * the bonus comes from the last residual, or from the leaf's own row.
 */
export function faulty(fault: Fault): RowVerifier {
  return (tree, logits, sampling, draw) => {
    const children = childrenOf(tree);
    const rowOf = (node: number): Float64Array => {
      const below = node > 0;
      const own = below && fault === "parent's row" ? tree.parents[node] : node;
      const params = !below ? sampling
        : fault === "filters at the root only" ? { temperature: sampling.temperature, topK: 0, topP: 1 }
        : fault === "raw softmax below the root" ? RAW : sampling;
      return Float64Array.from(targetDistribution(logits(own), params));
    };
    const path = [0];
    let stale: Float64Array | null = null; // the parent's residual when a sibling before the accepted node was rejected
    for (let node = 0; ; ) {
      const kids = children[node];
      if (kids.length === 0) {
        const row = fault === "raw leaf bonus" && node > 0 ? Float64Array.from(targetDistribution(logits(node), RAW))
          : fault === "stale leaf residual" && stale ? stale : rowOf(node);
        return { path, bonus: sampleFrom(Float32Array.from(row), draw()) };
      }
      let r = rowOf(node);
      let mass = 1; // what r's acceptance ratios are divided by
      const proposal = tree.proposal?.[node];
      const left = proposal ? Float64Array.from(proposal) : null; // q, the tried siblings removed
      const reused = fault === "reused uniform" ? draw() : -1;
      let next = -1;
      stale = null;
      for (const c of kids) {
        const x = tree.tokens[c];
        const q = left ? normalised(left) : null; // q_j: what x was drawn from
        const u = reused >= 0 ? reused : draw();
        if (u < r[x] / mass / (q && fault !== "ratio not divided by q" ? q[x] : 1)) {
          next = c;
          break;
        }
        if (fault === "rejected token kept") continue;
        const taken = q && fault !== "point-mass residual" ? q : null;
        r = Float64Array.from(r, (v, i) => Math.max(v / mass - (taken ? taken[i] : i === x ? 1 : 0), 0)); // max(r - q_j, 0)
        mass = fault === "residual not renormalised" ? 1 : r.reduce((a, b) => a + b, 0);
        if (fault === "top-p on the residual") (r = nucleusOf(normalised(r), sampling.topP)), (mass = 1);
        if (left && fault !== "q keeps drawn siblings") left[x] = 0;
        stale = r;
      }
      // an empty residual (every token of the support tried) cannot happen without a fault; the row stands in
      if (next < 0) return { path, bonus: sampleFrom(Float32Array.from(r.some((v) => v > 0) ? r : rowOf(node)), draw()) };
      path.push(next);
      node = next;
    }
  };
}

/**
 * Correct, another way: one coin per level. The token at a level is drawn straight from the node's row;
 * if it is one of the node's children, that child is accepted and the walk goes on, else it is the bonus.
 * Its law is the target's at every step whatever the tree, and it ignores the draft's q entirely.
 */
export const oneCoinPerLevel: RowVerifier = (tree, logits, sampling, draw) => {
  const children = childrenOf(tree);
  const path = [0];
  for (let node = 0; ; ) {
    const x = sampleFrom(targetDistribution(logits(node), sampling), draw());
    const next = Array.from(children[node]).find((c) => tree.tokens[c] === x);
    if (next === undefined) return { path, bonus: x };
    path.push(next);
    node = next;
  }
};

/** The rule decode's `verify` applies at temperature > 0, over raw rows: speculative sampling's residuals for
 * drawn children, the target's own draw matched for top-k ones (one draw a level, as decode's for a position). */
export const verifyRows: RowVerifier = (tree, logits, sampling, draw) => tree.proposal
  ? verifySampled(tree, (node) => targetDistribution(logits(node), sampling), draw)
  : verifyMatched(tree, (node, u) => sampleToken(logits(node), sampling, u), () => draw());
