// The speculation figures by the field's definitions: mean acceptance length (τ), vLLM's per-position
// acceptance rate (accepted at depth d over all rounds, adding up to τ - 1), the conditional rate (over the
// rounds whose tree reached depth d) and the draft acceptance rate; from counts made by hand, then from a
// real run of the decode loop, whose tokens they must account for.
import { afterAll, expect, test } from "bun:test";
import { acceptanceStats, decode, type DecodeStats } from "../src/decoding/decode.ts";
import { makeProposer } from "../src/decoding/spec-mode.ts";
import { expectedSpeedup } from "../src/decoding/proposer.ts";
import { loadDraft } from "../src/model/draft.ts";
import { loadModel } from "../src/model/loader.ts";
import { DEFAULT_MODEL_DIR } from "../src/util/paths.ts";
import { testSpec } from "./support/costs.ts";
import { TEST_PLACEMENT } from "./support/device.ts";

function stats(counts: Partial<DecodeStats>): DecodeStats {
  return {
    promptTokens: 1, newTokens: 0, promptMs: 0, decodeMs: 0, targetForwards: 0, nativeMs: 0, verifyMs: 0, draftMs: 0,
    acceptedByDepth: [], proposedByDepth: [], treeNodes: { total: 0, min: 0, max: 0 }, predicted: null, stopReason: "eos",
    ...counts,
  };
}

test("four rounds counted by hand: trees reaching depths 3, 2, 0 and 3 that accepted 2, 0, 0 and 3 tokens", () => {
  // nodes verified per round (roots included): 6, 3, 1, 5; 11 drafted tokens, 5 accepted
  const a = acceptanceStats(stats({
    targetForwards: 4, proposedByDepth: [3, 3, 2], acceptedByDepth: [2, 2, 1], treeNodes: { total: 15, min: 1, max: 6 },
  }));
  expect(a.meanAcceptanceLength).toBe(2.25);
  expect(a.perPositionAcceptanceRate).toEqual([0.5, 0.5, 0.25]);
  expect(a.conditionalAcceptance).toEqual([2 / 3, 2 / 3, 0.5]);
  expect(a.draftAcceptanceRate).toBe(5 / 11);
});

test("per position never rises with depth and adds up to τ - 1; the conditional rate may rise", () => {
  // depth 2 is reached by one round in four, which accepted it: conditional 1 there, per position 0.25
  const a = acceptanceStats(stats({ targetForwards: 4, proposedByDepth: [4, 1], acceptedByDepth: [1, 1], treeNodes: { total: 9, min: 2, max: 3 } }));
  expect(a.conditionalAcceptance).toEqual([0.25, 1]);
  expect(a.perPositionAcceptanceRate).toEqual([0.25, 0.25]);
  expect(a.perPositionAcceptanceRate.reduce((x, y) => x + y, 0)).toBeCloseTo(a.meanAcceptanceLength - 1, 12);
});

test("no rounds: zeros, not NaN", () => {
  const a = acceptanceStats(stats({}));
  expect(a).toEqual({ meanAcceptanceLength: 0, perPositionAcceptanceRate: [], conditionalAcceptance: [], draftAcceptanceRate: 0 });
});

const target = loadModel(DEFAULT_MODEL_DIR, TEST_PLACEMENT);
const head = loadDraft(`${DEFAULT_MODEL_DIR}-eagle`, target);
afterAll(() => {
  head.model.dispose();
  target.model.dispose();
});

test.each(["eagle1", "eagle2"] as const)("a real %s run: every token but the prefill's is a bonus or an accepted draft token", (mode) => {
  const run = decode(target, [1, 403, 411], {
    maxNewTokens: 120, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stopIds: [],
  }, makeProposer(testSpec(mode), head));
  let step = run.next();
  while (!step.done) step = run.next();
  const s = step.value;
  const a = acceptanceStats(s);
  const accepted = s.acceptedByDepth.reduce((x, y) => x + y, 0);
  // the prefill gives one token; each round a bonus plus its accepted tokens, the last round possibly cut
  expect(s.newTokens).toBeLessThanOrEqual(1 + s.targetForwards + accepted);
  expect(s.newTokens).toBeGreaterThan(s.targetForwards + accepted - a.perPositionAcceptanceRate.length);
  expect(a.meanAcceptanceLength).toBeCloseTo(1 + accepted / s.targetForwards, 12);
  expect(a.perPositionAcceptanceRate.reduce((x, y) => x + y, 0)).toBeCloseTo(a.meanAcceptanceLength - 1, 12);
  for (let d = 1; d < a.perPositionAcceptanceRate.length; d++) {
    expect(a.perPositionAcceptanceRate[d]).toBeLessThanOrEqual(a.perPositionAcceptanceRate[d - 1]);
  }
  expect(a.meanAcceptanceLength).toBeGreaterThan(1.5); // the shipped head predicts its model
});

test("auto's expected speedup: its predicted rate over plain steps' at the same contexts, from its cost model", () => {
  const run = decode(target, [1, 403, 411], {
    maxNewTokens: 60, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stopIds: [],
  }, makeProposer(testSpec("auto"), head));
  let step = run.next();
  while (!step.done) step = run.next();
  const p = step.value.predicted!;
  expect(p.rounds).toBe(step.value.targetForwards);
  // EAGER_COSTS: a plain step is a one-token forward (1000 + 2 µs) and the loop's round (5 µs)
  expect(p.plainUs).toBeCloseTo(p.rounds * 1007, 6);
  expect(expectedSpeedup(p)).toBeCloseTo((p.tokens / p.us) * 1007, 9);
  expect(expectedSpeedup(p)).toBeGreaterThan(1.5); // with a head this good, on costs this memory-bound
  expect(expectedSpeedup({ tokens: 10, us: 1000, rounds: 10, plainUs: 1000 })).toBe(1);
});
