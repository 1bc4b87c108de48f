import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EagleError } from "../src/util/errors.ts";
import { rerankTree, selectFrontier, type Candidate } from "../src/decoding/dynamic-tree.ts";
import {
  EAGLE1_DEFAULT_CHOICES, instantiate, planStaticTree, readTreeFile, truncatePlan, type StaticTreePlan,
} from "../src/decoding/static-tree.ts";
import { chainTree, checkTree, childrenOf, pathTo, treeMask, type DraftTree } from "../src/decoding/tree.ts";

const tree = (tokens: number[], parents: number[], depth: number[]): DraftTree => ({
  tokens: Int32Array.from(tokens), parents: Int32Array.from(parents), depth: Int32Array.from(depth),
});
const list = (a: ArrayLike<number>) => Array.from(a);

// 0 ─┬─ 1 ─┬─ 3 ── 6
//    │     └─ 4
//    └─ 2 ── 5
const sample = tree([10, 11, 12, 13, 14, 15, 16], [-1, 0, 0, 1, 1, 2, 3], [0, 1, 1, 2, 2, 2, 3]);

describe("tree", () => {
  test("mask rows hold the node and its ancestors", () => {
    expect(Array.from({ length: 7 }, (_, r) => list(treeMask(sample).subarray(r * 7, r * 7 + 7)).join(""))).toEqual([
      "1000000", // node 0: root
      "1100000", // node 1: parent 0, depth 1
      "1010000", // node 2: parent 0, depth 1
      "1101000", // node 3: parent 1, depth 2
      "1100100", // node 4: parent 1, depth 2
      "1010010", // node 5: parent 2, depth 2
      "1101001", // node 6: parent 3, depth 3
    ]);
  });

  test("children and paths", () => {
    expect(childrenOf(sample).map(list)).toEqual([[1, 2], [3, 4], [5], [6], [], [], []]);
    expect(pathTo(sample, 6)).toEqual([0, 1, 3, 6]);
    expect(pathTo(sample, 5)).toEqual([0, 2, 5]);
    expect(pathTo(sample, 0)).toEqual([0]);
    expect(() => pathTo(sample, 7)).toThrow("node 7 is outside a tree of 7 nodes");
  });

  test("chains", () => {
    const chain = chainTree([4, 5, 6]); // 0 -> 1 -> 2
    expect([list(chain.parents), list(chain.depth)]).toEqual([[-1, 0, 1], [0, 1, 2]]);
    expect(list(treeMask(chain))).toEqual([1, 0, 0, 1, 1, 0, 1, 1, 1]); // causal
    expect(list(chainTree([9]).tokens)).toEqual([9]);
    expect(() => chainTree([])).toThrow("root is required");
  });

  test("checkTree rejects malformed trees", () => {
    checkTree(sample);
    expect(() => checkTree(tree([1, 2], [-1], [0, 1]))).toThrow("2 tokens but 1 parents");
    expect(() => checkTree(tree([1, 2], [0, 0], [0, 1]))).toThrow("root parent is 0");
    expect(() => checkTree(tree([1, 2, 3], [-1, 2, 0], [0, 1, 1]))).toThrow("node 1 has parent 2");
    expect(() => checkTree(tree([1, 2, 3], [-1, 0, 1], [0, 1, 1]))).toThrow("node 2 has depth 1, expected 2");
    expect(() => checkTree(tree([1, 2, 2], [-1, 0, 0], [0, 1, 1]))).toThrow("node 2 repeats token 2");
  });
});

// a plan node's path of ranks, for readable expectations
function pathOf(plan: StaticTreePlan, node: number): number[] {
  const path: number[] = [];
  for (let i = node; i > 0; i = plan.nodes[i].parent) path.unshift(plan.nodes[i].rank);
  return path;
}

describe("static tree", () => {
  const plan = planStaticTree(EAGLE1_DEFAULT_CHOICES);

  test("the default EAGLE-1 tree has the documented shape", () => {
    expect(EAGLE1_DEFAULT_CHOICES.length).toBe(25);
    expect(plan.nodes.length).toBe(26);
    expect(plan.levels.map((l) => l.length)).toEqual([1, 4, 8, 8, 3, 2]); // root, then 4/8/8/3/2
    expect(plan.expand.map((l) => l.length)).toEqual([1, 4, 4, 1, 1]);
    expect([plan.topK, plan.maxDepth]).toEqual([4, 5]);
    const children = new Map<string, number>();
    for (const n of plan.nodes.slice(1)) {
      const key = JSON.stringify(pathOf(plan, n.parent));
      children.set(key, (children.get(key) ?? 0) + 1);
    }
    expect(Object.fromEntries(children)).toEqual({
      "[]": 4, "[0]": 3, "[1]": 2, "[2]": 2, "[3]": 1, "[0,0]": 3, "[0,1]": 2, "[0,2]": 2, "[1,0]": 1,
      "[0,0,0]": 3, "[0,0,0,0]": 2,
    });
    // node 5 is [0,0]: parent 1, rank 0, depth 2; node 13 is [0,0,0]; node 21 is [0,0,0,0]
    expect(plan.nodes[5]).toEqual({ parent: 1, rank: 0, depth: 2 });
    expect(plan.expand).toEqual([[0], [1, 2, 3, 4], [5, 6, 7, 8], [13], [21]]);
    expect(plan.nodes.slice(1).map((_, i) => pathOf(plan, i + 1))).toEqual(EAGLE1_DEFAULT_CHOICES);
  });

  test("input order does not matter", () => {
    expect(planStaticTree([...EAGLE1_DEFAULT_CHOICES].reverse())).toEqual(plan);
  });

  test("malformed choices are rejected, naming the path", () => {
    const bad = (choices: unknown) => () => planStaticTree(choices as number[][]);
    expect(bad([])).toThrow("list of paths is empty");
    expect(bad([[0], []])).toThrow("path [] must be a non-empty array");
    expect(bad([[0], [-1]])).toThrow("path [-1] has rank -1");
    expect(bad([[0.5]])).toThrow("path [0.5] has rank 0.5");
    expect(bad([[64]])).toThrow("path [64] has rank 64");
    expect(bad([["0"]])).toThrow('path ["0"] has rank "0"');
    expect(bad([[0], [0, 0], [0, 0]])).toThrow("path [0,0] appears twice");
    expect(bad([[0], [0, 1, 0]])).toThrow("path [0,1,0] lacks its prefix [0,1]");
    expect(bad([Array(17).fill(0)])).toThrow(`path ${JSON.stringify(Array(17).fill(0))} is deeper than 16`);
    const many = [...Array(64).keys()].map((r) => [r]);
    for (let a = 0; a < 3; a++) for (let r = 0; r < 64; r++) many.push([a, r]);
    expect(bad(many)).toThrow("path [2,63] makes more than 256 nodes");
    expect(planStaticTree(many.slice(0, 255)).nodes.length).toBe(256);
  });

  test("tree files", () => {
    const dir = mkdtempSync(join(tmpdir(), "eagle-tree-"));
    const file = (name: string, text: string) => (writeFileSync(join(dir, name), text), join(dir, name));
    expect(readTreeFile(file("ok.json", "[[0],[1],[0,0]]"))).toEqual([[0], [1], [0, 0]]);
    expect(() => readTreeFile(join(dir, "missing.json"))).toThrow(`${join(dir, "missing.json")}: tree file not found`);
    expect(() => readTreeFile(file("bad.json", "[[0],"))).toThrow(`${join(dir, "bad.json")}: not valid JSON`);
    expect(() => readTreeFile(file("obj.json", '{"a":1}'))).toThrow(`${join(dir, "obj.json")}: expected a JSON array`);
    expect(() => readTreeFile(file("gap.json", "[[0],[1,0]]"))).toThrow(`${join(dir, "gap.json")}: tree choices: path [1,0] lacks`);
  });

  test("a tree given inline: a value starting with [ is JSON, anything else a file", () => {
    expect(readTreeFile("[[0],[1],[0,0]]")).toEqual([[0], [1], [0, 0]]);
    expect(readTreeFile("  [[0], [1]]\n")).toEqual([[0], [1]]);
    expect(() => readTreeFile("[[0],[1,0]]")).toThrow("--tree [[0],[1,0]]: tree choices: path [1,0] lacks its prefix [1]");
    expect(() => readTreeFile("[[0],")).toThrow("--tree [[0],: not valid JSON");
    expect(() => readTreeFile("[]")).toThrow("--tree []: tree choices: the list of paths is empty");
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as EagleError).exitCode;
      }
      return 0;
    };
    expect(code(() => readTreeFile("[[0],"))).toBe(2); // a bad flag value
  });

  test("instantiate takes each node's token from its parent's ranked candidates", () => {
    // nodes: 0 root, 1 [0], 2 [1], 3 [0,0], 4 [0,1], 5 [1,0]
    const small = planStaticTree([[0], [1], [0, 0], [0, 1], [1, 0]]);
    const ranked: Record<number, number[]> = { 0: [7, 8], 1: [3, 4], 2: [5, 9] };
    const asked: number[] = [];
    const t = instantiate(small, 1, (node) => (asked.push(node), Int32Array.from(ranked[node])));
    expect(asked).toEqual([0, 1, 2]);
    expect(list(t.tokens)).toEqual([1, 7, 8, 3, 4, 5]);
    expect(list(t.parents)).toEqual([-1, 0, 0, 1, 1, 2]);
    expect(list(t.depth)).toEqual([0, 1, 1, 2, 2, 2]);
    expect(() => instantiate(small, 1, () => Int32Array.from([7]))).toThrow("node 0 has 1 candidates, rank 1 needed");
    expect(() => instantiate(small, 1, () => Int32Array.from([7, 7]))).toThrow("repeats token 7");
  });

  test("truncatePlan keeps a valid prefix of the tree", () => {
    const cut = truncatePlan(plan, 10); // root, 4 at depth 1, [0,0] [0,1] [0,2] [1,0] [1,1]
    expect(cut.levels).toEqual([[0], [1, 2, 3, 4], [5, 6, 7, 8, 9]]);
    expect(cut.expand).toEqual([[0], [1, 2]]);
    expect([cut.topK, cut.maxDepth]).toEqual([4, 2]);
    checkTree(instantiate(cut, 0, () => Int32Array.from([1, 2, 3, 4])));
    const root = truncatePlan(plan, 1);
    expect([root.levels, root.expand, root.topK, root.maxDepth]).toEqual([[[0]], [], 0, 0]);
    expect(list(instantiate(root, 9, () => new Int32Array()).tokens)).toEqual([9]);
    expect(truncatePlan(planStaticTree([[0], [1], [0, 0]]), 2).topK).toBe(1);
    expect(truncatePlan(plan, 99)).toBe(plan);
    expect(() => truncatePlan(plan, 0)).toThrow("maxNodes 0 must be an integer >= 1");
  });
});

describe("dynamic tree", () => {
  const c = (token: number, parent: number, logp: number, depth: number): Candidate => ({ token, parent, logp, depth });
  // two levels of K = 2 children under the expanded candidates; ties on purpose:
  // c2 = c0 (child with probability 1), c6 = c2 = c0, c7 = c1 at different depths
  const candidates = [
    c(5, -1, -0.1, 1), c(6, -1, -2.0, 1), // c0, c1
    c(7, 0, -0.1, 2), c(8, 0, -1.5, 2), c(9, 1, -2.3, 2), c(7, 1, -3.0, 2), // c2..c5
    c(1, 2, -0.1, 3), c(2, 2, -2.0, 3), c(3, 3, -1.6, 3), c(4, 3, -4.0, 3), // c6..c9
  ];

  test("keeps the best by value, shallower first on ties, in candidate order", () => {
    // ranking: c0 c2 c6 (-0.1) c3 (-1.5) c8 (-1.6) c1 c7 (-2.0) c4 c5 c9
    const five = rerankTree(99, candidates, 5); // c0 c2 c3 c6 c8
    expect(list(five.tokens)).toEqual([99, 5, 7, 8, 1, 3]);
    expect(list(five.parents)).toEqual([-1, 0, 1, 1, 2, 3]); // c6 under c2 = node 2, c8 under c3 = node 3
    expect(list(five.depth)).toEqual([0, 1, 2, 2, 3, 3]);
    const six = rerankTree(99, candidates, 6); // + c1, which beats c7 on depth
    expect(list(six.tokens)).toEqual([99, 5, 6, 7, 8, 1, 3]);
    expect(list(six.parents)).toEqual([-1, 0, 0, 1, 1, 3, 4]);
    const seven = rerankTree(99, candidates, 7); // + c7, node 6 under c2 = node 3
    expect(list(seven.parents)).toEqual([-1, 0, 0, 1, 1, 3, 3, 4]);
    expect(list(rerankTree(99, candidates, 0).tokens)).toEqual([99]);
    expect(rerankTree(99, candidates, 50).tokens.length).toBe(11);
  });

  test("depth beats index on ties when the builder did not go level by level", () => {
    // c1 (depth 2) and c2 (depth 1) tie at -2: c2 is kept
    const mixed = [c(4, -1, -1, 1), c(5, 0, -2, 2), c(6, -1, -2, 1)];
    expect(list(rerankTree(0, mixed, 2).tokens)).toEqual([0, 4, 6]);
    expect(list(rerankTree(0, mixed, 2).parents)).toEqual([-1, 0, 0]);
  });

  test("rejects candidates that cannot form a tree", () => {
    const rising = [c(1, -1, -1, 1), c(2, 0, -0.5, 2), c(3, -1, -0.8, 1)];
    expect(() => rerankTree(0, rising, 1)).toThrow("candidate 1 is kept but its parent 0 is not");
    expect(() => rerankTree(0, [c(1, 0, -1, 1)], 1)).toThrow("candidate 0 has parent 0");
    expect(() => rerankTree(0, [c(1, -1, -1, 2)], 1)).toThrow("candidate 0 has depth 2, expected 1");
    expect(() => rerankTree(0, [c(1, -1, NaN, 1)], 1)).toThrow("candidate 0 has logp NaN");
  });

  test("selectFrontier: largest first, lower index on ties", () => {
    const scores = [0.5, 0.9, 0.5, -Infinity, 0.9];
    expect(selectFrontier(scores, 3)).toEqual([1, 4, 0]);
    expect(selectFrontier(Float64Array.from(scores), 5)).toEqual([1, 4, 0, 2, 3]);
    expect(selectFrontier(scores, 0)).toEqual([]);
    expect(() => selectFrontier(scores, 6)).toThrow("k 6 must be an integer in [0, 5]");
  });
});
