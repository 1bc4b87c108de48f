// the statistical proof that sampled verification is lossless: with a fake target and a fake draft
// over 5 tokens, the first 3 tokens generated through draft trees must follow the target's own
// (processed) distribution. wrong verifiers must fail the same test.
import { describe, expect, test } from "bun:test";
import { rerankTree, selectFrontier, type Candidate } from "../src/decoding/dynamic-tree.ts";
import { Rng } from "../src/util/rng.ts";
import { argmax, sampleFrom, targetDistribution, topKIds, type SamplingParams } from "../src/decoding/sampling.ts";
import { instantiate, planStaticTree, type StaticNode } from "../src/decoding/static-tree.ts";
import { pathTo, childrenOf, type DraftTree } from "../src/decoding/tree.ts";
import { verifySampled, type Verdict } from "../src/decoding/verify.ts";
import { chiSquareTest, gammaQ } from "./support/stats.ts";

const VOCAB = 5;
const PREFIX = [3, 1, 4];
const STEPS = 3; // tokens generated per sample: 5^3 outcomes
const SAMPLES = 200_000;

// fnv-1a over the sequence, with a salt so target and draft differ
function hash(seq: number[], salt: number): number {
  let h = 0x811c9dc5 ^ salt;
  for (const x of seq) h = Math.imul(h ^ (x + 1), 0x01000193) >>> 0;
  return Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
}

// logits on a coarse grid (exact ties) plus tiny offsets (near-ties); some -Infinity (zeros)
function fakeLogits(seq: number[], salt: number): Float32Array {
  const out = new Float32Array(VOCAB);
  for (let v = 0; v < VOCAB; v++) {
    const h = hash([...seq, v], salt);
    out[v] = h % 11 === 0 ? -Infinity : (h % 6) * 0.4 + ((h >>> 8) % 3) * 1e-3;
  }
  if (out.every((x) => x === -Infinity)) out[hash(seq, salt) % VOCAB] = 0;
  return out;
}

const targetLogits = (seq: number[]) => fakeLogits(seq, 1);
// the draft copies the target's ranking at some prefixes and guesses at others
const draftLogits = (seq: number[]) => (hash(seq, 2) % 3 === 0 ? targetLogits(seq) : fakeLogits(seq, 3));

function logSoftmax(logits: Float32Array): Float64Array {
  const max = Math.max(...logits);
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  return Float64Array.from(logits, (x) => x - max - Math.log(sum));
}

type TreeBuilder = (seq: number[]) => DraftTree;

// EAGLE-1: a static plan of 7 draft nodes, top-3 candidates per expanded node
const plan = planStaticTree([[0], [1], [2], [0, 0], [0, 1], [1, 0], [0, 0, 0]]);
const staticTree: TreeBuilder = (seq) => {
  const ranked: Int32Array[] = [];
  return instantiate(plan, seq[seq.length - 1], (node) => {
    ranked[node] = topKIds(draftLogits(contextOf(seq, ranked, plan.nodes, node)), plan.topK);
    return ranked[node];
  });
};

// the sequence at a plan node, from the candidates its ancestors were given
function contextOf(seq: number[], ranked: Int32Array[], nodes: StaticNode[], node: number): number[] {
  const tail: number[] = [];
  for (let i = node; i > 0; i = nodes[i].parent) tail.unshift(ranked[nodes[i].parent][nodes[i].rank]);
  return [...seq, ...tail];
}

// EAGLE-2: K = 2 children per frontier node, 3 levels, the best 6 candidates kept
const dynamicTree: TreeBuilder = (seq) => {
  const K = 2;
  const candidates: Candidate[] = [];
  const contexts: number[][] = [];
  const grow = (parent: number) => {
    const ctx = parent < 0 ? seq : contexts[parent];
    const lp = logSoftmax(draftLogits(ctx));
    const base = parent < 0 ? 0 : candidates[parent].logp;
    const depth = parent < 0 ? 1 : candidates[parent].depth + 1;
    for (const token of topKIds(draftLogits(ctx), K)) {
      candidates.push({ token, parent, logp: base + lp[token], depth });
      contexts.push([...ctx, token]);
    }
  };
  grow(-1);
  let frontier = [0, 1];
  for (let level = 1; level < 3; level++) {
    const start = candidates.length;
    frontier.forEach(grow);
    const scores = candidates.slice(start).map((c) => c.logp);
    frontier = selectFrontier(scores, K).map((i) => start + i);
  }
  return rerankTree(seq[seq.length - 1], candidates, 6);
};

type Verifier = (t: DraftTree, distribution: (node: number) => Float32Array, draw: () => number) => Verdict;

// wrong: a rejected token stays in p, so later siblings and the bonus are drawn from the unmodified p
const keepsRejected: Verifier = (t, distribution, draw) => {
  const children = childrenOf(t);
  const path = [0];
  for (let node = 0; ; ) {
    const p = distribution(node);
    const next = children[node].find((c) => draw() < p[t.tokens[c]]);
    if (next === undefined) return { path, bonus: sampleFrom(p, draw()) };
    path.push(next);
    node = next;
  }
};

// wrong: greedy acceptance (the draft token must be p's argmax) with a sampled bonus
const greedyAtTemperature: Verifier = (t, distribution, draw) => {
  const children = childrenOf(t);
  const path = [0];
  for (let node = 0; ; ) {
    const p = distribution(node);
    const next = children[node].find((c) => t.tokens[c] === argmax(p));
    if (next === undefined) return { path, bonus: sampleFrom(p, draw()) };
    path.push(next);
    node = next;
  }
};

// memoised per sequence: the target row, and the tree with each node's row
function world(params: SamplingParams, build: TreeBuilder) {
  const rows = new Map<string, Float32Array>();
  const row = (seq: number[]) => {
    const key = seq.join(",");
    let r = rows.get(key);
    if (r === undefined) rows.set(key, (r = targetDistribution(targetLogits(seq), params)));
    return r;
  };
  const trees = new Map<string, { tree: DraftTree; rows: Float32Array[] }>();
  const treeAt = (seq: number[]) => {
    const key = seq.join(",");
    let entry = trees.get(key);
    if (entry === undefined) {
      const tree = build(seq);
      const nodeRows = Array.from(tree.tokens, (_, n) => row([...seq, ...pathTo(tree, n).slice(1).map((i) => tree.tokens[i])]));
      trees.set(key, (entry = { tree, rows: nodeRows }));
    }
    return entry;
  };
  return { row, treeAt };
}

// outcome index of a continuation: base-5 digits, first token most significant
const outcomeOf = (tokens: number[]) => tokens.reduce((acc, t) => acc * VOCAB + t, 0);

function exactProbabilities(row: (seq: number[]) => Float32Array): Float64Array {
  const probs = new Float64Array(VOCAB ** STEPS);
  const walk = (seq: number[], p: number) => {
    if (seq.length === PREFIX.length + STEPS) return void (probs[outcomeOf(seq.slice(PREFIX.length))] += p);
    const r = row(seq);
    const mass = r.reduce((a, b) => a + b, 0); // float32 rows miss 1 by ~1e-8
    for (let v = 0; v < VOCAB; v++) if (r[v] > 0) walk([...seq, v], (p * r[v]) / mass);
  };
  walk(PREFIX, 1);
  return probs;
}

function simulate(params: SamplingParams, build: TreeBuilder, verify: Verifier, seed: number) {
  const { row, treeAt } = world(params, build);
  const rng = new Rng(seed);
  const draw = () => rng.next();
  const counts = new Float64Array(VOCAB ** STEPS);
  for (let s = 0; s < SAMPLES; s++) {
    const seq = [...PREFIX];
    while (seq.length < PREFIX.length + STEPS) {
      const { tree, rows } = treeAt(seq);
      const verdict = verify(tree, (n) => rows[n].slice(), draw);
      for (const n of verdict.path.slice(1)) seq.push(tree.tokens[n]);
      seq.push(verdict.bonus);
    }
    counts[outcomeOf(seq.slice(PREFIX.length, PREFIX.length + STEPS))]++;
  }
  const expected = exactProbabilities(row).map((p) => p * SAMPLES);
  return chiSquareTest(counts, expected);
}

const topK3: SamplingParams = { temperature: 0.7, topK: 3, topP: 1 };
const topP08: SamplingParams = { temperature: 0.7, topK: 0, topP: 0.8 };

describe("sampled verification keeps the target distribution", () => {
  test("the chi-square p-value matches tables", () => {
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

  test("the fake world has zeros, near-ties and a probability that sums to 1", () => {
    const { row } = world(topP08, staticTree);
    const total = exactProbabilities(row).reduce((a, b) => a + b, 0);
    expect(total).toBeCloseTo(1, 9);
    const raw = targetLogits(PREFIX);
    expect(Array.from(row(PREFIX)).some((p) => p === 0)).toBe(true);
    expect(raw.some((x, i) => raw.some((y, j) => i !== j && x !== y && Math.abs(x - y) < 0.01))).toBe(true);
  });

  test("correct verifier, static tree, T 0.7 top-k 3", () => {
    expect(simulate(topK3, staticTree, verifySampled, 1).pValue).toBeGreaterThan(0.001);
  });

  test("correct verifier, dynamic tree, T 0.7 top-p 0.8", () => {
    expect(simulate(topP08, dynamicTree, verifySampled, 2).pValue).toBeGreaterThan(0.001);
  });

  test("keeping rejected tokens in p is caught", () => {
    expect(simulate(topK3, staticTree, keepsRejected, 3).pValue).toBeLessThan(1e-6);
  });

  test("greedy acceptance at T > 0 is caught", () => {
    expect(simulate(topP08, dynamicTree, greedyAtTemperature, 4).pValue).toBeLessThan(1e-6);
  });
});
