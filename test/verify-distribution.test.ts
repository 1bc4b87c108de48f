// the law of whole rounds in pure TypeScript, over many sampling settings: a fake target and a fake draft
// over 5 tokens (hash functions of the context, test/support/fake-world.ts) drive the real tree builders
// (EAGLE-1's default tree, its children sampled as the official v1 does at T > 0, or taken top-k; an
// EAGLE-2 tree) and the real verifier, round after round as decode does; the first 7 tokens must follow
// the target's processed law. The decode loop itself, on a real model, is tested for a few key settings
// in eagle-distribution.test.ts; here no forward is needed, so many settings are cheap.
//
// SAMPLES = 3000 sequences per test give 20 to 400 degrees of freedom by setting (a peaked law has few
// prefixes worth a table of their own). The smallest distortion the test must detect is that of the
// weakest wrong verifier below, a reused uniform under EAGLE-1's sampled children: noncentrality
// λ ≈ 300 at 340 dof (λ = E[statistic] - dof, see eagle-distribution.test.ts); the others measured 380 and
// up, or produce a token the target cannot. At 340 dof λ >= 227 (0.076 per sequence) is rejected at
// p < 1e-6 with power 0.99 (normal approximation of the noncentral chi-square), so the weakest is caught
// with power 0.99998. Seeds are fixed, so each verdict is the same on every machine; correct verifiers
// must pass at p > 0.001.
import { describe, expect, test } from "bun:test";
import { StaticTreeBuilder } from "../src/decoding/eagle1.ts";
import { DynamicTreeBuilder } from "../src/decoding/eagle2.ts";
import type { TreeBuilder } from "../src/decoding/eagle.ts";
import { argmax, type SamplingParams, targetDistribution } from "../src/decoding/sampling.ts";
import { EAGLE1_DEFAULT_CHOICES, planStaticTree } from "../src/decoding/static-tree.ts";
import { childrenOf } from "../src/decoding/tree.ts";
import { generate, hashWorld, type World } from "./support/fake-world.ts";
import { chiSquareTest, gammaQ, sequentialChiSquare } from "./support/stats.ts";
import { type Fault, faulty, oneCoinPerLevel, type RowVerifier, SAMPLED_DRAFT_FAULTS, verifyRows } from "./support/verifiers.ts";

const V = 5;
const PROMPT = [3, 1, 4];
const LENGTH = 7;
const SAMPLES = 3000;
const SEED = 1;
// sharp enough, and the draft right often enough (80% of contexts), that rounds reach the leaves
const world = hashWorld(V, { scale: 1.8, copy: 0.8 });

interface Drafting {
  name: string;
  build: () => TreeBuilder;
  sampled: boolean; // the builder gets the run's draws: EAGLE-1 then samples its children (v1), else top-k
}
const eagle1 = () => new StaticTreeBuilder(planStaticTree(EAGLE1_DEFAULT_CHOICES));
const EAGLE1: Drafting = { name: "EAGLE-1 default tree, children sampled (v1)", build: eagle1, sampled: true };
const EAGLE1_TOPK: Drafting = { name: "EAGLE-1 default tree, top-k children", build: eagle1, sampled: false };
const EAGLE2: Drafting = { name: "EAGLE-2 (3 x 4, 16 nodes)", build: () => new DynamicTreeBuilder({ topK: 3, depth: 4, totalTokens: 16 }), sampled: true };
const DRAFTINGS = [EAGLE1, EAGLE2];

const at = (temperature: number, topK = 0, topP = 1): SamplingParams => ({ temperature, topK, topP });

function sequencesOf(w: World, d: Drafting, verifier: RowVerifier, sampling: SamplingParams, samples = SAMPLES): number[][] {
  return generate(w, { build: d.build(), verifier, sampling, prompt: PROMPT, length: LENGTH, samples, seed: SEED, sampled: d.sampled });
}

function fitOf(w: World, d: Drafting, verifier: RowVerifier, sampling: SamplingParams) {
  return sequentialChiSquare(sequencesOf(w, d, verifier, sampling), (prefix) => targetDistribution(w.target([...PROMPT, ...prefix]), sampling));
}

describe("the chi-square tests", () => {
  test("p-values match tables", () => {
    // table 5% points, with scipy's chi2.sf there; dof 2 is exp(-x/2)
    const p = (x: number, dof: number) => gammaQ(dof / 2, x / 2);
    expect(p(3.841, 1)).toBeCloseTo(0.050013683763956804, 12);
    expect(p(18.307, 10)).toBeCloseTo(0.05000058909139812, 12);
    expect(p(43.773, 30)).toBeCloseTo(0.04999970778837308, 12);
    expect(p(7, 2)).toBeCloseTo(Math.exp(-3.5), 12);
    expect(p(100, 5) / 5.285148360943219e-20).toBeCloseTo(1, 8); // deep tail (scipy chi2.sf)
    // the two cells expecting 0.5 pool with the 12 (obs 0 + 1 + 10 = 11 vs 13); 18 and 30 stay
    const fit = chiSquareTest([10, 20, 30, 0, 1], [12, 18, 30, 0.5, 0.5]);
    expect(fit.dof).toBe(2);
    expect(fit.statistic).toBeCloseTo(4 / 13 + 4 / 18, 12);
    expect(chiSquareTest([1, 1], [2, 0]).pValue).toBe(0);
  });

  test("the sequential test adds one table per shared prefix", () => {
    // law: first token 0 or 1 evenly; after 0: [0.9, 0.1]; after 1: [0.2, 0.8]. 100 sequences, 10 of
    // them ended after one token (they count at position 0 only)
    const law = (prefix: number[]) => (prefix.length === 0 ? [0.5, 0.5] : prefix[0] === 0 ? [0.9, 0.1] : [0.2, 0.8]);
    const seqs = [
      ...Array.from({ length: 45 }, () => [0, 0]), ...Array.from({ length: 5 }, () => [0, 1]),
      ...Array.from({ length: 8 }, () => [1, 0]), ...Array.from({ length: 32 }, () => [1, 1]),
      ...Array.from({ length: 10 }, () => [1]),
    ];
    const fit = sequentialChiSquare(seqs, law);
    // position 0: 50/50 as expected; after 0: 45/5 as expected; after 1: 8/32 vs 8/32
    expect(fit.statistic).toBeCloseTo(0, 12);
    expect(fit.dof).toBe(3);
    const off = sequentialChiSquare([...seqs.slice(0, 50), ...Array.from({ length: 40 }, () => [1, 1]), ...seqs.slice(90)], law);
    // after 1: 0/40 vs 8/32 -> 64/8 + 64/32 = 10
    expect(off.byPosition[1].statistic).toBeCloseTo(10, 12);
    expect(off.contexts).toBe(3);
    expect(sequentialChiSquare([[0, 2]], () => [0.5, 0.5]).pValue).toBe(0); // a token outside the law
  });

  test("the fake world has zeros, near-ties, and a law that sums to 1", () => {
    const raw = world.target(PROMPT);
    const row = targetDistribution(raw, at(1));
    expect(Array.from(row).some((p) => p === 0)).toBe(true);
    expect(raw.some((x, i) => raw.some((y, j) => i !== j && x !== y && Math.abs(x - y) < 0.01))).toBe(true);
    expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
  });
});

const SETTINGS: [string, SamplingParams][] = [
  ["T 0.3", at(0.3)],
  ["T 1", at(1)],
  ["T 1.5", at(1.5)],
  ["top-k 2", at(1, 2)],
  ["top-p 0.5 (T 1.5)", at(1.5, 0, 0.5)],
  ["top-k 3 and top-p 0.8 (T 0.7)", at(0.7, 3, 0.8)],
];

describe.each(DRAFTINGS)("$name: whole rounds follow the target's law (p > 0.001)", (drafting) => {
  test.each(SETTINGS)("%s", (_, sampling) => {
    expect(fitOf(world, drafting, verifyRows, sampling).pValue).toBeGreaterThan(0.001);
  });

  test("one coin per level, a correct alternative, passes too (T 1, top-k 3 and top-p 0.8)", () => {
    expect(fitOf(world, drafting, oneCoinPerLevel, at(1)).pValue).toBeGreaterThan(0.001);
    expect(fitOf(world, drafting, oneCoinPerLevel, at(0.7, 3, 0.8)).pValue).toBeGreaterThan(0.001);
  });

  test("top-k 5 (the vocabulary) and 8 (beyond it) are off: the same sequences as T 1, seed for seed", () => {
    const plain = sequencesOf(world, drafting, verifyRows, at(1), 300);
    expect(sequencesOf(world, drafting, verifyRows, at(1, V), 300)).toEqual(plain);
    expect(sequencesOf(world, drafting, verifyRows, at(1, 8), 300)).toEqual(plain);
  });

  test("top-k 1: every sequence is the target's argmax chain", () => {
    const sequences = sequencesOf(world, drafting, verifyRows, at(1, 1), 200);
    const chain = [...PROMPT];
    while (chain.length < PROMPT.length + LENGTH) chain.push(argmax(world.target(chain)));
    for (const s of sequences) expect(s).toEqual(chain.slice(PROMPT.length));
  });
});

test("siblings that cover the whole support: a child is always accepted there, and the law holds", () => {
  // the draft is the target itself, so EAGLE-1's top-k children (4 at the root, 3 under [0], [0,0] and
  // [0,0,0]) hold the whole top-3 support: verification must descend past such nodes, never running dry
  const copy = hashWorld(V, { scale: 1.8, copy: 1 });
  const sampling = at(1, 3);
  let covered = 0;
  const checked: RowVerifier = (tree, logits, s, draw) => {
    const verdict = verifyRows(tree, logits, s, draw);
    const kids = childrenOf(tree);
    for (const node of verdict.path) {
      const support = Array.from(targetDistribution(logits(node), s)).flatMap((p, t) => (p > 0 ? [t] : []));
      if (!support.every((t) => Array.from(kids[node]).some((c) => tree.tokens[c] === t))) continue;
      covered++;
      expect(verdict.path[verdict.path.length - 1]).not.toBe(node); // a child of it was accepted
    }
    return verdict;
  };
  const sequences = sequencesOf(copy, EAGLE1_TOPK, checked, sampling);
  expect(covered).toBeGreaterThan(SAMPLES);
  expect(sequentialChiSquare(sequences, (prefix) => targetDistribution(copy.target([...PROMPT, ...prefix]), sampling)).pValue).toBeGreaterThan(0.001);
});

// a draft that is sure of itself and often wrong (it copies the target at 30% of the contexts, and guesses
// at 5 times the target's sharpness elsewhere): rejections and second siblings are common, which the
// faults of sibling handling need in order to show under sampled drafting, where a good draft's first
// child is accepted at once
const confident = hashWorld(V, { scale: 1.8, copy: 0.3, draftScale: 5 });

describe("wrong verifiers are rejected (p < 1e-6), each where it bites", () => {
  const cases: [Fault, SamplingParams, World][] = [
    ["raw leaf bonus", at(0.3), world],
    ["rejected token kept", at(1), world],
    ["residual not renormalised", at(1), confident],
    ["stale leaf residual", at(1), world],
    ["top-p on the residual", at(1.5, 0, 0.5), confident],
    ["reused uniform", at(1), confident],
    ["filters at the root only", at(1, 2), world],
    ["raw softmax below the root", at(1.5), world],
    ["parent's row", at(1), world],
  ];
  const named = (w: World) => (w === world ? "" : ", confident draft");
  for (const drafting of DRAFTINGS) {
    for (const [fault, sampling, w] of cases) {
      test(`${drafting.name}: ${fault}${named(w)}`, () => {
        expect(fitOf(w, drafting, faulty(fault), sampling).pValue).toBeLessThan(1e-6);
      });
    }
  }
  // drawn children (v1): the ratio must divide by q_j, the residual must take q_j off, and q_j must drop
  // the siblings drawn before
  test.each(SAMPLED_DRAFT_FAULTS)(`${EAGLE1.name}: %s, confident draft`, (fault) => {
    expect(fitOf(confident, EAGLE1, faulty(fault), at(1)).pValue).toBeLessThan(1e-6);
  });
});
