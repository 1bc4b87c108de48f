import { describe, expect, test } from "bun:test";
import { chainTree, type DraftTree } from "../src/decoding/tree.ts";
import { sampleFrom } from "../src/decoding/sampling.ts";
import { verifyGreedy, verifyMatched, verifySampled } from "../src/decoding/verify.ts";
import { script } from "./support/draws.ts";

const tree = (tokens: number[], parents: number[], depth: number[]): DraftTree => ({
  tokens: Int32Array.from(tokens), parents: Int32Array.from(parents), depth: Int32Array.from(depth),
});

// 0 ─┬─ 1 ─┬─ 3 ── 6      tokens: node k holds 10 + k
//    │     └─ 4
//    └─ 2 ── 5
const sample = tree([10, 11, 12, 13, 14, 15, 16], [-1, 0, 0, 1, 1, 2, 3], [0, 1, 1, 2, 2, 2, 3]);

describe("verifyGreedy", () => {
  const argmax = (xs: number[]) => Int32Array.from(xs);

  test("accepts down to a leaf, bonus from the leaf", () => {
    // argmax after 0 is 11 (node 1), after 1 is 13 (node 3), after 3 is 16 (node 6), after 6 is 42
    expect(verifyGreedy(sample, argmax([11, 13, 0, 16, 0, 0, 42]))).toEqual({ path: [0, 1, 3, 6], bonus: 42 });
  });

  test("stops where the target disagrees", () => {
    // node 2 accepted; after 2 the target wants 99, not node 5's 15
    expect(verifyGreedy(sample, argmax([12, 0, 99, 0, 0, 0, 0]))).toEqual({ path: [0, 2], bonus: 99 });
    // nothing accepted: the bonus is the target's own next token
    expect(verifyGreedy(sample, argmax([7, 13, 15, 16, 0, 0, 0]))).toEqual({ path: [0], bonus: 7 });
  });

  test("chooses among siblings", () => {
    // after 1 the target wants 14: the second child, node 4, a leaf
    expect(verifyGreedy(sample, argmax([11, 14, 0, 0, 3, 0, 0]))).toEqual({ path: [0, 1, 4], bonus: 3 });
  });

  test("plain decoding is the 1-node tree", () => {
    expect(verifyGreedy(chainTree([5]), argmax([8]))).toEqual({ path: [0], bonus: 8 });
    expect(() => verifyGreedy(sample, argmax([1, 2]))).toThrow("2 argmax rows for a tree of 7 nodes");
  });
});


describe("verifySampled", () => {
  // vocabulary 0..4. node 0 (token 0) ─┬─ node 1 (token 1) ── node 3 (token 3)
  //                                    └─ node 2 (token 2)
  // probabilities are dyadic so float32 holds them exactly
  const small = tree([0, 1, 2, 3], [-1, 0, 0, 1], [0, 1, 1, 2]);
  const rows: Record<number, number[]> = {
    0: [0.125, 0.375, 0.25, 0.25, 0],
    1: [0.25, 0.25, 0, 0.5, 0],
    2: [0.5, 0, 0, 0.5, 0],
    3: [0.25, 0.25, 0.25, 0.25, 0],
  };
  // the rows handed to the verifier, kept to see what it did to them
  function run(draws: number[]) {
    const given: Record<number, Float32Array> = {};
    const s = script(draws);
    const verdict = verifySampled(small, (n) => (given[n] = Float32Array.from(rows[n])), s.draw);
    expect(s.left()).toBe(0);
    return { verdict, given };
  }

  test("accepts the first sibling with probability p(x)", () => {
    // node 1 (token 1): accept iff u < 0.375. then node 3 (token 3): 0.6 >= 0.5 rejects;
    // bonus from [0.25, 0.25, 0, 0, 0] at u = 0.6: mass 0.3 of 0.5 falls in token 1
    expect(run([0.374, 0.6, 0.6]).verdict).toEqual({ path: [0, 1], bonus: 1 });
  });

  test("after a rejection, the next sibling is tested against the renormalised residual", () => {
    // u = 0.375 rejects token 1 (threshold 0.375); residual [0.125, 0, 0.25, 0.25, 0] / 0.625,
    // so token 2 (node 2) is accepted iff u < 0.25 / 0.625 = 0.4. node 2 is a leaf: bonus from its
    // full row [0.5, 0, 0, 0.5, 0], u = 0.7 -> token 3
    expect(run([0.375, 0.39999, 0.7]).verdict).toEqual({ path: [0, 2], bonus: 3 });
    expect(run([0.375, 0.4, 0.7]).verdict.path).toEqual([0]);
  });

  test("all siblings rejected: bonus from the residual with the tried tokens zeroed", () => {
    // residual [0.125, 0, 0, 0.25, 0]: token 0 iff u < 1/3, else token 3; 1 and 2 are gone
    const low = run([0.375, 0.4, 0.33]);
    expect(low.verdict).toEqual({ path: [0], bonus: 0 });
    expect(Array.from(low.given[0])).toEqual([0.125, 0, 0, 0.25, 0]);
    expect(run([0.375, 0.4, 0.34]).verdict).toEqual({ path: [0], bonus: 3 });
    expect(run([0.9, 0.9, 0.999]).verdict).toEqual({ path: [0], bonus: 3 });
  });

  test("leaf reached: bonus from the leaf's full distribution", () => {
    // node 1 at u = 0.1, node 3 at u = 0.49 < 0.5; node 3 is a leaf, u = 0.8 of [.25 .25 .25 .25 0] -> token 3
    const { verdict, given } = run([0.1, 0.49, 0.8]);
    expect(verdict).toEqual({ path: [0, 1, 3], bonus: 3 });
    expect(Object.keys(given)).toEqual(["0", "1", "3"]); // one row per accepted node
    expect(Array.from(given[3])).toEqual(rows[3]);
    expect(run([0.1, 0.49, 0.2]).verdict.bonus).toBe(0);
  });

  test("a zero-probability draft token is never accepted", () => {
    const s = script([0, 0.4]);
    const verdict = verifySampled(chainTree([0, 4]), () => Float32Array.from(rows[0]), s.draw);
    expect(verdict).toEqual({ path: [0], bonus: 1 }); // u = 0.4 of [.125 .375 .25 .25 0] -> token 1
  });

  test("rejects bad rows", () => {
    const s = script([0.5, 0.5]);
    expect(() => verifySampled(chainTree([0, 1]), () => new Float32Array(5), s.draw)).toThrow("node 0 has a distribution of total mass 0");
    expect(() => verifySampled(chainTree([0, 7]), () => Float32Array.from(rows[0]), s.draw)).toThrow("node 1 has token 7, outside a vocabulary of 5");
    expect(() => verifySampled(chainTree([0]), () => Float32Array.from([0.5, -0.1]), s.draw)).toThrow("probability -0.1");
  });
});

describe("verifyMatched", () => {
  // the tree of verifySampled's tests: node 0 (token 0) ─┬─ node 1 (token 1) ── node 3 (token 3)
  //                                                      └─ node 2 (token 2)
  const small = tree([0, 1, 2, 3], [-1, 0, 0, 1], [0, 1, 1, 2]);
  const rows: Record<number, number[]> = {
    0: [0.125, 0.375, 0.25, 0.25, 0], // cumulative 0.125, 0.5, 0.75, 1
    1: [0.25, 0.25, 0, 0.5, 0],       // 0.25, 0.5, 0.5, 1
    2: [0.5, 0, 0, 0.5, 0],
    3: [0.25, 0.25, 0.25, 0.25, 0],
  };
  // the draws by depth, and the nodes whose rows were read
  function run(byDepth: number[]) {
    const read: number[] = [];
    const asked: number[] = [];
    const verdict = verifyMatched(small, (n, u) => (read.push(n), sampleFrom(Float32Array.from(rows[n]), u)), (d) => (asked.push(d), byDepth[d]));
    return { verdict, read, asked };
  }

  test("the target's own draw at each accepted node: a child carrying it is accepted, else it is the bonus", () => {
    // 0.3 at the root draws token 1 (node 1), 0.6 under node 1 draws token 3 (node 3), 0.9 at the leaf draws 3
    expect(run([0.3, 0.6, 0.9])).toEqual({ verdict: { path: [0, 1, 3], bonus: 3 }, read: [0, 1, 3], asked: [0, 1, 2] });
    // 0.6 at the root draws token 2 (node 2, a leaf): its own row gives the bonus, 0.2 -> token 0
    expect(run([0.6, 0.2]).verdict).toEqual({ path: [0, 2], bonus: 0 });
    // 0.05 at the root draws token 0, which no child carries: the bonus, nothing accepted
    expect(run([0.05]).verdict).toEqual({ path: [0], bonus: 0 });
    // under node 1, 0.3 draws token 1, not its child's 3
    expect(run([0.3, 0.3]).verdict).toEqual({ path: [0, 1], bonus: 1 });
  });

  test("plain decoding is the 1-node tree: one draw from the root's row", () => {
    expect(verifyMatched(chainTree([5]), (_, u) => sampleFrom(Float32Array.from(rows[0]), u), () => 0.7)).toEqual({ path: [0], bonus: 2 });
  });

  test("a tree of drawn children is refused: its rule is verifySampled's", () => {
    const drawn = { ...small, proposal: [Float32Array.from(rows[0]), Float32Array.from(rows[1]), null, null] };
    expect(() => verifyMatched(drawn, (n, u) => sampleFrom(Float32Array.from(rows[n]), u), () => 0.5)).toThrow("verifySampled");
  });
});
