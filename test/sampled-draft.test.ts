// EAGLE-1's sampled drafting (the official v1 at T > 0), piece by piece: drawing children without
// replacement, the tree that carries what they were drawn from, and verification against r / q_j.
import { describe, expect, test } from "bun:test";
import { StaticTreeBuilder } from "../src/decoding/eagle1.ts";
import { runDrafts } from "../src/decoding/proposer.ts";
import { drawDistinct, targetDistribution } from "../src/decoding/sampling.ts";
import { EAGLE1_DEFAULT_CHOICES, instantiateDrawn, planStaticTree } from "../src/decoding/static-tree.ts";
import { childrenOf, type DraftTree } from "../src/decoding/tree.ts";
import { verifySampled } from "../src/decoding/verify.ts";
import { Rng } from "../src/util/rng.ts";
import { FakeDraft, hashWorld } from "./support/fake-world.ts";
import { script } from "./support/draws.ts";


describe("drawDistinct", () => {
  test("draws from what is left, renormalised, one draw each", () => {
    // [.5 .25 .25 0]: u = 0.6 -> token 1; then [.5 0 .25 0] of 0.75: u = 0.5 -> 0.375 falls in token 0;
    // then only token 2 is left
    const s = script([0.6, 0.5, 0.9]);
    expect(Array.from(drawDistinct(Float32Array.of(0.5, 0.25, 0.25, 0), 3, s.draw))).toEqual([1, 0, 2]);
    expect(s.left()).toBe(0);
  });

  test("stops when the support runs out", () => {
    const s = script([0.1, 0.1, 0.1]);
    expect(Array.from(drawDistinct(Float32Array.of(0, 0.5, 0, 0.5), 4, s.draw))).toEqual([1, 3]);
    expect(s.left()).toBe(1);
  });
});

describe("verifySampled with drawn children", () => {
  // vocabulary 0..3. root (token 0) ─┬─ node 1 (token 1)
  //                                  └─ node 2 (token 2), drawn in that order from q at the root
  // target p at the root [.1 .3 .4 .2]; q = [0 .5 .3 .2]
  const q = Float32Array.of(0, 0.5, 0.3, 0.2);
  const tree: DraftTree = {
    tokens: Int32Array.of(0, 1, 2), parents: Int32Array.of(-1, 0, 0), depth: Int32Array.of(0, 1, 1), proposal: [q, null, null],
  };
  const rows: Record<number, number[]> = { 0: [0.1, 0.3, 0.4, 0.2], 1: [0.25, 0.25, 0.25, 0.25], 2: [0, 0, 0, 1] };
  const run = (draws: number[]) => {
    const s = script(draws);
    const verdict = verifySampled(tree, (n) => Float32Array.from(rows[n]), s.draw);
    expect(s.left()).toBe(0);
    return verdict;
  };

  test("the first child is accepted with r(x) / q(x)", () => {
    // 0.3 / 0.5 = 0.6; node 1 is a leaf: the bonus from its own row, u = 0.3 -> token 1
    expect(run([0.59, 0.3])).toEqual({ path: [0, 1], bonus: 1 });
  });

  test("after a rejection: r <- norm(max(r - q, 0)), and q_j drops the siblings drawn before", () => {
    // r' = max([.1 .3 .4 .2] - [0 .5 .3 .2], 0) = [.1 0 .1 0] -> [.5 0 .5 0]; q_2 = [0 0 .6 .4] (q less
    // token 1): token 2 accepted iff u < 0.5 / 0.6 = 0.833 (with the whole q it would be 0.5 / 0.3 > 1)
    expect(run([0.61, 0.83, 0.5])).toEqual({ path: [0, 2], bonus: 3 });
    // rejected: r'' = max([.5 0 .5 0] - [0 0 .6 .4], 0) = [.5 0 0 0]: the bonus can only be token 0
    expect(run([0.61, 0.84, 0.99])).toEqual({ path: [0], bonus: 0 });
  });

  test("a drawn child that its distribution could not have drawn is refused", () => {
    const bad: DraftTree = { ...tree, tokens: Int32Array.of(0, 1, 0) }; // q(0) = 0
    expect(() => verifySampled(bad, (n) => Float32Array.from(rows[n]), script([0.9, 0.9]).draw))
      .toThrow("node 2 (token 0) has probability 0 under the distribution it was drawn from");
  });
});

describe("EAGLE-1's builder at T > 0", () => {
  const world = hashWorld(5, { scale: 1.8, copy: 0.5 });
  const plan = planStaticTree(EAGLE1_DEFAULT_CHOICES);
  const context = [3, 1, 4];
  const build = (sampling = { temperature: 1, topK: 0, topP: 1 }, seed = 7) =>
    runDrafts(new StaticTreeBuilder(plan).build(new FakeDraft(world, context), 4, 64, { sampling, rng: new Rng(seed) }));

  test("children are distinct draws, each node carrying the processed draft row they came from", () => {
    const tree = build();
    expect(tree.tokens.length).toBe(plan.nodes.length); // 5 tokens: every node has enough support
    const kids = childrenOf(tree);
    tree.proposal!.forEach((q, n) => {
      expect(q !== null).toBe(kids[n].length > 0);
      if (q) expect(new Set(Array.from(kids[n], (c) => tree.tokens[c])).size).toBe(kids[n].length);
    });
    // the root's proposal is the draft's row after the context, processed as the target's would be
    expect(Array.from(tree.proposal![0]!)).toEqual(Array.from(targetDistribution(world.draft(context), { temperature: 1, topK: 0, topP: 1 })));
    expect(build()).toEqual(tree); // the run's rng decides: the same seed, the same tree
    expect(Array.from(build(undefined, 8).tokens)).not.toEqual(Array.from(tree.tokens));
  });

  test("a support smaller than the plan's fan-out drops the children it cannot draw, and their subtrees", () => {
    const tree = build({ temperature: 1, topK: 2, topP: 1 });
    const kids = childrenOf(tree);
    expect(Math.max(...kids.map((k) => k.length))).toBe(2); // the plan asks up to 4
    expect(tree.tokens.length).toBeLessThan(plan.nodes.length);
    expect(Math.max(...tree.depth)).toBe(5); // the first-ranked spine is drawn all the way down
  });

  test("greedy, or no draws given: the top-k tree, no proposals", () => {
    const draft = new FakeDraft(world, context);
    const greedy = runDrafts(new StaticTreeBuilder(plan).build(draft, 4, 64, { sampling: { temperature: 0, topK: 0, topP: 1 }, rng: new Rng(1) }));
    expect(greedy.proposal).toBeUndefined();
    expect(runDrafts(new StaticTreeBuilder(plan).build(new FakeDraft(world, context), 4, 64))).toEqual(greedy);
  });

  test("instantiateDrawn keeps plan order and maps parents", () => {
    // plan: root, [0], [1], [0,0], [1,0]; the root drew one child only, so [1] and [1,0] go
    const small = planStaticTree([[0], [1], [0, 0], [1, 0]]);
    const q = Float32Array.of(0, 1, 0, 0);
    const tree = instantiateDrawn(small, 9, new Map([[0, { ids: Int32Array.of(1), q }], [1, { ids: Int32Array.of(2), q: Float32Array.of(0, 0, 1, 0) }]]));
    expect(Array.from(tree.tokens)).toEqual([9, 1, 2]);
    expect(Array.from(tree.parents)).toEqual([-1, 0, 1]);
    expect(Array.from(tree.depth)).toEqual([0, 1, 2]);
    expect(tree.proposal!.map((p) => (p ? Array.from(p) : null))).toEqual([[0, 1, 0, 0], [0, 0, 1, 0], null]);
  });
});
