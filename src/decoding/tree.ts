// the draft tree the target verifies in one forward pass: flat arrays, parents before children,
// so the mask, paths and checks below are single forward sweeps.
import { fail } from "../util/errors.ts";
import { range } from "../util/int32.ts";

/** A draft tree: node 0 is the root (the last committed token, not yet in the target's cache); parents[i] < i. */
export interface DraftTree {
  tokens: Int32Array; // token id per node
  parents: Int32Array; // parent node per node, -1 for the root
  depth: Int32Array; // 0 for the root; also the node's position offset from the root
  // sampled drafting only (EAGLE-1 at T > 0): per node, the draft's processed distribution that its children
  // were drawn from without replacement, in node order (null for a node without children). absent: the
  // children are deterministic top-k picks, point masses to verification
  proposal?: (Float32Array | null)[];
}

/** Row-major n x n attention mask: 1 where the column is the row itself or one of its ancestors. */
export function treeMask(t: DraftTree): Uint8Array {
  const n = t.tokens.length;
  const mask = new Uint8Array(n * n);
  for (let i = 0; i < n; i++) {
    // a row is its parent's row plus itself: the parent's row is already complete
    const p = t.parents[i];
    if (p >= 0) mask.copyWithin(i * n, p * n, p * n + n);
    mask[i * n + i] = 1;
  }
  return mask;
}

/** Per node, its children in ascending node index. */
export function childrenOf(t: DraftTree): Int32Array[] {
  const n = t.tokens.length;
  const lists: number[][] = Array.from({ length: n }, () => []);
  for (let i = 1; i < n; i++) lists[t.parents[i]].push(i);
  return lists.map((c) => Int32Array.from(c));
}

/** Node indices from the root down to `node`, both included. */
export function pathTo(t: DraftTree, node: number): number[] {
  if (!Number.isInteger(node) || node < 0 || node >= t.tokens.length)
    fail(`tree: node ${node} is outside a tree of ${t.tokens.length} nodes`);
  const path: number[] = [];
  for (let i = node; i >= 0; i = t.parents[i]) path.push(i);
  return path.reverse();
}

/** Throws unless the arrays describe a well-formed tree (see DraftTree). */
export function checkTree(t: DraftTree): void {
  const n = t.tokens.length;
  if (n === 0) fail("tree: no nodes (the root is required)");
  if (t.parents.length !== n || t.depth.length !== n)
    fail(`tree: ${n} tokens but ${t.parents.length} parents and ${t.depth.length} depths`);
  if (t.parents[0] !== -1) fail(`tree: root parent is ${t.parents[0]}, expected -1`);
  if (t.depth[0] !== 0) fail(`tree: root depth is ${t.depth[0]}, expected 0`);
  // sibling tokens must differ: verification treats each child as a distinct point-mass proposal
  const seen = new Set<number>(); // parent * 2^32 + token: exact in a double for any tree and vocabulary
  for (let i = 1; i < n; i++) {
    const p = t.parents[i];
    if (!(p >= 0 && p < i)) fail(`tree: node ${i} has parent ${p}, expected 0 <= parent < ${i}`);
    if (t.depth[i] !== t.depth[p] + 1)
      fail(`tree: node ${i} has depth ${t.depth[i]}, expected ${t.depth[p] + 1} (parent ${p})`);
    const key = p * 4294967296 + t.tokens[i];
    if (seen.has(key)) fail(`tree: node ${i} repeats token ${t.tokens[i]} among the children of node ${p}`);
    seen.add(key);
    // a drawn child has positive probability under what it was drawn from (verification divides by it)
    const q = t.proposal?.[p];
    if (t.proposal && !(q && q[t.tokens[i]] > 0))
      fail(`tree: node ${i} (token ${t.tokens[i]}) has ${q ? `probability ${q[t.tokens[i]]}` : "no distribution"} under node ${p}'s proposal`);
  }
  if (t.proposal && t.proposal.length !== n) fail(`tree: ${n} nodes but ${t.proposal.length} proposals`);
}

/** A chain root -> tokens[1] -> ...; one token gives the 1-node tree of plain decoding. */
export function chainTree(tokens: number[]): DraftTree {
  if (tokens.length === 0) fail("chainTree: no tokens (the root is required)");
  if (tokens.length === 1) return { tokens: one(tokens[0]), parents: one(-1), depth: new Int32Array(1) }; // each plain step's
  return { tokens: Int32Array.from(tokens), parents: range(-1, tokens.length), depth: range(0, tokens.length) };
}

// [x] (Int32Array.of costs twice as much, and a plain step makes three)
function one(x: number): Int32Array {
  const a = new Int32Array(1);
  a[0] = x;
  return a;
}
