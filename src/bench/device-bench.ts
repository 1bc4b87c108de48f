// device-bench.ts — the step times that decide EAGLE's speed on a device, measured on a synthetic model
// at a fixed context: a one-token target step, target verification of 26- and 60-node trees, a draft-head
// step, and the copy bandwidth that bounds a memory-bound step. Each measured step does what the decode
// loop does (forward, then the reader the algorithm needs) and puts the cache back, so every iteration
// sees the same context; the device is synced before and after each timed run.
import { copyBandwidth, DeviceCode, deviceSync, draftForward, forward, KvCache, StepOutput } from "../native/engine.ts";
import type { LoadedDraft } from "../model/draft.ts";
import { type Candidate, rerankTree, selectFrontier } from "../decoding/dynamic-tree.ts";
import { EAGLE2_DEFAULTS } from "../decoding/eagle2.ts";
import type { LoadedModel } from "../model/loader.ts";
import { EAGLE1_DEFAULT_CHOICES, instantiate, planStaticTree } from "../decoding/static-tree.ts";
import { type DraftTree, treeMask } from "../decoding/tree.ts";

export interface Timing {
  warmup: number; // untimed runs first
  iters: number;  // timed runs; the result is their mean
}

/** Mean milliseconds of `step`, timed between device syncs. */
export function timeSteps(device: DeviceCode, t: Timing, step: () => void): number {
  for (let i = 0; i < t.warmup; i++) step();
  deviceSync(device);
  const t0 = performance.now();
  for (let i = 0; i < t.iters; i++) step();
  deviceSync(device);
  return (performance.now() - t0) / t.iters;
}

/** Copy bandwidth, bytes read + written per second: 1 GiB buffers on a GPU, 128 MiB on CPU (past the caches). */
export function measureBandwidth(device: DeviceCode): number {
  return device === DeviceCode.CUDA ? copyBandwidth(device, 0, 2 ** 30, 20) : copyBandwidth(device, 0, 2 ** 27, 5);
}

/** EAGLE-1's default static tree (25 paths + root = 26 nodes), filled with distinct tokens. */
export function eagle1Tree(vocab: number): DraftTree {
  const plan = planStaticTree(EAGLE1_DEFAULT_CHOICES);
  return instantiate(plan, 1, (node) => Int32Array.from({ length: plan.topK }, (_, r) => (3 + node * plan.topK + r) % vocab));
}

/**
 * A tree of `nodes` nodes shaped as EAGLE-2 grows one (top-k 10, 7 passes, reranked): the draft's
 * confidence in the r-th ranked child is taken to fall geometrically with r, the same at every node.
 */
export function eagle2Tree(nodes: number, vocab: number): DraftTree {
  const { topK, depth } = EAGLE2_DEFAULTS;
  const childLogp = (r: number) => -0.2 - 0.9 * r;
  const candidates: Candidate[] = [];
  const token = () => 3 + (candidates.length % (vocab - 3)); // distinct among siblings
  for (let r = 0; r < topK; r++) candidates.push({ token: token(), parent: -1, logp: childLogp(r), depth: 1 });
  let frontier = candidates.map((_, i) => i);
  for (let pass = 1; pass <= depth; pass++) {
    const base = candidates.length;
    for (const p of frontier) {
      for (let r = 0; r < topK; r++) {
        candidates.push({ token: token(), parent: p, logp: candidates[p].logp + childLogp(r), depth: pass + 1 });
      }
    }
    frontier = selectFrontier(candidates.slice(base).map((c) => c.logp), topK).map((s) => base + s);
  }
  return rerankTree(1, candidates, nodes - 1);
}

export interface StepTimes {
  decodeMs: number;              // one target token: forward + argmax
  verifyMs: Map<number, number>; // tree nodes -> forward over the tree + argmax of every row
  draftMs: Map<number, number>;  // width -> draft-head forward of that many tokens + their top-k
}

/** Prompt ids for a context of `n` tokens: a fixed spread over the vocabulary. */
function contextIds(n: number, vocab: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => (i === 0 ? 1 : 3 + ((i * 7919) % (vocab - 3))));
}

/** Every step time, at a context of `context` cached tokens, for the target and its head. */
export function measureSteps(target: LoadedModel, head: LoadedDraft, context: number, trees: DraftTree[],
  widths: number[], t: Timing): StepTimes {
  const device = target.placement.device === "cuda" ? DeviceCode.CUDA : DeviceCode.CPU;
  const vocab = target.config.vocabSize;
  const maxTree = Math.max(1, ...trees.map((tr) => tr.tokens.length));
  const kv = KvCache.create(target.model, context + maxTree);
  const dkv = KvCache.create(head.model, context + Math.max(1, ...widths));
  const [prefill, out, dout] = [StepOutput.create(), StepOutput.create(), StepOutput.create()];
  try {
    const ids = contextIds(context, vocab);
    const positions = Int32Array.from(ids, (_, i) => i);
    forward(target.model, kv, { tokens: ids, positions }, prefill);
    draftForward(head.model, dkv, { tokens: ids, positions }, prefill, positions, dout);
    const decodeMs = timeSteps(device, t, () => {
      forward(target.model, kv, { tokens: Int32Array.of(ids[1]), positions: Int32Array.of(context) }, out);
      out.argmax();
      kv.truncate(context);
    });
    const verifyMs = new Map(trees.map((tree) => [tree.tokens.length, timeSteps(device, t, () => {
      const treePositions = Int32Array.from(tree.depth, (d) => context + d);
      forward(target.model, kv, { tokens: tree.tokens, positions: treePositions, mask: treeMask(tree) }, out);
      out.argmax();
      kv.truncate(context);
    })]));
    const draftMs = new Map(widths.map((w) => [w, timeSteps(device, t, () => {
      draftStep(head, dkv, context, w, prefill, dout);
      dkv.truncate(context);
    })]));
    return { decodeMs, verifyMs, draftMs };
  } finally {
    for (const h of [dout, out, prefill, dkv, kv]) h.dispose();
  }
}

// one EAGLE-2 expansion pass: `width` frontier nodes, each seeing the context and itself (a mask over the
// new tokens only: every cached slot is visible), then the top-k of every row (what DynamicTreeBuilder reads back)
function draftStep(head: LoadedDraft, dkv: KvCache, context: number, width: number, features: StepOutput, out: StepOutput): void {
  const mask = new Uint8Array(width * width);
  for (let i = 0; i < width; i++) mask[i * width + i] = 1;
  const tokens = Int32Array.from({ length: width }, (_, i) => 3 + i);
  draftForward(head.model, dkv, { tokens, positions: new Int32Array(width).fill(context), mask, maskCols: width },
    features, Int32Array.from({ length: width }, (_, i) => i), out);
  out.topk(EAGLE2_DEFAULTS.topK);
}
