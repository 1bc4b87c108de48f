// calibrate.ts — the cost model of `--spec auto` (cost-model.ts) measured on this machine for one target
// and head at one device, dtype and thread count: target forwards of 1..64 tokens and draft passes of
// 1..16 at a short and a long context, fitted; the host's time per round from a short plain run. Done
// once (a fraction of a second on stories260K, a few seconds on a 140M-parameter model on a CPU) and
// cached under the cache folder, keyed by everything that changes it.
// EAGLE_COSTS=FILE uses a cost model from a file instead (tests, reproducible runs).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { LoadedDraft } from "../model/draft.ts";
import type { LoadedModel } from "../model/loader.ts";
import { forwardBatch } from "../native/batch-forward.ts";
import { cpuKernels, draftForward, forward, KvCache, StepOutput, threadCount, type TopK, torchVersion } from "../native/engine.ts";
import { shimPath } from "../native/ffi.ts";
import { writeFileAtomic } from "../util/atomic-write.ts";
import { cacheDir } from "../util/cache-dir.ts";
import { EagleError } from "../util/errors.ts";
import { readTextFile } from "../util/files.ts";
import { clearStatus, showStatus } from "../util/status-line.ts";
import { AUTO_DEFAULTS, CostAwareTreeBuilder } from "./auto-tree.ts";
import { BATCH_PROBE, type BatchCost, type CostModel, fitStepCost, type Measurement, type StepCost, stepUs } from "./cost-model.ts";
import { decode } from "./decode.ts";
import type { DraftSource } from "./eagle.ts";
import { runDrafts } from "./proposer.ts";

const FORMAT = 7;
const TARGET_SIZES = [1, 2, 4, 8, 16, 32, 64];
const DRAFT_SIZES = [1, 2, 4, 8, 16];
const SLOW_US = 100_000; // a size this slow ends its series: larger ones will not be chosen anyway

/** The cost model for this target and head: from EAGLE_COSTS, the cache, or measured now (and cached). */
export function costsFor(target: LoadedModel, head: LoadedDraft): CostModel {
  const fixed = process.env.EAGLE_COSTS;
  if (fixed) return readCostFile(fixed);
  const key = cacheKey(target, head);
  const dir = cacheDir();
  const file = dir ? join(dir, "costs", `${createHash("sha256").update(key).digest("hex").slice(0, 24)}.json`) : null;
  if (file && existsSync(file)) {
    try {
      const cached = JSON.parse(readFileSync(file, "utf8"));
      if (cached.key === key) return checkCosts(cached.costs, file);
    } catch {
      // unreadable or from another version: measured again below and rewritten
    }
  }
  showStatus("auto: measuring this machine's step costs (once)...");
  const costs = measureCosts(target, head);
  clearStatus();
  if (file) {
    try {
      mkdirSync(dirname(file), { recursive: true });
      writeFileAtomic(file, `${JSON.stringify({ key, costs, measured: new Date().toISOString() }, null, 2)}\n`);
    } catch {
      // a cache that cannot be written only means measuring again next time
    }
  }
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
    if ((v as Record<string, unknown>).freeTokens !== undefined) fit.freeTokens = num(v, "freeTokens", `${field}.freeTokens`);
    return fit;
  };
  const c = raw as Record<string, unknown>;
  if (!c || typeof c !== "object") throw new EagleError(`${where}: cost model must be an object`);
  const [roundUs, buildUs, passUs] = ["roundUs", "buildUs", "passUs"].map((k) => num(c, k, k));
  const target = step(c.target, "target");
  if (!(stepUs(target, 1, 0) > 0)) throw new EagleError(`${where}: cost model target step must cost more than 0`);
  const costs: CostModel = { target, draft: step(c.draft, "draft"), roundUs, buildUs, passUs };
  if (c.batch !== undefined) costs.batch = { oneUs: num(c.batch, "oneUs", "batch.oneUs", true), twoUs: num(c.batch, "twoUs", "batch.twoUs", true) };
  return costs;
}

function fileStamp(path: string): string {
  const st = statSync(path);
  return `${st.size}:${st.mtimeMs}`;
}

// the files and settings a measurement depends on (the shim's build too: a new one may be faster)
function cacheKey(target: LoadedModel, head: LoadedDraft): string {
  const files = (dir: string) => readdirSync(dir).filter((f) => /\.(json|safetensors|bin)$/.test(f)).sort().map((f) => {
    const st = statSync(join(dir, f));
    return `${f}:${st.size}:${st.mtimeMs}`;
  });
  return JSON.stringify({
    format: FORMAT, target: resolve(target.dir), targetFiles: files(target.dir), head: resolve(head.dir),
    headFiles: files(head.dir), placement: target.placement, threads: threadCount(), kernels: cpuKernels(),
    torch: torchVersion(), shim: fileStamp(shimPath()),
  });
}

/** The best of a few timed runs, in microseconds, after one to warm up; a slow run (a large model) is
 * its own warm-up and is repeated once. */
function timeUs(run: () => void): number {
  const t = performance.now();
  run();
  const first = (performance.now() - t) * 1000;
  let best = first > 20_000 ? first : Infinity;
  for (let rep = 0, spent = 0; rep < (first > 20_000 ? 1 : 7) && (rep < 2 || spent < 40_000); rep++) {
    const t0 = performance.now();
    run();
    const us = (performance.now() - t0) * 1000;
    best = Math.min(best, us);
    spent += us;
  }
  return best;
}

const ids = (n: number, vocab: number, salt: number) => Int32Array.from({ length: n }, (_, i) => 3 + ((i * 7919 + salt) % (vocab - 3)));

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
      const sizes = ctx === contexts[0] ? TARGET_SIZES : TARGET_SIZES.filter((s) => s === 1 || s === 8 || s === 32);
      for (const n of sizes.filter((s) => ctx + s <= capacity)) {
        const us = timeUs(() => {
          forward(target.model, kv, { tokens: ids(n, vocab, n), positions: Int32Array.from({ length: n }, (_, i) => ctx + i),
            mask: chainMask(n) }, out);
          out.argmax();
          kv.truncate(ctx);
        });
        targetPoints.push({ tokens: n, context: ctx, us });
        if (us > SLOW_US) break;
      }
      for (const w of DRAFT_SIZES) {
        const us = timeUs(() => {
          const cols = ctx + w; // the draft's mask for a level: the committed prefix and itself
          const mask = new Uint8Array(w * cols);
          for (let i = 0; i < w; i++) {
            mask.fill(1, i * cols, i * cols + ctx);
            mask[i * cols + ctx + i] = 1;
          }
          draftForward(head.model, dkv, { tokens: ids(w, vocab, w), positions: new Int32Array(w).fill(ctx), mask, maskCols: cols },
            dout, new Int32Array(w).fill(ctx - 1), out);
          out.topk(8);
          dkv.truncate(ctx);
        });
        draftPoints.push({ tokens: w, context: ctx, us });
        if (us > SLOW_US) break;
      }
    }
  } finally {
    for (const h of [out, feats, dout, kv, dkv]) h.dispose();
  }
  const builder = builderUs();
  const costs: CostModel = { target: fitStepCost(targetPoints), draft: fitStepCost(draftPoints), roundUs: 0, ...builder };
  // the batch probe prefills BATCH_PROBE short prompts: skipped where a step takes a second
  if (!(stepUs(costs.target, 1, contexts[0]) > 10 * SLOW_US)) costs.batch = batchCost(target, contexts[0]);
  costs.roundUs = hostUsPerRound(target, costs);
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
    const timed = (n: number) => timeUs(() => {
      forwardBatch(target.model, caches.map((kv, i) => ({
        kv, out: outs[i], batch: { tokens: ids(n, vocab, n + i), positions: Int32Array.from({ length: n }, (_, t) => ctx + t), mask: chainMask(n) },
      })));
      for (const out of outs) out.argmax();
      for (const kv of caches) kv.truncate(ctx);
    });
    return { oneUs: timed(1), twoUs: timed(2) };
  } finally {
    for (const h of [...caches, ...outs]) h.dispose();
  }
}

/**
 * The auto tree builder's own time per drafted round and per draft pass, timed against a stand-in draft
 * that answers at once (so only the builder's work counts): rounds under costs where no pass pays, then
 * under costs where every pass does (the widest, deepest trees). Each after enough rounds to warm the JIT.
 */
export function builderUs(): { buildUs: number; passUs: number } {
  const params = AUTO_DEFAULTS;
  const K = params.topK;
  const logp = Float32Array.from({ length: K }, (_, r) => Math.log(0.7 / (r + 1) ** 2));
  // made once per row count: the stand-in's own work must not count as the builder's
  const tops = new Map<number, TopK>();
  const top = (rows: number): TopK => {
    let t = tops.get(rows);
    if (!t) {
      t = { ids: Int32Array.from({ length: rows * K }, (_, i) => 3 + i), logp: Float32Array.from({ length: rows * K }, (_, i) => logp[i % K]) };
      tops.set(rows, t);
    }
    return t;
  };
  let fed = 0;
  const stand: DraftSource = {
    rootRow: 0,
    contextLength: 64,
    rootTopK: () => top(1),
    *feed(level) {
      fed++;
      return { top: top(level.tokens.length), slots: level.tokens.map((_, i) => 64 + i) };
    },
  };
  const zero = { fixedUs: 0, perTokenUs: 0, perTokenSlotUs: 0 };
  // a round's time, the best of a few batches after as many rounds to warm up: the JIT keeps optimising
  // well past the first few hundred rounds, and a cold figure overprices drafting by 2-3x
  const perRound = (draft: StepCost, rounds: number): { us: number; fed: number } => {
    const builder = new CostAwareTreeBuilder(params, { target: { ...zero, fixedUs: 1e6 }, draft, roundUs: 0, buildUs: 0, passUs: 0 });
    for (let i = 0; i < rounds; i++) runDrafts(builder.build(stand, 1, params.maxNodes)); // warm-up
    let us = Infinity;
    fed = 0;
    for (let batch = 0; batch < 4; batch++) {
      const t0 = performance.now();
      for (let i = 0; i < rounds / 2; i++) runDrafts(builder.build(stand, 1, params.maxNodes));
      us = Math.min(us, ((performance.now() - t0) * 1000) / (rounds / 2));
    }
    return { us, fed: fed / (2 * rounds) }; // the rounds are alike: each feeds as many passes
  };
  const buildUs = perRound({ ...zero, fixedUs: 1e12 }, 2000).us;
  const deep = perRound(zero, 150);
  return { buildUs, passUs: Math.max(0, deep.us - buildUs) / Math.max(1, deep.fed) };
}

function chainMask(n: number): Uint8Array {
  const mask = new Uint8Array(n * n);
  for (let i = 0; i < n; i++) mask.fill(1, i * n, i * n + i + 1);
  return mask;
}

/** A short plain run's time per round outside the shim (its decode time less its native time): what the
 * loop itself costs a round. A slow model gets a shorter run: this time does not grow with the model. */
function hostUsPerRound(target: LoadedModel, costs: CostModel): number {
  const prompt = Array.from(ids(16, target.config.vocabSize, 1));
  const slow = stepUs(costs.target, 1, prompt.length) > 2000;
  const tokens = Math.min(slow ? 5 : 48, target.config.maxPositions - prompt.length - 1);
  if (tokens < 4) return 0;
  let best = Infinity;
  for (let rep = 0; rep < (slow ? 1 : 6); rep++) { // the first runs warm the JIT up
    const run = decode(target, prompt, { maxNewTokens: tokens, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 1, stopIds: [] });
    let step = run.next();
    while (!step.done) step = run.next();
    const s = step.value;
    best = Math.min(best, ((s.decodeMs - s.nativeMs) * 1000) / Math.max(1, s.targetForwards));
  }
  return Math.max(0, best);
}
