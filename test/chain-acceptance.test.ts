// the draft's first choices, counted down a verified tree, and what a chain of them is expected to yield
import { expect, test } from "bun:test";
import { CHAIN_DEPTHS, chainRates, chainTokens, countChain, emptyChainCounts } from "../src/decoding/chain-acceptance.ts";
import type { DraftTree } from "../src/decoding/tree.ts";

// root 0; its children 1 (first choice), 2; 1's children 3 (first), 4; 3's child 5; 2's child 6
const TREE: DraftTree = {
  tokens: Int32Array.from([9, 10, 11, 12, 13, 14, 15]),
  parents: Int32Array.from([-1, 0, 0, 1, 1, 3, 2]),
  depth: Int32Array.from([0, 1, 1, 2, 2, 3, 2]),
};

test("countChain follows the first child of each accepted node, counting where the chain's child was drafted", () => {
  const c = emptyChainCounts();
  const asked: string[] = [];
  // the target's probability of `token` after `node`: node / 8, the pairs asked recorded
  const probability = (node: number, token: number) => (asked.push(`${node}:${token}`), node / 8 + 0.125);
  countChain(c, TREE, [0, 1, 3, 5], probability); // the whole chain accepted; 5 has no child: nothing seen at depth 4
  expect(c.seen.slice(0, 4)).toEqual([1, 1, 1, 0]);
  expect(c.accepted.slice(0, 4)).toEqual([1, 1, 1, 0]);
  expect(asked).toEqual(["0:10", "1:12", "3:14"]); // each parent's row, its first child's token
  expect(c.sampled.slice(0, 4)).toEqual([0.125, 0.25, 0.5, 0]);
  countChain(c, TREE, [0, 1, 4], probability); // 3, the first child of 1, rejected: depth 3 not reached
  expect(c.seen.slice(0, 4)).toEqual([2, 2, 1, 0]);
  expect(c.accepted.slice(0, 4)).toEqual([2, 1, 1, 0]);
  expect(c.sampled.slice(0, 4)).toEqual([0.25, 0.5, 0.5, 0]);
  countChain(c, TREE, [0, 2, 6], probability); // the first choice at the root rejected (its sibling accepted: not the chain)
  expect(c.seen.slice(0, 4)).toEqual([3, 2, 1, 0]);
  expect(c.accepted.slice(0, 4)).toEqual([2, 1, 1, 0]);
  countChain(c, { tokens: Int32Array.of(9), parents: Int32Array.of(-1), depth: Int32Array.of(0) }, [0], probability); // a plain round
  expect(c.seen[0]).toBe(3);
  expect(c.seen.length).toBe(CHAIN_DEPTHS);
});

test("chainRates: (accepted + 1/2) / (seen + 1) by depth, a depth seen too seldom taking the one above's; none without a first depth", () => {
  const c = emptyChainCounts();
  c.seen[0] = 7;
  c.accepted[0] = 7;
  expect(chainRates(c, false)).toBeNull(); // 7 rounds say too little
  c.seen.splice(0, 3, 19, 15, 3);
  c.accepted.splice(0, 3, 15, 9, 3);
  c.sampled.splice(0, 3, 11.5, 6, 2);
  const r = chainRates(c, false)!;
  expect(r.length).toBe(CHAIN_DEPTHS);
  expect(r[0]).toBeCloseTo(15.5 / 20, 12);
  expect(r[1]).toBeCloseTo(9.5 / 16, 12);
  for (let d = 2; d < CHAIN_DEPTHS; d++) expect(r[d]).toBe(r[1]);
  // a sampled run's: the summed probabilities in place of the greedy hits
  const s = chainRates(c, true)!;
  expect(s[0]).toBeCloseTo(12 / 20, 12);
  expect(s[1]).toBeCloseTo(6.5 / 16, 12);
  expect(s[7]).toBe(s[1]);
});

test("chainTokens: the bonus plus each first choice's chance of being reached and accepted", () => {
  expect(chainTokens([0.8, 0.5], 0)).toBe(1);
  expect(chainTokens([0.8, 0.5], 1)).toBeCloseTo(1.8, 12);
  expect(chainTokens([0.8, 0.5], 2)).toBeCloseTo(2.2, 12);
  expect(chainTokens([0.8, 0.5], 3)).toBeCloseTo(2.4, 12); // past the rates: the last one's
  expect(chainTokens([1, 1], 5)).toBe(6); // a draft that is always right
});
