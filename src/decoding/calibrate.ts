// calibrate.ts — the cost model of `--spec auto` (cost-model.ts) measured on this machine for one target
// and head at one device, dtype and thread count: target forwards of 1..64 tokens and draft passes of
// 1..16 at a short and a long context, fitted (and the target's 1..8 tokens kept as measured); the host's own time per plain round, per drafted round and
// per draft pass, from short real runs; and how often the target accepts the draft's tokens by the draft's
// confidence in them, from a short greedy run of the model's own text. Done
// once (a fraction of a second on stories260K, a few seconds on a 140M-parameter model on a CPU) and
// cached under the cache folder, keyed by everything that changes it.
// EAGLE_COSTS=FILE uses a cost model from a file instead (tests, reproducible runs).
import { rmSync } from "node:fs";
import { resolve } from "node:path";
import type { LoadedDraft } from "../model/draft.ts";
import type { LoadedModel } from "../model/loader.ts";
import { forwardBatch } from "../native/batch-forward.ts";
import { draftForward, forward, KvCache, type Model, StepOutput } from "../native/engine.ts";
import { EagleError } from "../util/errors.ts";
import { readTextFile } from "../util/files.ts";
import { AUTO_DEFAULTS, CostAwareTreeBuilder } from "./auto-tree.ts";
import { ACCEPTANCE_BINS, type AcceptanceCounts } from "./calibration.ts";
import { CHAIN_DEPTHS, type ChainCounts, countChain, emptyChainCounts } from "./chain-acceptance.ts";
import { CostReview } from "./cost-review.ts";
import { BATCH_PROBE, type BatchCost, type CostModel, costTable, fitStepCost, type Measurement, type StepCost, stepUs } from "./cost-model.ts";
import { decode, decodeSteps, isDraftCall, verify, type Verifier } from "./decode.ts";
import { type SamplingParams, targetDistribution } from "./sampling.ts";
import { EagleDrafter, type TreeBuilder } from "./eagle.ts";
import { cachedMeasurement, folderStamp, runtimeStamp } from "./measured-cache.ts";
import { PlainProposer, type Proposer } from "./proposer.ts";

const FORMAT = 12;
const TARGET_SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64];
const TABLE_SIZES = 8; // target sizes priced as measured (StepCost.table)
const DRAFT_SIZES = [1, 2, 4, 8, 16];
const SLOW_US = 100_000; // a size this slow ends its series: larger ones will not be chosen anyway
const T1: SamplingParams = { temperature: 1, topK: 0, topP: 1 }; // the law a sampled run's chain is priced by
const ACCEPTANCE_ROUNDS = 72; // the acceptance run's rounds at most (its 128 tokens take ~68 on the grown stories pair)

/** The cost model for this target and head: from EAGLE_COSTS, the cache, or measured now (and cached). */
export function costsFor(target: LoadedModel, head: LoadedDraft): CostModel {
  const fixed = process.env.EAGLE_COSTS;
  if (fixed) return readCostFile(fixed);
  const { value: costs, file } = cachedMeasurement("costs", cacheKey(target, head), "auto: measuring this machine's step costs (once)...",
    () => measureCosts(target, head), checkCosts);
  // runs check a cached model against their real rounds: one measured on a busy machine is dropped
  if (file) costs.review = new CostReview(() => rmSync(file, { force: true }));
  return costs;
}

function readCostFile(path: string): CostModel {
  let raw: unknown;
  try {
    raw = JSON.parse(readTextFile(path, "cost model (EAGLE_COSTS)"));
  } catch (e) {
    if (e instanceof EagleError) throw e;
    throw new EagleError(`${path}: cost model (EAGLE_COSTS) is not JSON: ${(e as Error).message}`);
  }
  const r = raw as { costs?: unknown };
  return checkCosts(r && typeof r === "object" && "costs" in r ? r.costs : raw, path);
}

function checkCosts(raw: unknown, where: string): CostModel {
  // obj[key] as a finite number >= 0 (> 0 when `positive`), or a one-line error naming `field`
  const num = (obj: unknown, key: string, field: string, positive = false): number => {
    const v = (obj as Record<string, unknown> | null | undefined)?.[key];
    if (typeof v !== "number" || !Number.isFinite(v) || !(positive ? v > 0 : v >= 0)) {
      throw new EagleError(`${where}: cost model field ${field} must be a number ${positive ? "> 0" : ">= 0"}`);
    }
    return v;
  };
  const step = (v: unknown, field: string): StepCost => {
    const fit: StepCost = {
      fixedUs: num(v, "fixedUs", `${field}.fixedUs`), perTokenUs: num(v, "perTokenUs", `${field}.perTokenUs`),
      perTokenSlotUs: num(v, "perTokenSlotUs", `${field}.perTokenSlotUs`),
    };
    const o = v as Record<string, unknown>;
    if (o.freeTokens !== undefined) fit.freeTokens = num(v, "freeTokens", `${field}.freeTokens`);
    if (o.table !== undefined) {
      const t = o.table;
      if (!Array.isArray(t) || t.length === 0 || !t.every((x, i) => typeof x === "number" && Number.isFinite(x) && x > 0 && (i === 0 || x >= t[i - 1]))) {
        throw new EagleError(`${where}: cost model field ${field}.table must be a non-empty list of non-decreasing numbers > 0`);
      }
      fit.table = t;
    }
    return fit;
  };
  const c = raw as Record<string, unknown>;
  if (!c || typeof c !== "object") throw new EagleError(`${where}: cost model must be an object`);
  const [roundUs, buildUs, passUs] = ["roundUs", "buildUs", "passUs"].map((k) => num(c, k, k));
  const target = step(c.target, "target");
  if (!(stepUs(target, 1, 0) > 0)) throw new EagleError(`${where}: cost model target step must cost more than 0`);
  const costs: CostModel = { target, draft: step(c.draft, "draft"), roundUs, buildUs, passUs };
  if (c.batch !== undefined) costs.batch = { oneUs: num(c.batch, "oneUs", "batch.oneUs", true), twoUs: num(c.batch, "twoUs", "batch.twoUs", true) };
  if (c.acceptance !== undefined) costs.acceptance = checkAcceptance(c.acceptance, where);
  if (c.chain !== undefined) costs.chain = checkChain(c.chain, where);
  return costs;
}

// chain: per depth, seen and accepted counts (integers) and sampled, the summed probabilities
function checkChain(raw: unknown, where: string): ChainCounts {
  const depths = (key: keyof ChainCounts, integers: boolean): number[] => {
    const v = (raw as Record<string, unknown> | null)?.[key];
    const ok = (x: unknown) => typeof x === "number" && Number.isFinite(x) && x >= 0 && (!integers || Number.isInteger(x));
    if (!Array.isArray(v) || v.length !== CHAIN_DEPTHS || !v.every(ok)) {
      throw new EagleError(`${where}: cost model field chain.${key} must be ${CHAIN_DEPTHS} ${integers ? "integers" : "numbers"} >= 0`);
    }
    return v;
  };
  const counts = { seen: depths("seen", true), accepted: depths("accepted", true), sampled: depths("sampled", false) };
  for (const key of ["accepted", "sampled"] as const) {
    if (counts[key].some((a, d) => a > counts.seen[d])) {
      throw new EagleError(`${where}: cost model field chain.${key}: a depth accepted more tokens than it saw`);
    }
  }
  return counts;
}

function checkAcceptance(raw: unknown, where: string): AcceptanceCounts {
  const bins = (key: keyof AcceptanceCounts, least: number): number[] => {
    const v = (raw as Record<string, unknown> | null)?.[key];
    if (!Array.isArray(v) || v.length !== ACCEPTANCE_BINS || !v.every((x) => typeof x === "number" && Number.isFinite(x) && x >= least)) {
      throw new EagleError(`${where}: cost model field acceptance.${key} must be ${ACCEPTANCE_BINS} numbers${least === -Infinity ? "" : " >= 0"}`);
    }
    return v;
  };
  const counts = { seen: bins("seen", 0), accepted: bins("accepted", 0), sumX: bins("sumX", -Infinity) };
  if (counts.accepted.some((a, k) => a > counts.seen[k])) {
    throw new EagleError(`${where}: cost model field acceptance.accepted: a bin accepted more tokens than it saw`);
  }
  return counts;
}

// the files and settings a measurement depends on
function cacheKey(target: LoadedModel, head: LoadedDraft): string {
  return JSON.stringify({
    format: FORMAT, target: resolve(target.dir), targetFiles: folderStamp(target.dir), head: resolve(head.dir),
    headFiles: folderStamp(head.dir), ...runtimeStamp(target),
    ...(head.dtype !== target.placement.dtype ? { headDtype: head.dtype } : {}), // keys before it stay valid
  });
}

/** One size of a series to time: its run, and what it measures. */
interface Timed<T> {
  run: () => void;
  what: T;
}

/**
 * The best of a few runs of each size, in microseconds, the sizes interleaved: a round runs every size
 * once, so that a burst of load on a shared machine slows one round of every size, not every run of one
 * (which once priced a one-token step 40% high and a cached calibration kept the error). The first round
 * warms up and ends each series at its first size slower than SLOW_US; a size slower than 20 ms is run
 * once more, the others until the budget is spent (at least twice, at most 7 times).
 */
function timeInterleaved<T>(series: Timed<T>[][]): { what: T; us: number }[][] {
  const once = (run: () => void): number => {
    const t0 = performance.now();
    run();
    return (performance.now() - t0) * 1000;
  };
  const timed = series.map((s) => {
    const sizes: { run: () => void; what: T; us: number; slow: boolean }[] = [];
    for (const { run, what } of s) {
      const first = once(run);
      sizes.push({ run, what, us: first > 20_000 ? first : Infinity, slow: first > 20_000 });
      if (first > SLOW_US) break;
    }
    return sizes;
  });
  const all = timed.flat();
  const budget = 40_000 * all.length;
  let spent = 0;
  for (let rep = 0; rep < 7 && (rep < 2 || spent < budget); rep++) {
    for (const size of all) {
      if (size.slow && rep > 0) continue;
      const us = once(size.run);
      size.us = Math.min(size.us, us);
      spent += us;
    }
  }
  return timed.map((sizes) => sizes.map(({ what, us }) => ({ what, us })));
}

const ids = (n: number, vocab: number, salt: number) => Int32Array.from({ length: n }, (_, i) => 3 + ((i * 7919 + salt) % (vocab - 3)));

/** What one forward's timing runs with: the model and its cache at a prefilled context, and the outputs. */
interface Bench {
  model: Model;
  kv: KvCache;
  out: StepOutput;
  ctx: number;
  vocab: number;
}

// target forwards of n tokens (a chain, as a tree's verification: forward, argmax, roll back), their inputs
// made before timing: the host's own work is measured in real rounds (hostPerRound)
function targetRuns(b: Bench, sizes: number[]): Timed<number>[] {
  return sizes.map((n) => {
    const batch = { tokens: ids(n, b.vocab, n), positions: Int32Array.from({ length: n }, (_, i) => b.ctx + i), mask: chainMask(n) };
    return {
      what: n,
      run: () => {
        forward(b.model, b.kv, batch, b.out);
        b.out.argmax();
        b.kv.truncate(b.ctx);
      },
    };
  });
}

// draft passes of w nodes (a tree level: forward, top-k, roll back), reading the target's features in `feats`
function draftRuns(b: Bench, feats: StepOutput): Timed<number>[] {
  return DRAFT_SIZES.map((w) => {
    const cols = b.ctx + w; // the draft's mask for a level: the committed prefix and itself
    const mask = new Uint8Array(w * cols);
    for (let i = 0; i < w; i++) {
      mask.fill(1, i * cols, i * cols + b.ctx);
      mask[i * cols + b.ctx + i] = 1;
    }
    const batch = { tokens: ids(w, b.vocab, w), positions: new Int32Array(w).fill(b.ctx), mask, maskCols: cols };
    const featureRows = new Int32Array(w).fill(b.ctx - 1);
    return {
      what: w,
      run: () => {
        draftForward(b.model, b.kv, batch, feats, featureRows, b.out);
        b.out.topk(8);
        b.kv.truncate(b.ctx);
      },
    };
  });
}

/** Measures the target's and the draft's step costs and the host's time per round (see the file comment). */
export function measureCosts(target: LoadedModel, head: LoadedDraft): CostModel {
  const maxPos = target.config.maxPositions;
  const contexts = [...new Set([Math.min(32, maxPos >> 2), Math.min(256, maxPos >> 1)])];
  const capacity = Math.max(...contexts) + 64;
  const vocab = target.config.vocabSize;
  const kv = KvCache.create(target.model, capacity);
  const dkv = KvCache.create(head.model, capacity);
  const [out, feats, dout] = [StepOutput.create(), StepOutput.create(), StepOutput.create()];
  const targetPoints: Measurement[] = [];
  const draftPoints: Measurement[] = [];
  try {
    for (const ctx of contexts) {
      kv.truncate(0);
      dkv.truncate(0);
      const prompt = ids(ctx, vocab, ctx);
      const positions = Int32Array.from(prompt, (_, i) => i);
      forward(target.model, kv, { tokens: prompt, positions }, feats);
      draftForward(head.model, dkv, { tokens: prompt, positions }, feats, positions, dout);
      // the long context only has to show the slot term: fewer sizes there
      const sizes = (ctx === contexts[0] ? TARGET_SIZES : TARGET_SIZES.filter((s) => s === 1 || s === 8 || s === 32))
        .filter((s) => ctx + s <= capacity);
      const [t, d] = timeInterleaved([
        targetRuns({ model: target.model, kv, out, ctx, vocab }, sizes),
        draftRuns({ model: head.model, kv: dkv, out, ctx, vocab }, dout),
      ]);
      for (const { what, us } of t) targetPoints.push({ tokens: what, context: ctx, us });
      for (const { what, us } of d) draftPoints.push({ tokens: what, context: ctx, us });
    }
  } finally {
    for (const h of [out, feats, dout, kv, dkv]) h.dispose();
  }
  const costs: CostModel = { target: fitStepCost(targetPoints), draft: fitStepCost(draftPoints), roundUs: 0, buildUs: 0, passUs: 0 };
  const table = costTable(targetPoints.filter((p) => p.context === contexts[0]), costs.target, TABLE_SIZES);
  if (table) costs.target.table = table;
  // the batch probe prefills BATCH_PROBE short prompts: skipped where a step takes a second
  if (!(stepUs(costs.target, 1, contexts[0]) > 10 * SLOW_US)) costs.batch = batchCost(target, contexts[0]);
  costs.roundUs = hostUsPerRound(target, costs);
  Object.assign(costs, draftHostUs(target, head, costs, costs.roundUs));
  const measured = measureAcceptance(target, head, costs);
  if (measured) Object.assign(costs, measured);
  return costs;
}

/** Batched target forwards at context `ctx`: BATCH_PROBE sequences, one new token each, then two each. */
function batchCost(target: LoadedModel, ctx: number): BatchCost {
  const vocab = target.config.vocabSize;
  const caches = Array.from({ length: BATCH_PROBE }, () => KvCache.create(target.model, ctx + 2));
  const outs = caches.map(() => StepOutput.create());
  try {
    caches.forEach((kv, i) => {
      const prompt = ids(ctx, vocab, 100 + i);
      forward(target.model, kv, { tokens: prompt, positions: Int32Array.from(prompt, (_, t) => t) }, outs[i]);
    });
    const timed = (n: number) => ({
      what: n,
      run: () => {
        forwardBatch(target.model, caches.map((kv, i) => ({
          kv, out: outs[i], batch: { tokens: ids(n, vocab, n + i), positions: Int32Array.from({ length: n }, (_, t) => ctx + t), mask: chainMask(n) },
        })));
        for (const out of outs) out.argmax();
        for (const kv of caches) kv.truncate(ctx);
      },
    });
    const [[one], [two]] = timeInterleaved([[timed(1)], [timed(2)]]); // two series: neither ends the other
    return { oneUs: one.us, twoUs: two.us };
  } finally {
    for (const h of [...caches, ...outs]) h.dispose();
  }
}

// a builder that drafts every round (it never rests), for timing drafted rounds
function drafting(b: CostAwareTreeBuilder): TreeBuilder {
  return {
    maxTreeNodes: b.maxTreeNodes,
    maxFedNodes: b.maxFedNodes,
    build: (draft, root, maxNodes) => b.build(draft, root, maxNodes),
    observe: (tree, path) => b.observe(tree, path),
  };
}

const FREE: StepCost = { fixedUs: 0, perTokenUs: 0, perTokenSlotUs: 0 };

/** Costs that make a builder draft every round: a target step so dear that every node rides on it, and
 * draft passes at `draft` (free: every pass pays). */
function forcedCosts(draft: StepCost): CostModel {
  return { target: { ...FREE, fixedUs: 1e6 }, draft, roundUs: 0, buildUs: 0, passUs: 0 };
}

/** A short greedy run from a fixed prompt, its forwards run here: host time per round (its decode time less
 * its native time) and draft passes fed per round, the best of `reps` runs (the first ones warm the JIT). */
function hostPerRound(target: LoadedModel, makeProposer: () => Proposer, tokens: number, reps: number): { us: number; passes: number } {
  const prompt = Array.from(ids(16, target.config.vocabSize, 1));
  let best = { us: Infinity, passes: 0 };
  for (let rep = 0; rep < reps; rep++) {
    const steps = decodeSteps(target, prompt, { maxNewTokens: tokens, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 1, stopIds: [] },
      makeProposer());
    let passes = 0;
    let step = steps.next();
    for (; !step.done; step = steps.next()) {
      const e = step.value;
      if (typeof e === "number") continue;
      if (!isDraftCall(e)) forward(target.model, e.kv, e.batch, e.out);
      else {
        if (e.batch.mask) passes++; // a tree level (catch-ups have no mask)
        draftForward(e.head, e.kv, e.batch, e.features, e.featureRows, e.out);
      }
    }
    const s = step.value;
    const rounds = Math.max(1, s.targetForwards);
    const us = ((s.decodeMs - s.nativeMs) * 1000) / rounds;
    if (us < best.us) best = { us, passes: passes / rounds };
  }
  return best;
}

/**
 * The host's own time for drafting, from short real runs with the head whose every round drafts: buildUs,
 * a drafted round's time beyond a plain round's (the builder's planning, the root's candidates, the catch-up's
 * and the tree's bookkeeping), under costs where no draft pass pays (the tree is the root's candidates);
 * passUs, each pass's, under costs where every pass pays (the deepest, widest trees). Timed as real rounds
 * run, with the rest of the loop between them, not in a loop of the builder alone: that warmer figure was a
 * third of what a drafted round costs in a short run.
 */
function draftHostUs(target: LoadedModel, head: LoadedDraft, costs: CostModel, roundUs: number): { buildUs: number; passUs: number } {
  const slow = stepUs(costs.target, 1, 16) > 2000;
  const tokens = Math.min(slow ? 4 : 48, target.config.maxPositions - 17);
  if (tokens < 4) return { buildUs: 0, passUs: 0 };
  // a slow model's deep rounds are kept small (two passes, 16 nodes): its verification would take seconds
  const params = slow ? { ...AUTO_DEFAULTS, maxDepth: 2, maxNodes: 16 } : AUTO_DEFAULTS;
  const forced = (draft: StepCost) => () => new EagleDrafter(head, drafting(new CostAwareTreeBuilder(params, forcedCosts(draft))));
  const reps = slow ? 4 : 6;
  const shallow = hostPerRound(target, forced({ ...FREE, fixedUs: 1e12 }), tokens, reps);
  const deep = hostPerRound(target, forced(FREE), tokens, reps);
  const perPass = (deep.us - shallow.us) / Math.max(1e-9, deep.passes - shallow.passes);
  return { buildUs: Math.max(0, shallow.us - roundUs), passUs: deep.passes > shallow.passes ? Math.max(0, perPass) : 0 };
}

/**
 * How often the target accepts the draft's tokens by the draft's confidence (calibration.ts), and its first
 * choices by depth (chain-acceptance.ts): a greedy run
 * of the model's own text after its BOS token (a fixed prompt where it has none), each round verifying a
 * deep, wide tree so that every level of confidence is seen (a few hundred outcomes). A slow model's trees
 * are smaller, and one whose step takes over 60 ms is not run (its sequences learn from their own rounds
 * alone).
 */
function measureAcceptance(target: LoadedModel, head: LoadedDraft, costs: CostModel): { acceptance: AcceptanceCounts; chain: ChainCounts } | null {
  const stepMs = stepUs(costs.target, 1, 16) / 1000;
  const bos = target.config.bosTokenId;
  const prompt = bos !== null ? [bos] : Array.from(ids(16, target.config.vocabSize, 1));
  // a fast model's deep trees take 128 tokens in a score of rounds (stories260K: 20), too few to say how far the
  // first choices carry: it runs on to ACCEPTANCE_ROUNDS, as its context allows (a few dozen milliseconds)
  const tokens = Math.min(stepMs < 60 ? (stepMs < 1 ? 1024 : 128) : 0, target.config.maxPositions - prompt.length - 64);
  if (tokens < 8) return null;
  // a slow model's trees are smaller: 24 nodes, 3 passes (on the grown stories pair at two threads 1.5 s,
  // ~460 outcomes, a curve within 0.02 of what 1925 outcomes from 8 prompts gave; 64 tokens' 241 were 0.08 off)
  const params = stepMs < 5 ? AUTO_DEFAULTS : { ...AUTO_DEFAULTS, maxDepth: 3, maxNodes: 24 };
  // every pass pays and every node rides on the step: the widest, deepest trees the limits allow
  const builder = new CostAwareTreeBuilder(params, forcedCosts(FREE));
  // a head the target seldom agrees with yields a token a round: the rounds are bounded too
  const stop = () => builder.stats.rounds >= ACCEPTANCE_ROUNDS;
  const chain = emptyChainCounts();
  const row = new Float32Array(target.config.vocabSize);
  const counting: Verifier = (tree, out, sampling, rng, vocab, drawAt) => {
    const verdict = verify(tree, out, sampling, rng, vocab, drawAt);
    countChain(chain, tree, verdict.path, (node, token) => targetDistribution(out.logitsRow(node, row), T1)[token]);
    return verdict;
  };
  const run = decode(target, prompt, { maxNewTokens: tokens, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 1, stopIds: [], stop },
    new EagleDrafter(head, drafting(builder)), counting);
  for (let step = run.next(); !step.done; step = run.next());
  return { acceptance: builder.calibration.counts(), chain };
}

function chainMask(n: number): Uint8Array {
  const mask = new Uint8Array(n * n);
  for (let i = 0; i < n; i++) mask.fill(1, i * n, i * n + i + 1);
  return mask;
}

/** A short plain run's time per round outside the shim: what the loop itself costs a round. A slow model
 * gets shorter runs, the second of two counting (the first warms the JIT): this time does not grow with the
 * model. */
function hostUsPerRound(target: LoadedModel, costs: CostModel): number {
  const slow = stepUs(costs.target, 1, 16) > 2000;
  const tokens = Math.min(slow ? 5 : 48, target.config.maxPositions - 17);
  if (tokens < 4) return 0;
  return Math.max(0, hostPerRound(target, () => new PlainProposer(), tokens, slow ? 4 : 6).us);
}
