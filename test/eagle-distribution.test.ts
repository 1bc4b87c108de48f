// the law of whole rounds, through the real decode loop and tree attention: on a tiny random model with an
// 8-token vocabulary and a draft head the target accepts deep, the first 7 tokens of a run (the prompt's
// token, then rounds of EAGLE-1's default tree, its children sampled as the official v1 does at T > 0,
// or an EAGLE-2 tree, down to their leaves and the bonus after them) must follow the target's own law,
// the product of its processed conditionals, read from fresh plain forwards of every prefix. Wrong
// verifiers, plugged into decode, must fail the same test.
//
// The test (sequentialChiSquare): for every prefix the runs share, the tokens after it are a multinomial
// sample of the target's row there; the Pearson statistics add up over prefixes and positions. RUNS = 2000
// runs give 230 to 310 degrees of freedom. The smallest distortion the test must detect is that of the
// weakest wrong verifier below, a residual that drops only the drawn token where v1's takes q_j off:
// noncentrality λ ≈ 420 at 290 dof (λ = E[statistic] - dof: the chi-square divergence of the runs' law
// from the exact one, over the tables these runs fill); the rest measured λ ≈ 580 to 16000, or produce a
// token the target cannot. At 300 dof λ >= 216 (0.11 per run) is rejected at p < 1e-6 with power 0.99
// (normal approximation of the noncentral chi-square), so the weakest is caught with power > 0.9999.
// Seeds are fixed, so each verdict is the same on every machine; correct verifiers must pass at p > 0.001.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { decode, verify, type Verifier } from "../src/decoding/decode.ts";
import { loadDraft, type LoadedDraft } from "../src/model/draft.ts";
import { forward, KvCache, StepOutput } from "../src/native/engine.ts";
import { loadModel, type LoadedModel } from "../src/model/loader.ts";
import { makeTempDir, type RandomModelSpec, writeRandomDraftHead, writeRandomModel } from "../src/model/random-model.ts";
import { type SamplingParams, targetDistribution } from "../src/decoding/sampling.ts";
import { makeProposer, type SpecMode } from "../src/decoding/spec-mode.ts";
import { childrenOf } from "../src/decoding/tree.ts";
import { testSpec } from "./support/costs.ts";
import { sequentialChiSquare } from "./support/stats.ts";
import { TEST_PLACEMENT } from "./support/device.ts";
import { type Fault, faulty, inDecode, oneCoinPerLevel } from "./support/verifiers.ts";

const V = 8;
const RUNS = 2000;
const LENGTH = 7; // the prompt's token, then up to 5 accepted tokens and the bonus of one round
const PROMPT = [1, 5, 3];
const SEED = 1000;
// nearly bigram (layerScale 0.3): the echo head, which guesses the bigram, is accepted deep
const spec: RandomModelSpec = { name: "tiny-vocab", hiddenSize: 32, intermediateSize: 64, layers: 2, heads: 4, kvHeads: 2, vocabSize: V, layerScale: 0.3 };
// EAGLE-2: 4 children per expanded node, 4 passes (5 draft levels), 20 nodes verified
const DYNAMIC = { specTopk: 4, specDepth: 4, specTokens: 20 };

const T1: SamplingParams = { temperature: 1, topK: 0, topP: 1 };
const T07: SamplingParams = { temperature: 0.7, topK: 0, topP: 1 };
const T03: SamplingParams = { temperature: 0.3, topK: 0, topP: 1 };
const FILTERED: SamplingParams = { temperature: 1.5, topK: 6, topP: 0.6 }; // top-k and top-p together

const root = makeTempDir("eagle-dist-");
let target: LoadedModel;
let draft: LoadedDraft;
const rows = new Map<string, Float32Array>(); // prefix -> the target's raw logits after it, from a fresh forward
beforeAll(() => {
  mkdirSync(join(root, "m"));
  mkdirSync(join(root, "h"));
  writeRandomModel(join(root, "m"), spec, 21);
  writeRandomDraftHead(join(root, "h"), spec, 22, { echo: true });
  target = loadModel(join(root, "m"), TEST_PLACEMENT);
  draft = loadDraft(join(root, "h"), target);
});
afterAll(() => {
  draft.model.dispose();
  target.model.dispose();
  rmSync(root, { recursive: true, force: true });
});

/** The target's raw logits after PROMPT + prefix, from a plain forward of the whole sequence in a fresh cache. */
function freshLogits(prefix: number[]): Float32Array {
  const tokens = [...PROMPT, ...prefix];
  const key = tokens.join(",");
  let row = rows.get(key);
  if (row === undefined) {
    const kv = KvCache.create(target.model, tokens.length);
    const out = StepOutput.create();
    forward(target.model, kv, { tokens: Int32Array.from(tokens), positions: Int32Array.from(tokens, (_, i) => i) }, out);
    rows.set(key, (row = out.logitsRow(tokens.length - 1, new Float32Array(V))));
    out.dispose();
    kv.dispose();
  }
  return row;
}

/** What the rounds of a batch of runs did: [d] = rounds whose accepted path reached depth d, and those that
 * ended at a leaf of depth d (the bonus then comes from the leaf's own row). */
interface Rounds {
  reached: number[];
  leafBonus: number[];
  stopInside: number; // rounds that accepted a stop token with more accepted after it
  sampled: number;    // rounds whose tree was drawn (it carries the draft's distributions)
}

function recording(verifier: Verifier, rounds: Rounds, stopIds: number[]): Verifier {
  return (tree, out, sampling, rng, vocab, drawAt) => {
    const verdict = verifier(tree, out, sampling, rng, vocab, drawAt);
    const last = verdict.path[verdict.path.length - 1];
    for (let d = 0; d <= tree.depth[last]; d++) rounds.reached[d] = (rounds.reached[d] ?? 0) + 1;
    if (last > 0 && childrenOf(tree)[last].length === 0) rounds.leafBonus[tree.depth[last]] = (rounds.leafBonus[tree.depth[last]] ?? 0) + 1;
    if (verdict.path.slice(1, -1).some((n) => stopIds.includes(tree.tokens[n]))) rounds.stopInside++;
    if (tree.proposal) rounds.sampled++;
    return verdict;
  };
}

interface Batch {
  sequences: number[][];
  rounds: Rounds;
}

function runs(mode: SpecMode, sampling: SamplingParams, verifier: Verifier, stopIds: number[] = []): Batch {
  const rounds: Rounds = { reached: [], leafBonus: [], stopInside: 0, sampled: 0 };
  const checked = recording(verifier, rounds, stopIds);
  const sequences: number[][] = [];
  for (let i = 0; i < RUNS; i++) {
    const run = decode(target, PROMPT, { maxNewTokens: LENGTH, sampling, seed: SEED + i, stopIds },
      makeProposer(testSpec(mode, DYNAMIC), draft), checked);
    sequences.push([...run]);
  }
  return { sequences, rounds };
}

function fit(batch: Batch, sampling: SamplingParams) {
  return sequentialChiSquare(batch.sequences, (prefix) => targetDistribution(freshLogits(prefix), sampling));
}

const DEEPEST = { eagle1: 5, eagle2: 5 } as const;

describe.each([
  ["T 1", T1],
  ["T 1.5, top-k 6, top-p 0.6", FILTERED],
  ["T 0.3", T03],
] as const)("%s: whole rounds follow the target's law", (_, sampling) => {
  for (const mode of ["eagle1", "eagle2"] as const) {
    test(`${mode}: every depth and the leaf bonus exercised, the law fits (p > 0.001)`, () => {
      const batch = runs(mode, sampling, verify);
      for (const s of batch.sequences) expect(s.length).toBe(LENGTH);
      // EAGLE-1 samples its children at T > 0 (v1); EAGLE-2 takes the draft's top-k
      expect(batch.rounds.sampled).toBe(mode === "eagle1" ? batch.rounds.reached[0] : 0);
      // depth >= 3 in a fair share of the rounds, every depth and a leaf bonus at the deepest many times
      expect(batch.rounds.reached[3]).toBeGreaterThan(0.1 * batch.rounds.reached[0]);
      for (let d = 1; d <= DEEPEST[mode]; d++) expect(batch.rounds.reached[d]).toBeGreaterThan(50);
      expect(batch.rounds.leafBonus[DEEPEST[mode]]).toBeGreaterThan(50);
      expect(fit(batch, sampling).pValue).toBeGreaterThan(0.001);
    });
  }
});

describe("wrong verifiers plugged into decode are rejected (p < 1e-6)", () => {
  // each where it bites: the filter faults need top-k/top-p, the others show with no filter at all
  const cases: [Fault, SpecMode, SamplingParams][] = [
    ["raw leaf bonus", "eagle1", FILTERED],
    ["filters at the root only", "eagle1", FILTERED],
    ["top-p on the residual", "eagle1", FILTERED],
    ["raw softmax below the root", "eagle1", T07],
    ["residual not renormalised", "eagle1", T07],
    ["stale leaf residual", "eagle1", T07],
    ["reused uniform", "eagle1", T07],
    ["parent's row", "eagle1", T07],
    ["stale leaf residual", "eagle2", T07],
    ["parent's row", "eagle2", T07],
    // EAGLE-1's drawn children (v1): divide by q_j, take q_j off the residual, drop earlier siblings from q
    ["ratio not divided by q", "eagle1", T1],
    ["point-mass residual", "eagle1", T1],
    ["q keeps drawn siblings", "eagle1", T1],
  ];
  test.each(cases)("%s (%s)", (fault, mode, sampling) => {
    expect(fit(runs(mode, sampling, inDecode(faulty(fault))), sampling).pValue).toBeLessThan(1e-6);
  });
});

test.each([["T 0.7", T07], ["T 1.5, top-k 6, top-p 0.6", FILTERED]] as const)(
  "a correct alternative, one coin per level, passes (%s)", (_, sampling) => {
    expect(fit(runs("eagle1", sampling, inDecode(oneCoinPerLevel)), sampling).pValue).toBeGreaterThan(0.001);
  });

test("stop tokens inside the tree: a run ends at the first, the law still fits", () => {
  // token 5 is accepted mid-path, with more accepted after it, in a few hundred rounds (377 here), and it
  // ends most runs early; token 3, the prompt's likeliest next token, would end them at once
  const stopIds = [5];
  const batch = runs("eagle1", T07, verify, stopIds);
  expect(batch.rounds.stopInside).toBeGreaterThan(200);
  expect(batch.sequences.filter((s) => s.length < LENGTH).length).toBeGreaterThan(RUNS / 2);
  for (const s of batch.sequences) {
    const stop = s.findIndex((t) => stopIds.includes(t));
    expect(s.length).toBe(stop >= 0 ? stop + 1 : LENGTH);
  }
  expect(fit(batch, T07).pValue).toBeGreaterThan(0.001);
});

test.each([["auto", "auto"], ["plain decoding", "none"]] as const)("%s fits the same law", (_, mode) => {
  expect(fit(runs(mode, T1, verify), T1).pValue).toBeGreaterThan(0.001);
});
