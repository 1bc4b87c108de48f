// EAGLE end to end on CPU in fp32: greedy EAGLE-1 and EAGLE-2 output is token-identical to plain greedy
// decoding, across many accept and reject events, stop tokens and length limits inside a tree; and sampled
// output of top-k trees (EAGLE-2, auto) is token-identical to plain sampling with the same seed.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { decode, type DecodeOptions, type DecodeStats, meanAcceptance } from "../src/decoding/decode.ts";
import { loadDraft, type LoadedDraft } from "../src/model/draft.ts";
import { loadModel, type LoadedModel } from "../src/model/loader.ts";
import { DEFAULT_MODEL_DIR } from "../src/util/paths.ts";
import { makeTempDir, RANDOM_SPECS, type RandomModelSpec, writeRandomDraftHead, writeRandomModel } from "../src/model/random-model.ts";
import { makeProposer, type SpecMode } from "../src/decoding/spec-mode.ts";
import { liveHandles } from "../src/native/engine.ts";
import { EAGER_COSTS, STINGY_COSTS, testSpec } from "./support/costs.ts";
import { TEST_PLACEMENT } from "./support/device.ts";

const root = makeTempDir("eagle-e2e-");
const opened: { dispose(): void }[] = [];
afterAll(() => {
  for (const h of opened.reverse()) h.dispose();
  rmSync(root, { recursive: true, force: true });
});

export function openPair(spec: RandomModelSpec, head: { echo?: boolean; fcBias?: boolean; ownEmbedding?: boolean }): { target: LoadedModel; draft: LoadedDraft } {
  const dir = join(root, spec.name);
  mkdirSync(dir, { recursive: true });
  mkdirSync(`${dir}-head`, { recursive: true });
  writeRandomModel(dir, spec, 11);
  writeRandomDraftHead(`${dir}-head`, spec, 12, head);
  const target = loadModel(dir, TEST_PLACEMENT);
  const draft = loadDraft(`${dir}-head`, target);
  opened.push(target.model, draft.model);
  return { target, draft };
}

interface Run { tokens: number[]; stats: DecodeStats }

function run(target: LoadedModel, draft: LoadedDraft | null, mode: SpecMode, prompt: number[], opts: DecodeOptions, flags = {},
  costs = EAGER_COSTS): Run {
  const gen = decode(target, prompt, opts, makeProposer(testSpec(mode, flags, costs), draft));
  const tokens: number[] = [];
  let step = gen.next();
  for (; !step.done; step = gen.next()) tokens.push(step.value);
  return { tokens, stats: step.value };
}

const greedy = (maxNewTokens: number, stopIds: number[] = []): DecodeOptions =>
  ({ maxNewTokens, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stopIds });

const PROMPT = [1, 17, 300, 42, 9];

function expectIdentical(target: LoadedModel, draft: LoadedDraft, opts: DecodeOptions, prompt = PROMPT): Run[] {
  const plain = run(target, null, "none", prompt, opts);
  const runs = (["eagle1", "eagle2", "auto"] as const).map((mode) => run(target, draft, mode, prompt, opts));
  for (const r of runs) {
    expect(r.tokens).toEqual(plain.tokens);
    expect(r.stats.stopReason).toBe(plain.stats.stopReason);
  }
  return runs;
}

describe("random heads on every random model shape (mostly rejections)", () => {
  for (const spec of RANDOM_SPECS) {
    test(spec.name, () => {
      const { target, draft } = openPair(spec, { fcBias: spec.name !== "qwen2-bias", ownEmbedding: spec.name === "llama-mha" });
      expectIdentical(target, draft, greedy(120));
    });
  }
});

describe("a confident head on a nearly-bigram model (many accepts)", () => {
  const spec: RandomModelSpec = { name: "bigram", hiddenSize: 64, intermediateSize: 128, layers: 2, heads: 4, kvHeads: 2, vocabSize: 512, layerScale: 0.15, maxPositions: 160 };
  const { target, draft } = openPair(spec, { echo: true });

  test("long generation: identical, with accepted paths several tokens deep", () => {
    const [e1, e2] = expectIdentical(target, draft, greedy(140));
    for (const r of [e1, e2]) {
      expect(meanAcceptance(r.stats)).toBeGreaterThan(2.5);
      expect(r.stats.acceptedByDepth[2]).toBeGreaterThan(0);
      // and rejections: rounds whose tree went deeper than the accepted path
      expect(r.stats.acceptedByDepth.some((a, d) => a < r.stats.proposedByDepth[d])).toBe(true);
    }
  });

  test("a stop token and max_new_tokens falling inside a tree", () => {
    const plain = run(target, null, "none", PROMPT, greedy(100)).tokens;
    const stop = plain[37];
    const cut = expectIdentical(target, draft, greedy(100, [stop]));
    expect(cut[0].tokens[cut[0].tokens.length - 1]).toBe(stop);
    for (const n of [1, 2, 7, 23, 61]) expectIdentical(target, draft, greedy(n));
  });

  test("the context limit reached inside a tree", () => {
    const prompt = Array.from({ length: 120 }, (_, i) => (i * 37) % 512);
    const [e1] = expectIdentical(target, draft, greedy(100), prompt);
    expect(e1.stats.stopReason).toBe("context");
    expect(prompt.length + e1.tokens.length).toBe(160);
  });

  test("auto grows accepted trees where verification is cheap, and rests (plain rounds) where nothing pays", () => {
    const plain = run(target, null, "none", PROMPT, greedy(140));
    const eager = run(target, draft, "auto", PROMPT, greedy(140));
    expect(eager.tokens).toEqual(plain.tokens);
    expect(meanAcceptance(eager.stats)).toBeGreaterThan(2.5);
    expect(eager.stats.treeNodes.max).toBeGreaterThan(4);
    expect(eager.stats.predicted!.tokens).toBeGreaterThan(eager.stats.targetForwards);
    // a perfect draft could not pay under these costs, so it never drafts: one node per round
    const stingy = run(target, draft, "auto", PROMPT, greedy(140), {}, STINGY_COSTS);
    expect(stingy.tokens).toEqual(plain.tokens);
    expect(stingy.stats.treeNodes.max).toBe(1);
    expect(stingy.stats.targetForwards).toBe(plain.stats.targetForwards);
  });

  test("auto where no draft could pay at any of the run's contexts: plain decoding, without a draft cache", () => {
    const before = liveHandles();
    const proposer = makeProposer(testSpec("auto", {}, STINGY_COSTS), draft);
    const gen = decode(target, PROMPT, greedy(40), proposer);
    let step = gen.next(); // the run is sized, and its first token chosen
    expect(liveHandles().caches - before.caches).toBe(1); // the target's; none for the head
    while (!step.done) step = gen.next();
    expect(step.value.newTokens).toBe(40);
    expect(step.value.treeNodes.max).toBe(1);
    expect(step.value.predicted!.rounds).toBe(step.value.targetForwards); // its rounds still counted
    expect(liveHandles()).toEqual(before);
    // where a draft could pay, the drafter keeps its cache
    const g = decode(target, PROMPT, greedy(8), makeProposer(testSpec("auto", {}, EAGER_COSTS), draft));
    g.next();
    expect(liveHandles().caches - before.caches).toBe(2);
    g.return(undefined as never); // frees the run's caches and its proposer
    expect(liveHandles()).toEqual(before);
  });

  test("sampled: EAGLE-2 and auto give plain sampling's text for the same seed, token for token", () => {
    // their trees are the draft's top-k picks, and each token is the target's own draw for its position
    for (const [seed, sampling] of [[3, { temperature: 0.5, topK: 0, topP: 1 }], [4, { temperature: 0.7, topK: 40, topP: 0.9 }],
      [5, { temperature: 1, topK: 0, topP: 0.8 }]] as const) {
      const opts: DecodeOptions = { maxNewTokens: 120, sampling, seed, stopIds: [] };
      const plain = run(target, null, "none", PROMPT, opts);
      for (const [mode, flags] of [["eagle2", {}], ["eagle2", { specTopk: 2, specDepth: 6, specTokens: 9 }], ["auto", {}]] as const) {
        const r = run(target, draft, mode, PROMPT, opts, flags);
        expect(r.tokens).toEqual(plain.tokens);
        expect(r.stats.acceptedByDepth[0]).toBeGreaterThan(5); // drafts were accepted in many rounds, and rejected
        expect(r.stats.acceptedByDepth.some((a, d) => a < r.stats.proposedByDepth[d])).toBe(true);
      }
      expect(run(target, null, "none", PROMPT, { ...opts, seed: seed + 100 }).tokens).not.toEqual(plain.tokens); // the seed decides
    }
  });

  test("custom EAGLE-1 trees and EAGLE-2 knobs stay identical", () => {
    const plain = run(target, null, "none", PROMPT, greedy(60)).tokens;
    expect(run(target, draft, "eagle2", PROMPT, greedy(60), { specTopk: 3, specDepth: 2, specTokens: 8 }).tokens).toEqual(plain);
    expect(run(target, draft, "eagle2", PROMPT, greedy(60), { specTopk: 1, specDepth: 6, specTokens: 7 }).tokens).toEqual(plain);
  });
});

test("stories260K with a random head: 200 tokens identical to plain greedy", () => {
  const target = loadModel(DEFAULT_MODEL_DIR, TEST_PLACEMENT);
  const spec: RandomModelSpec = { name: "stories-head", hiddenSize: 64, intermediateSize: 172, layers: 1, heads: 8, kvHeads: 4, vocabSize: 512 };
  const dir = join(root, "stories-head");
  mkdirSync(dir);
  writeRandomDraftHead(dir, spec, 5);
  const draft = loadDraft(dir, target);
  opened.push(target.model, draft.model);
  expectIdentical(target, draft, greedy(200), [1]);
});
