// EAGLE-1's static tree: a fixed list of paths of child ranks, turned once into a plan (which nodes
// exist, which the draft must expand per level) and each round into a DraftTree of real tokens.
import { existsSync } from "node:fs";
import { readTextFile } from "../util/files.ts";
import { EagleError, fail } from "../util/errors.ts";
import { shortJson } from "../util/short-json.ts";
import { checkTree, type DraftTree } from "./tree.ts";

/** Paths of child ranks: [a, b] is the b-th ranked child of the a-th ranked child of the root. */
export type TreeChoices = number[][];

/**
 * mc_sim_7b_63 from the EAGLE repo: 25 paths, depth 5, nodes per depth 4/8/8/3/2
 * (eagle.md §3). Canonical order: by length, then lexicographically.
 */
export const EAGLE1_DEFAULT_CHOICES: TreeChoices = [
  [0], [1], [2], [3],
  [0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [2, 0], [2, 1], [3, 0],
  [0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 1, 0], [0, 1, 1], [0, 2, 0], [0, 2, 1], [1, 0, 0],
  [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 2],
  [0, 0, 0, 0, 0], [0, 0, 0, 0, 1],
];

export interface StaticNode {
  parent: number; // plan node index, -1 for the root
  rank: number; // which ranked candidate of the parent this node takes; -1 for the root
  depth: number; // 0 for the root
}

export interface StaticTreePlan {
  nodes: StaticNode[]; // node 0 = root; by depth, then path lexicographically: parents first, siblings in rank order
  levels: number[][]; // levels[d] = node indices at depth d, ascending; levels[0] = [0] (the root)
  expand: number[][]; // expand[d] = nodes at depth d that have children, ascending; d = 0 .. maxDepth-1
  children: number[][]; // children[n] = node n's children, ascending (so in rank order)
  place: number[]; // place[n] = n's index in children[parent]; -1 for the root
  topK: number; // 1 + the largest rank: candidates the draft must rank per expanded node
  maxDepth: number; // depth of the deepest node; 0 for a root-only plan
}

const MAX_RANK = 64; // ranks are < this
const MAX_NODES = 256; // root included
const MAX_DEPTH = 16;

function checkShape(path: unknown): number[] {
  const name = shortJson(path);
  if (!Array.isArray(path) || path.length === 0) fail(`tree choices: path ${name} must be a non-empty array`);
  if (path.length > MAX_DEPTH) fail(`tree choices: path ${name} is deeper than ${MAX_DEPTH}`);
  for (const r of path)
    if (!Number.isInteger(r) || r < 0 || r >= MAX_RANK)
      fail(`tree choices: path ${name} has rank ${shortJson(r)}, expected an integer in [0, ${MAX_RANK})`);
  return path;
}

// canonical order: shorter first, then lexicographic by rank
function comparePaths(a: number[], b: number[]): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** Validates a choices list and lays its nodes out (see StaticTreePlan). */
export function planStaticTree(choices: TreeChoices): StaticTreePlan {
  if (!Array.isArray(choices) || choices.length === 0) fail("tree choices: the list of paths is empty");
  if (choices.length >= MAX_NODES)
    fail(`tree choices: path ${shortJson(choices[MAX_NODES - 1])} makes more than ${MAX_NODES} nodes (root included)`);
  const paths = choices.map(checkShape).sort(comparePaths);
  const index = new Map<string, number>([["[]", 0]]); // path key -> node index; the root is the empty path
  const nodes: StaticNode[] = [{ parent: -1, rank: -1, depth: 0 }];
  for (const path of paths) {
    const key = JSON.stringify(path);
    if (index.has(key)) fail(`tree choices: path ${key} appears twice`);
    // sorted by length, so every proper prefix that exists is already indexed
    const parent = index.get(shortJson(path.slice(0, -1)));
    if (parent === undefined) fail(`tree choices: path ${key} lacks its prefix ${shortJson(path.slice(0, -1))}`);
    index.set(key, nodes.length);
    nodes.push({ parent, rank: path[path.length - 1], depth: path.length });
  }
  return layout(nodes);
}

// the per-depth groupings, derived from nodes already in plan order
function layout(nodes: StaticNode[]): StaticTreePlan {
  const maxDepth = Math.max(...nodes.map((n) => n.depth));
  const levels: number[][] = Array.from({ length: maxDepth + 1 }, () => []);
  const children: number[][] = nodes.map(() => []);
  const place: number[] = nodes.map(() => -1);
  let topK = 0;
  nodes.forEach((n, i) => {
    levels[n.depth].push(i);
    if (n.parent >= 0) place[i] = children[n.parent].push(i) - 1;
    topK = Math.max(topK, n.rank + 1);
  });
  const expand = levels.slice(0, maxDepth).map((level) => level.filter((i) => children[i].length > 0));
  return { nodes, levels, expand, children, place, topK, maxDepth };
}

/**
 * A --tree value: the JSON array of paths itself when it starts with "[" (after blanks), else the path of
 * a JSON file holding one; checked as planStaticTree does. Errors name the file, or `--tree <value>`
 * (a usage error) for inline JSON.
 */
export function readTreeFile(value: string): TreeChoices {
  const inline = value.trimStart().startsWith("[");
  const where = inline ? `--tree ${value.trim()}` : value;
  const refuse = (message: string): never => {
    throw new EagleError(`${where}: ${message}`, inline ? 2 : 1);
  };
  if (!inline && !existsSync(value)) refuse("tree file not found");
  const text = inline ? value : readTextFile(value, "tree file");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    refuse(`not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(parsed)) refuse("expected a JSON array of paths such as [[0],[1],[0,0]]");
  try {
    planStaticTree(parsed as TreeChoices);
  } catch (e) {
    if (e instanceof EagleError) refuse(e.message);
    throw e;
  }
  return parsed as TreeChoices;
}

/**
 * Fills a plan with tokens. `candidates(node)` is called once per expanded node (plan and tree
 * node indices agree) and returns that node's ranked candidate token ids, at least plan.topK long.
 */
export function instantiate(plan: StaticTreePlan, root: number, candidates: (node: number) => Int32Array): DraftTree {
  const n = plan.nodes.length;
  const tree: DraftTree = { tokens: new Int32Array(n), parents: new Int32Array(n), depth: new Int32Array(n) };
  const ranked = new Map<number, Int32Array>();
  tree.tokens[0] = root;
  tree.parents[0] = -1;
  for (let i = 1; i < n; i++) {
    const { parent, rank, depth } = plan.nodes[i];
    let list = ranked.get(parent);
    if (list === undefined) ranked.set(parent, (list = candidates(parent)));
    if (rank >= list.length) fail(`static tree: node ${parent} has ${list.length} candidates, rank ${rank} needed`);
    tree.tokens[i] = list[rank];
    tree.parents[i] = parent;
    tree.depth[i] = depth;
  }
  checkTree(tree); // top-k ids are distinct, so siblings never repeat a token
  return tree;
}

/** A node's children drawn by sampling: tokens in draw order, and the distribution they were drawn from. */
export interface DrawnChildren {
  ids: Int32Array;
  q: Float32Array;
}

/**
 * Fills a plan with drawn children (sampled drafting): a node's j-th child in rank order takes its j-th
 * draw, so ranks only order siblings; plan nodes without a draw (the draft's support ran out before the
 * plan's fan-out) are left out with their subtrees. The tree keeps plan order (parents first, siblings in
 * draw order) and carries each node's proposal.
 */
export function instantiateDrawn(plan: StaticTreePlan, root: number, drawn: Map<number, DrawnChildren>): DraftTree {
  const index = new Int32Array(plan.nodes.length).fill(-1); // plan node -> tree node, -1 if left out
  const kept: number[] = [];
  plan.nodes.forEach((node, n) => {
    const got = n === 0 ? null : drawn.get(node.parent);
    if (n > 0 && !(index[node.parent] >= 0 && got && plan.place[n] < got.ids.length)) return;
    index[n] = kept.length;
    kept.push(n);
  });
  const m = kept.length;
  const tree: DraftTree = { tokens: new Int32Array(m), parents: new Int32Array(m), depth: new Int32Array(m), proposal: new Array(m).fill(null) };
  kept.forEach((n, i) => {
    const { parent, depth } = plan.nodes[n];
    tree.tokens[i] = i === 0 ? root : drawn.get(parent)!.ids[plan.place[n]];
    tree.parents[i] = i === 0 ? -1 : index[parent];
    tree.depth[i] = depth;
    if (plan.children[n].length > 0 && drawn.has(n)) tree.proposal![i] = drawn.get(n)!.q;
  });
  checkTree(tree); // draws without replacement never repeat a sibling's token
  return tree;
}

/** The first maxNodes nodes of a plan (root included): plan order keeps every parent before its children. */
export function truncatePlan(plan: StaticTreePlan, maxNodes: number): StaticTreePlan {
  if (!Number.isInteger(maxNodes) || maxNodes < 1) fail(`truncatePlan: maxNodes ${maxNodes} must be an integer >= 1`);
  if (maxNodes >= plan.nodes.length) return plan;
  return layout(plan.nodes.slice(0, maxNodes));
}
