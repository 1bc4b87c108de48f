// EAGLE-2's dynamic tree (eagle.md §4): the draft grows candidates level by level, expanding the
// best few by value; at the end the best `keep` candidates over all levels become the draft tree.
import { fail } from "../util/errors.ts";
import { checkTree, type DraftTree } from "./tree.ts";

export interface Candidate {
  token: number;
  parent: number; // index into the candidate array, -1 = the root
  logp: number; // cumulative draft log-prob from the root = log of the path's value
  depth: number; // 1 for the root's children
}

function checkCandidates(candidates: Candidate[]): void {
  candidates.forEach((c, i) => {
    // the builder appends children after their parents, so candidate order is already topological
    if (!Number.isInteger(c.parent) || c.parent < -1 || c.parent >= i)
      fail(`rerankTree: candidate ${i} has parent ${c.parent}, expected -1 <= parent < ${i}`);
    const depth = c.parent < 0 ? 1 : candidates[c.parent].depth + 1;
    if (c.depth !== depth) fail(`rerankTree: candidate ${i} has depth ${c.depth}, expected ${depth}`);
    if (Number.isNaN(c.logp) || c.logp === Infinity) fail(`rerankTree: candidate ${i} has logp ${c.logp}`);
  });
}

// a ranks before b: higher value, then shallower (P2's tie rule), then earlier
function better(candidates: Candidate[]): (a: number, b: number) => number {
  return (a, b) =>
    candidates[b].logp - candidates[a].logp || candidates[a].depth - candidates[b].depth || a - b;
}

/** The `keep` best candidates by `better`, in ascending index order. Only the tie at the cut is sorted by
 * the comparator: the cut value comes from a numeric sort of all the values. */
function bestCandidates(candidates: Candidate[], keep: number): number[] {
  const n = candidates.length;
  if (keep >= n) return candidates.map((_, i) => i);
  if (keep === 0) return [];
  const values = Float64Array.from(candidates, (c) => c.logp).sort(); // ascending
  const cut = values[n - keep];
  const above: number[] = [];
  const tied: number[] = [];
  candidates.forEach((c, i) => (c.logp > cut ? above : c.logp === cut ? tied : null)?.push(i));
  const kept = above.concat(tied.sort(better(candidates)).slice(0, keep - above.length));
  return kept.sort((a, b) => a - b);
}

/** A reranked tree and, per drafted node (node i + 1), the candidate it came from. */
export interface Reranked {
  tree: DraftTree;
  kept: number[];
}

/**
 * The draft tree of the root plus the `keep` best candidates by logp. Value never rises from parent
 * to child, and ties go to the shallower node, so every kept candidate's parent is kept too.
 * Node order is candidate order, so parents precede children.
 */
export function rerankTree(root: number, candidates: Candidate[], keep: number): DraftTree {
  return rerank(root, candidates, keep).tree;
}

/** rerankTree, with the candidate behind each drafted node. */
export function rerank(root: number, candidates: Candidate[], keep: number): Reranked {
  if (!Number.isInteger(keep) || keep < 0) fail(`rerankTree: keep ${keep} must be an integer >= 0`);
  checkCandidates(candidates);
  const kept = bestCandidates(candidates, keep);
  const node = new Int32Array(candidates.length).fill(-1); // candidate index -> tree node, -1 if dropped
  kept.forEach((c, j) => (node[c] = j + 1));
  const n = kept.length + 1;
  const tree: DraftTree = { tokens: new Int32Array(n), parents: new Int32Array(n), depth: new Int32Array(n) };
  tree.tokens[0] = root;
  tree.parents[0] = -1;
  kept.forEach((c, j) => {
    const { token, parent, depth } = candidates[c];
    const p = parent < 0 ? 0 : node[parent];
    if (p < 0) fail(`rerankTree: candidate ${c} is kept but its parent ${parent} is not (logp rose from parent to child)`);
    tree.tokens[j + 1] = token;
    tree.parents[j + 1] = p;
    tree.depth[j + 1] = depth;
  });
  checkTree(tree);
  return { tree, kept };
}

/** Indices of the k largest scores in descending order, the lower index first on ties. */
export function selectFrontier(scores: Float64Array | number[], k: number): number[] {
  if (!Number.isInteger(k) || k < 0 || k > scores.length)
    fail(`selectFrontier: k ${k} must be an integer in [0, ${scores.length}]`);
  const order: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    if (Number.isNaN(scores[i])) fail(`selectFrontier: score ${i} is NaN`);
    order.push(i);
  }
  // -Infinity - -Infinity is NaN, so compare rather than subtract
  order.sort((a, b) => (scores[a] > scores[b] ? -1 : scores[a] < scores[b] ? 1 : a - b));
  return order.slice(0, k);
}

/** The candidate indices of `c`'s ancestors, its parent first. */
export function ancestorsOf(candidates: Candidate[], c: number): number[] {
  const out: number[] = [];
  for (let a = candidates[c].parent; a >= 0; a = candidates[a].parent) out.push(a);
  return out;
}
