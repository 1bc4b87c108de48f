// sampling is lossless end to end: on a real (tiny, random) model with an 8-token vocabulary, the first
// two tokens EAGLE-1 and EAGLE-2 generate at temperature > 0 follow exactly the target's own distribution,
// enumerated from the target's logits; a verifier that skips the residual is caught by the same test.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { decode, verify, type Verifier } from "../src/decoding/decode.ts";
import { loadDraft, type LoadedDraft } from "../src/model/draft.ts";
import { forward, KvCache, StepOutput } from "../src/native/engine.ts";
import { loadModel, type LoadedModel } from "../src/model/loader.ts";
import { makeTempDir, type RandomModelSpec, writeRandomDraftHead, writeRandomModel } from "../src/model/random-model.ts";
import { type SamplingParams, sampleFrom, targetDistribution } from "../src/decoding/sampling.ts";
import { makeProposer, type SpecMode } from "../src/decoding/spec-mode.ts";
import { testSpec } from "./support/costs.ts";
import { childrenOf } from "../src/decoding/tree.ts";
import { chiSquareTest } from "./support/stats.ts";
import { TEST_PLACEMENT } from "./support/device.ts";

const V = 8;
const SAMPLES = 3000;
const PROMPT = [1, 5, 3];
const spec: RandomModelSpec = { name: "tiny-vocab", hiddenSize: 32, intermediateSize: 64, layers: 2, heads: 4, kvHeads: 2, vocabSize: V, layerScale: 0.3 };

const root = makeTempDir("eagle-dist-");
let target: LoadedModel;
let draft: LoadedDraft;
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

/** P(t1, t2 | prompt) for all V*V pairs, from the target's processed distributions. */
function exactPairs(sampling: SamplingParams): number[] {
  const out = StepOutput.create();
  const row = new Float32Array(V);
  const dist = (tokens: number[]) => {
    const kv = KvCache.create(target.model, tokens.length);
    forward(target.model, kv, { tokens: Int32Array.from(tokens), positions: Int32Array.from(tokens, (_, i) => i) }, out);
    kv.dispose();
    return targetDistribution(out.logitsRow(tokens.length - 1, row), sampling);
  };
  const first = dist(PROMPT);
  const pairs: number[] = [];
  for (let a = 0; a < V; a++) {
    const second = first[a] > 0 ? dist([...PROMPT, a]) : new Float32Array(V);
    for (let b = 0; b < V; b++) pairs.push(first[a] * second[b]);
  }
  out.dispose();
  return pairs;
}

function samplePairs(mode: SpecMode, sampling: SamplingParams, verifier: Verifier, seed0: number): number[] {
  const counts = new Array<number>(V * V).fill(0);
  for (let i = 0; i < SAMPLES; i++) {
    const gen = decode(target, PROMPT, { maxNewTokens: 2, sampling, seed: seed0 + i, stopIds: [] },
      makeProposer(testSpec(mode, { specTopk: 3, specDepth: 3, specTokens: 10 }), draft), verifier);
    const [a, b] = [...gen];
    counts[a * V + b]++;
  }
  return counts;
}

// wrong on purpose: a rejected sibling stays in p, and the bonus comes from the untouched distribution
const skipsResidual: Verifier = (tree, out, sampling, rng) => {
  const kids = childrenOf(tree);
  const path = [0];
  const row = new Float32Array(V);
  for (;;) {
    const node = path[path.length - 1];
    const p = targetDistribution(out.logitsRow(node, row), sampling);
    const next = Array.from(kids[node]).find((c) => rng.next() < p[tree.tokens[c]]);
    if (next === undefined) return { path, bonus: sampleFrom(p, rng.next()) };
    path.push(next);
  }
};

const SETTINGS: [string, SamplingParams][] = [
  ["T=1", { temperature: 1, topK: 0, topP: 1 }],
  ["T=0.7, top-k 4, top-p 0.9", { temperature: 0.7, topK: 4, topP: 0.9 }],
];

describe.each(SETTINGS)("first two tokens at %s", (_, sampling) => {
  for (const mode of ["eagle1", "eagle2", "auto"] as const) {
    test(`${mode}: ${SAMPLES} samples fit the exact distribution (chi-square p > 0.001)`, () => {
      const fit = chiSquareTest(samplePairs(mode, sampling, verify, 1000), exactPairs(sampling).map((p) => p * SAMPLES));
      expect(fit.pValue).toBeGreaterThan(0.001);
    });
  }
  test("a verifier that skips the residual is caught (p < 1e-6)", () => {
    const fit = chiSquareTest(samplePairs("eagle2", sampling, skipsResidual, 1000), exactPairs(sampling).map((p) => p * SAMPLES));
    expect(fit.pValue).toBeLessThan(1e-6);
  });
});

test("plain sampling fits the same distribution", () => {
  const sampling = SETTINGS[0][1];
  const fit = chiSquareTest(samplePairs("none", sampling, verify, 5000), exactPairs(sampling).map((p) => p * SAMPLES));
  expect(fit.pValue).toBeGreaterThan(0.001);
});
