// --spec auto's policy, in pure TypeScript: the cost model's fit, and the cost-aware tree builder against a
// stand-in draft whose answers are scripted (no engine, no clock).
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { AUTO_DEFAULTS, CostAwareTreeBuilder } from "../src/decoding/auto-tree.ts";
import { AcceptanceCalibration, type AcceptanceCounts } from "../src/decoding/calibration.ts";
import { Rng } from "../src/util/rng.ts";
import { costsFor } from "../src/decoding/calibrate.ts";
import { costTable, type CostModel, fitStepCost, sharedTargetCost, stepUs } from "../src/decoding/cost-model.ts";
import { CostReview } from "../src/decoding/cost-review.ts";
import type { DraftSource } from "../src/decoding/eagle.ts";
import { runDrafts } from "../src/decoding/proposer.ts";
import { checkTree } from "../src/decoding/tree.ts";
import { makeTempDir } from "../src/model/random-model.ts";
import { EAGER_COSTS, PERFECT_PAYS_ALONE, STINGY_COSTS } from "./support/costs.ts";

test("fitStepCost recovers fixed + per token + per token and slot, and never goes negative", () => {
  const truth = { fixedUs: 20, perTokenUs: 11.5, perTokenSlotUs: 0.07 };
  const points = [16, 384].flatMap((context) => [1, 2, 4, 8, 16, 32].map((tokens) => ({ tokens, context, us: stepUs(truth, tokens, context) })));
  const fit = fitStepCost(points);
  expect(fit.fixedUs).toBeCloseTo(20, 6);
  expect(fit.perTokenUs).toBeCloseTo(11.5, 6);
  expect(fit.perTokenSlotUs).toBeCloseTo(0.07, 8);
  // costs that fall with the context would need a negative slot term: held at 0 instead
  const odd = fitStepCost([{ tokens: 1, context: 10, us: 30 }, { tokens: 1, context: 500, us: 20 }, { tokens: 4, context: 10, us: 60 }]);
  for (const v of Object.values(odd)) expect(v).toBeGreaterThanOrEqual(0);
  expect(odd.perTokenSlotUs).toBe(0);
  expect(fit.freeTokens).toBeUndefined(); // a linear cost has no free rows
});

test("fitStepCost finds the rows a memory-bound step gets for free, and stepUs charges only past them", () => {
  const truth = { fixedUs: 20000, perTokenUs: 1500, perTokenSlotUs: 1, freeTokens: 4 };
  const points = [32, 256].flatMap((context) => [1, 2, 4, 8, 16, 32, 64].map((tokens) => ({ tokens, context, us: stepUs(truth, tokens, context) })));
  const fit = fitStepCost(points);
  expect(fit.freeTokens).toBe(4);
  expect(fit.fixedUs).toBeCloseTo(20000, 3);
  expect(fit.perTokenUs).toBeCloseTo(1500, 4);
  expect(stepUs(fit, 3, 0)).toBeCloseTo(20000, 3);
  expect(stepUs(fit, 6, 0)).toBeCloseTo(23000, 3);
});

test("sharedTargetCost: a share of the measured batch, each token past the first at a batched row's cost", () => {
  const costs: CostModel = { ...EAGER_COSTS, target: { fixedUs: 1000, perTokenUs: 50, perTokenSlotUs: 0 } };
  expect(sharedTargetCost(costs, 1)).toBe(costs.target);
  // no measured batch: the fixed cost split
  expect(stepUs(sharedTargetCost(costs, 4), 1, 0)).toBeCloseTo(250 + 50, 9);
  // alone 1050; 8 sequences of one token 1400 (+50 a sequence); of two tokens 2200 (+100 a row)
  const measured = { ...costs, batch: { oneUs: 1400, twoUs: 2200 } };
  expect(stepUs(sharedTargetCost(measured, 8), 1, 0)).toBeCloseTo(1400 / 8, 9);
  expect(stepUs(sharedTargetCost(measured, 8), 3, 0) - stepUs(sharedTargetCost(measured, 8), 1, 0)).toBeCloseTo(200, 9);
  expect(stepUs(sharedTargetCost(measured, 2), 1, 0)).toBeCloseTo((1050 + 50) / 2, 9);
});

test("a step's table prices the sizes it measured, between them linearly, past them by the line's slope; a batch's share ignores it", () => {
  // 6 rows that cost 1.1x one row where the line (4 rows free, then 2 ms a row) says 1.2x; a timing of 3 rows
  // slowed by load (the best of several can only err upwards) gives way to the 4 rows measured after it
  const line = { fixedUs: 20000, perTokenUs: 2000, perTokenSlotUs: 1, freeTokens: 4 };
  const measured = [20000, 20500, 25000, 21000, 21500, 22000];
  const at32 = measured.map((us, i) => ({ tokens: i + 1, context: 32, us: us + (i + 1) * 32 }));
  const table = costTable(at32, line, 6)!;
  expect(table).toEqual([20000, 20500, 21000, 21000, 21500, 22000]); // the slot term off, never falling
  expect(costTable(at32.filter((p) => p.tokens !== 3), line, 6)).toBeNull(); // a size not measured
  const c = { ...line, table };
  expect(stepUs(c, 6, 0)).toBe(22000);
  expect(stepUs(line, 6, 0)).toBe(24000);
  expect(stepUs(c, 6, 10)).toBe(22000 + 60);
  expect(stepUs(c, 1.5, 0)).toBe(20250);
  expect(stepUs(c, 0.5, 0)).toBe(20000);
  expect(stepUs(c, 8, 0)).toBe(22000 + 2 * 2000);
  const costs: CostModel = { ...EAGER_COSTS, target: c };
  expect(stepUs(sharedTargetCost(costs, 4), 1, 0)).toBeCloseTo(20000 / 4, 9);
  expect(sharedTargetCost(costs, 4).table).toBeUndefined();
});

/** A draft whose every node's children have these probabilities by rank; counts what was fed. */
function standIn(probs: number[]): DraftSource & { fed: number[] } {
  const K = probs.length;
  let next = 10;
  const top = (rows: number) => ({
    ids: Int32Array.from({ length: rows * K }, () => next++),
    logp: Float32Array.from({ length: rows * K }, (_, i) => Math.log(probs[i % K])),
  });
  const fed: number[] = [];
  return {
    fed, rootRow: 0, contextLength: 100, rootTopK: () => top(1),
    *feed(level) {
      fed.push(level.tokens.length);
      return { top: top(level.tokens.length), slots: level.tokens.map((_, i) => 100 + fed.length * 64 + i) };
    },
  };
}

const CONFIDENT = [0.9, 0.04, 0.02, 0.01, 0.01, 0.01, 0.005, 0.005];
const FLAT = new Array(8).fill(0.01);

test("a confident draft under cheap verification: several passes, a deep tree of the best candidates", () => {
  const draft = standIn(CONFIDENT);
  const builder = new CostAwareTreeBuilder(AUTO_DEFAULTS, EAGER_COSTS);
  const tree = runDrafts(builder.build(draft, 1, 64));
  checkTree(tree);
  expect(draft.fed.length).toBeGreaterThan(2);
  expect(Math.max(...tree.depth)).toBeGreaterThan(2);
  expect(tree.tokens.length).toBeGreaterThan(8);
  expect(tree.tokens.length).toBeLessThanOrEqual(AUTO_DEFAULTS.maxNodes);
  expect(builder.stats.predictedTokens).toBeGreaterThan(3);
});

test("passes that cost more than they can earn are not fed; the root's candidates alone may still pay", () => {
  const dear: CostModel = { ...EAGER_COSTS, passUs: 1e7 };
  const draft = standIn(CONFIDENT);
  const tree = runDrafts(new CostAwareTreeBuilder(AUTO_DEFAULTS, dear).build(draft, 1, 64));
  expect(draft.fed).toEqual([]);
  expect(tree.tokens.length).toBeGreaterThan(1);
  expect(Math.max(...tree.depth)).toBe(1);
});

/** A calibration that hardly moves: the most outcomes it keeps, of tokens drafted at `p`, a share `accepted`
 * of them accepted. */
function frozenAt(p: number, accepted: number): AcceptanceCounts {
  const c = new AcceptanceCalibration();
  for (let i = 0; i < 4000; i++) c.observe(p, i % 10 < accepted * 10);
  return c.counts();
}

test("alpha converges to accepted draft tokens over the calibrated expectation, not to its square root", () => {
  // passes never pay and the tree holds one candidate (draft probability 0.9, calibrated as about 0.9), which
  // the target always accepts
  const builder = new CostAwareTreeBuilder(AUTO_DEFAULTS, { ...EAGER_COSTS, passUs: 1e7, acceptance: frozenAt(0.9, 0.9) });
  const draft = standIn(CONFIDENT);
  for (let round = 0; round < 200; round++) {
    const tree = runDrafts(builder.build(draft, 1, 2));
    expect(tree.tokens.length).toBe(2);
    builder.observe(tree, [0, 1]);
  }
  // the calibration moves a little with the rounds (it keeps a few thousand outcomes): alpha follows what is left
  expect(builder.calibration.map(0.9)).toBeLessThan(0.91);
  expect(Math.abs(builder.alpha - 1 / builder.calibration.map(0.9))).toBeLessThan(0.002); // fed back in: 1.05
});

test("calibration learns from the verified rounds what the draft's confidence is worth, and the expectation follows", () => {
  // the same rounds, the calibration free to learn: a candidate at 0.9 that is always accepted comes to be
  // expected as one token (calibration and alpha together)
  const builder = new CostAwareTreeBuilder(AUTO_DEFAULTS, { ...EAGER_COSTS, passUs: 1e7 });
  const draft = standIn(CONFIDENT);
  let expected = 0;
  for (let round = 0; round < 300; round++) {
    const before = builder.stats.predictedTokens;
    const tree = runDrafts(builder.build(draft, 1, 2));
    expected = builder.stats.predictedTokens - before;
    builder.observe(tree, [0, 1]);
  }
  expect(builder.calibration.map(0.9)).toBeGreaterThan(0.97);
  expect(expected).toBeCloseTo(2, 1);
});

test("a sampled sequence trusts the draft as it is: the greedy outcomes are not its law, and it does not learn", () => {
  const builder = new CostAwareTreeBuilder(AUTO_DEFAULTS, { ...EAGER_COSTS, acceptance: frozenAt(0.5, 1) });
  const draws = { sampling: { temperature: 1, topK: 0, topP: 1 }, rng: new Rng(1) };
  const tree = runDrafts(builder.build(standIn(CONFIDENT), 1, 64, draws));
  builder.observe(tree, [0]);
  for (const p of [0.1, 0.5, 0.9]) expect(builder.calibration.map(p)).toBeCloseTo(p, 9);
  // a greedy one starts from the measured outcomes
  const greedy = new CostAwareTreeBuilder(AUTO_DEFAULTS, { ...EAGER_COSTS, acceptance: frozenAt(0.5, 1) });
  runDrafts(greedy.build(standIn(CONFIDENT), 1, 64));
  expect(greedy.calibration.map(0.5)).toBeGreaterThan(0.95);
});

test("an under-confident draft, calibrated: a deeper line of its likely tokens and fewer unlikely siblings", () => {
  // children at 0.5 that the target accepts 95% of the time, siblings at 0.1 it accepts 1% of the time
  const probs = [0.5, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05];
  const c = new AcceptanceCalibration();
  for (let i = 0; i < 4000; i++) c.observe(probs[i % 8], i % 8 === 0 ? i % 160 !== 0 : i % 700 === 1);
  const counts = c.counts();
  const depth = (acceptance?: AcceptanceCounts) => {
    const tree = runDrafts(new CostAwareTreeBuilder({ ...AUTO_DEFAULTS, maxNodes: 6 }, { ...EAGER_COSTS, acceptance }).build(standIn(probs), 1, 64));
    checkTree(tree);
    return Math.max(...tree.depth);
  };
  expect(depth(undefined)).toBeLessThan(3); // trusted as it is: 0.5 then 0.25 lose to the 0.1 siblings
  expect(depth(counts)).toBe(5); // calibrated: the line of 0.95s, every node of the six
});

test("the tree stays within the context's room", () => {
  const tree = runDrafts(new CostAwareTreeBuilder(AUTO_DEFAULTS, EAGER_COSTS).build(standIn(CONFIDENT), 1, 5));
  expect(tree.tokens.length).toBeLessThanOrEqual(5);
  expect(runDrafts(new CostAwareTreeBuilder(AUTO_DEFAULTS, EAGER_COSTS).build(standIn(CONFIDENT), 1, 1)).tokens.length).toBe(1);
});

test("where no tree pays: two misses, then rests that double, looking again after each", () => {
  const builder = new CostAwareTreeBuilder(AUTO_DEFAULTS, { ...EAGER_COSTS, draft: { fixedUs: 900, perTokenUs: 2, perTokenSlotUs: 0 } });
  expect(builder.startsResting(100)).toBe(false); // a perfect draft could pay here
  const draft = standIn(FLAT);
  runDrafts(builder.build(draft, 1, 64)); // the best tree it can make still loses to a plain round plus the catch-up
  expect(builder.rests()).toBe(false); // the first miss
  runDrafts(builder.build(draft, 1, 64));
  expect(builder.rests()).toBe(true); // the second: rest for 16 rounds
  let resting = 0;
  while (!builder.wakes(100)) resting++;
  expect(resting).toBe(15);
  runDrafts(builder.build(draft, 1, 64));
  expect(builder.rests()).toBe(true); // after a rest one miss suffices, and the rest doubles
  resting = 0;
  while (!builder.wakes(100)) resting++;
  expect(resting).toBe(31);
});

test("where even a perfect draft could not pay, it rests from the start and never looks", () => {
  const builder = new CostAwareTreeBuilder(AUTO_DEFAULTS, STINGY_COSTS);
  expect(builder.startsResting(100)).toBe(true);
  for (let i = 0; i < 5000; i++) expect(builder.wakes(100)).toBe(false);
  expect(builder.stats.restingRounds).toBe(5000);
});

test("a run no draft could pay for even alone, at any of its contexts, decodes plainly; its rounds count as resting ones", () => {
  expect(new CostAwareTreeBuilder(AUTO_DEFAULTS, STINGY_COSTS).plainRun(5, 400)).not.toBeNull();
  expect(new CostAwareTreeBuilder(AUTO_DEFAULTS, PERFECT_PAYS_ALONE).plainRun(5, 400)).toBeNull(); // alone it pays
  // a draft whose passes grow dear with the context (attention over its cache) pays at short contexts only (at
  // 300 slots a chain of 3 still does, at 600 none), so a run is plain only where its whole span lies beyond them
  const shortOnly: CostModel = { ...PERFECT_PAYS_ALONE, draft: { fixedUs: 600, perTokenUs: 2, perTokenSlotUs: 2 } };
  const plainRun = (from: number, to: number) => new CostAwareTreeBuilder(AUTO_DEFAULTS, shortOnly).plainRun(from, to) !== null;
  expect(plainRun(100, 100)).toBe(false);
  expect(plainRun(3000, 3000)).toBe(true);
  expect(plainRun(300, 300)).toBe(false);
  expect(plainRun(600, 3000)).toBe(true);
  expect(plainRun(100, 3000)).toBe(false);
  // at the end: each round a resting one, priced as a plain step at its context (the root of round r at 5 + r)
  const builder = new CostAwareTreeBuilder(AUTO_DEFAULTS, STINGY_COSTS);
  const p = builder.plainRun(5, 400)!.finish(10, 1, false);
  let us = 0;
  for (let r = 0; r < 10; r++) us += STINGY_COSTS.roundUs + stepUs(STINGY_COSTS.target, 1, 5 + r);
  expect(p).toMatchObject({ tokens: 10, rounds: 10 });
  expect(p.us).toBeCloseTo(us, 6);
  expect(p.plainUs).toBeCloseTo(us, 6);
  expect(builder.stats).toMatchObject({ rounds: 10, restingRounds: 10, treeNodes: 10, minNodes: 1, maxNodes: 1 });
});

test("a plain run alone is set against its wall time in the cost model's review; one in a batch is not", () => {
  let stale = 0;
  const review = new CostReview(() => stale++);
  const costs: CostModel = { ...STINGY_COSTS, review };
  const run = () => new CostAwareTreeBuilder(AUTO_DEFAULTS, costs).plainRun(5, 400)!;
  const fast = 1e-3; // ms for all its rounds: far faster than predicted
  run().finish(300, fast, false); // in a batch: not comparable
  expect(stale).toBe(0);
  run().finish(100, fast, true); // fewer rounds than a verdict needs
  expect(stale).toBe(0);
  run().finish(200, fast, true);
  expect(stale).toBe(1);
});

test("EAGLE_COSTS: a cost model from a file, with a one-line error naming a bad field", () => {
  const dir = makeTempDir("eagle-costs-");
  const good = join(dir, "good.json");
  writeFileSync(good, JSON.stringify({ costs: EAGER_COSTS }));
  const bad = join(dir, "bad.json");
  writeFileSync(bad, JSON.stringify({ ...EAGER_COSTS, passUs: -1 }));
  const saved = process.env.EAGLE_COSTS;
  try {
    process.env.EAGLE_COSTS = good;
    expect(costsFor(null as never, null as never)).toEqual(EAGER_COSTS);
    process.env.EAGLE_COSTS = bad;
    expect(() => costsFor(null as never, null as never)).toThrow(/bad\.json: cost model field passUs must be a number >= 0/);
    // the optional fields: free rows, a table of measured sizes and a measured batch
    const full = { ...EAGER_COSTS, target: { ...EAGER_COSTS.target, freeTokens: 4, table: [900, 900, 950] }, batch: { oneUs: 1400, twoUs: 2200 } };
    writeFileSync(good, JSON.stringify({ costs: full }));
    process.env.EAGLE_COSTS = good;
    expect(costsFor(null as never, null as never)).toEqual(full);
    for (const [field, wrong] of [["target.freeTokens", { ...full, target: { ...full.target, freeTokens: -1 } }], ["batch.twoUs", { ...full, batch: { oneUs: 1 } }]] as const) {
      writeFileSync(bad, JSON.stringify(wrong));
      process.env.EAGLE_COSTS = bad;
      expect(() => costsFor(null as never, null as never)).toThrow(`bad.json: cost model field ${field} must be a number`);
    }
    for (const table of [[], [900, 800], [900, "x"], 5]) {
      writeFileSync(bad, JSON.stringify({ ...full, target: { ...full.target, table } }));
      process.env.EAGLE_COSTS = bad;
      expect(() => costsFor(null as never, null as never)).toThrow("bad.json: cost model field target.table must be a non-empty list of non-decreasing numbers > 0");
    }
    // and the measured acceptance
    const acceptance = frozenAt(0.5, 0.8);
    writeFileSync(good, JSON.stringify({ costs: { ...full, acceptance } }));
    process.env.EAGLE_COSTS = good;
    expect(costsFor(null as never, null as never)).toEqual({ ...full, acceptance });
    for (const [field, wrong] of [["acceptance.seen", { ...acceptance, seen: [1, 2] }], ["acceptance.accepted", { ...acceptance, accepted: acceptance.seen.map((n) => n + 1) }]] as const) {
      writeFileSync(bad, JSON.stringify({ ...full, acceptance: wrong }));
      process.env.EAGLE_COSTS = bad;
      expect(() => costsFor(null as never, null as never)).toThrow(`bad.json: cost model field ${field}`);
    }
    // and the first choices' acceptance by depth
    const chain = { seen: [20, 15, 9, 4, 0, 0, 0, 0], accepted: [15, 9, 4, 1, 0, 0, 0, 0], sampled: [12.5, 8.25, 3.5, 1, 0, 0, 0, 0] };
    writeFileSync(good, JSON.stringify({ costs: { ...full, chain } }));
    process.env.EAGLE_COSTS = good;
    expect(costsFor(null as never, null as never)).toEqual({ ...full, chain });
    for (const [field, wrong] of [["chain.seen", { ...chain, seen: [20, 15] }], ["chain.accepted", { ...chain, accepted: [0.5, 0, 0, 0, 0, 0, 0, 0] }],
      ["chain.accepted", { ...chain, accepted: chain.seen.map((n) => n + 1) }], ["chain.sampled", { ...chain, sampled: undefined }],
      ["chain.sampled", { ...chain, sampled: chain.seen.map((n) => n + 0.5) }]] as const) {
      writeFileSync(bad, JSON.stringify({ ...full, chain: wrong }));
      process.env.EAGLE_COSTS = bad;
      expect(() => costsFor(null as never, null as never)).toThrow(`bad.json: cost model field ${field}`);
    }
  } finally {
    if (saved === undefined) delete process.env.EAGLE_COSTS;
    else process.env.EAGLE_COSTS = saved;
  }
});

test("in a batch the target's fixed cost is shared: a tree that pays alone does not among 16", () => {
  // one more node earns 0.9 tokens for perTokenUs: worth it over a 1005 us plain step, not over a 67.5 us share of one
  const costs: CostModel = { ...EAGER_COSTS, target: { fixedUs: 1000, perTokenUs: 1000, perTokenSlotUs: 0 } };
  const alone = new CostAwareTreeBuilder(AUTO_DEFAULTS, costs);
  expect(runDrafts(alone.build(standIn(CONFIDENT), 1, 64)).tokens.length).toBeGreaterThan(1);
  expect(alone.rests()).toBe(false);
  expect(runDrafts(alone.build(standIn(CONFIDENT), 1, 64)).tokens.length).toBeGreaterThan(1);
  expect(alone.rests()).toBe(false); // it paid: no miss
  // among 16 no tree beats a plain round: two misses, and the drafter rests
  const among16 = new CostAwareTreeBuilder(AUTO_DEFAULTS, costs);
  runDrafts(among16.build({ ...standIn(CONFIDENT), sharing: 16 }, 1, 64));
  expect(among16.rests()).toBe(false);
  runDrafts(among16.build({ ...standIn(CONFIDENT), sharing: 16 }, 1, 64));
  expect(among16.rests()).toBe(true);
  // and a resting builder looks again alone, but not among 16, where even a perfect draft cannot pay
  expect(new CostAwareTreeBuilder(AUTO_DEFAULTS, costs).wakes(100, 1)).toBe(true);
  expect(new CostAwareTreeBuilder(AUTO_DEFAULTS, costs).wakes(100, 16)).toBe(false);
});

test("a sequence that joins a batch where even a perfect draft cannot pay rests from the start (its prompt never fed to the head)", () => {
  const costs = PERFECT_PAYS_ALONE;
  expect(new CostAwareTreeBuilder(AUTO_DEFAULTS, costs).startsResting(100, 1)).toBe(false);
  expect(new CostAwareTreeBuilder(AUTO_DEFAULTS, costs).startsResting(100)).toBe(false);
  const among8 = new CostAwareTreeBuilder(AUTO_DEFAULTS, costs);
  expect(among8.startsResting(100, 8)).toBe(true);
  // once the batch has emptied to this sequence alone, it looks again after its rest
  let resting = 0;
  while (!among8.wakes(100, 1)) resting++;
  expect(resting).toBeGreaterThan(0);
});

test("with the pair's first choices measured, a sequence rests from the start where no chain as good as them pays", () => {
  // greedy: `accepted` of 20 first choices accepted; sampled: probabilities summing to `sampled`
  const chain = (accepted: number, sampled = accepted) =>
    ({ seen: [20, 0, 0, 0, 0, 0, 0, 0], accepted: [accepted, 0, 0, 0, 0, 0, 0, 0], sampled: [sampled, 0, 0, 0, 0, 0, 0, 0] });
  // alone, a perfect draft's chain of 1 pays (2 tokens for ~4.6 ms against 3 ms a token): so does one accepted 19 times in 20
  expect(new CostAwareTreeBuilder(AUTO_DEFAULTS, { ...PERFECT_PAYS_ALONE, chain: chain(19) }).startsResting(100, 1)).toBe(false);
  // but not one accepted 6 times in 20: 1.3 tokens for ~4.6 ms, and deeper chains yield less per step
  const weak = { ...PERFECT_PAYS_ALONE, chain: chain(6) };
  const greedy = new CostAwareTreeBuilder(AUTO_DEFAULTS, weak);
  expect(greedy.startsResting(100, 1)).toBe(true);
  for (let i = 0; i < 3000; i++) expect(greedy.wakes(100, 1)).toBe(false); // and it never looks
  // a sampled run accepts a first choice with the target's probability of it, measured apart
  const sampled = { sampling: { temperature: 1, topK: 0, topP: 1 }, rng: new Rng(1) };
  expect(new CostAwareTreeBuilder(AUTO_DEFAULTS, { ...PERFECT_PAYS_ALONE, chain: chain(6, 19) }).startsResting(100, 1, sampled)).toBe(false);
  expect(new CostAwareTreeBuilder(AUTO_DEFAULTS, { ...PERFECT_PAYS_ALONE, chain: chain(19, 6) }).startsResting(100, 1, sampled)).toBe(true);
  // without the measurement, the bound is a draft that is always right
  expect(new CostAwareTreeBuilder(AUTO_DEFAULTS, PERFECT_PAYS_ALONE).startsResting(100, 1)).toBe(false);
  expect(new CostAwareTreeBuilder(AUTO_DEFAULTS, PERFECT_PAYS_ALONE).startsResting(100, 1, sampled)).toBe(false);
});
