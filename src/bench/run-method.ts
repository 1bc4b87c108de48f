// run-method.ts — bench's methods over its prompts, interleaved: each one's decode tokens/s, τ,
// acceptance by depth, tree sizes and where each step's time goes; and where a speculative method's
// greedy output leaves plain decoding's.
import { acceptanceStats, decode, type DecodeStats } from "../decoding/decode.ts";
import { makeProposer, type ResolvedSpec, type SpecMode, withMode } from "../decoding/spec-mode.ts";
import type { LoadedModel } from "../model/loader.ts";
import { KvCache } from "../native/engine.ts";
import { clearStatus, showStatus } from "../util/status-line.ts";
import { type Divergence, explainDivergence } from "./divergence.ts";

export interface MethodRun {
  newTokens: number;   // per prompt; end-of-sequence ignored: a fixed workload
  temperature: number;
  seed: number;        // prompt i samples with seed + i
}

export interface MethodResult {
  name: SpecMode;
  tokens: number;
  tokens_per_s: number;
  prompt_tokens_per_s: number;
  mean_acceptance_length: number;          // tau: tokens per verification forward, bonus included
  speedup: number;
  per_position_acceptance_rate: number[];  // [d]: rounds accepting a draft token at depth d + 1 / all rounds
  conditional_acceptance_by_depth: number[]; // [d]: the same / rounds whose tree reached depth d + 1
  draft_acceptance_rate: number;           // draft tokens accepted / draft tokens verified
  steps: number;
  ms_per_step: number;
  native_ms_per_step: number; // libtorch + FFI crossings
  ts_ms_per_step: number;     // TypeScript: tree building, verification, bookkeeping
  draft_ms_per_step: number;
  tree_nodes: { mean: number; min: number; max: number }; // verified per round, root included
  predicted_tokens_per_s: number | null; // auto: what its cost model expected of the rounds it chose
  outputs: number[][];
}

/**
 * Every method over every prompt, interleaved (for each repeat and prompt, each method in turn) so that a
 * busy machine slows them alike, with `afterPass` after each repeat; outputs come from the first repeat. The
 * order of the methods rotates from one prompt to the next, so that none always runs right after another
 * (whose caches and heap it would inherit): with none always first, a resting auto measured 0.92-0.95x of
 * none where the two alternating in one process differ by 2%.
 */
export function runMethods(m: LoadedModel, names: SpecMode[], run: MethodRun, prompts: number[][], spec: ResolvedSpec,
  repeat = 1, afterPass: () => void = () => {}): MethodResult[] {
  const configs = names.map((name) => withMode(spec, name, m));
  const stats: DecodeStats[][] = names.map(() => []);
  const outputs: number[][][] = names.map(() => []);
  for (let rep = 0; rep < repeat; rep++) {
    prompts.forEach((prompt, i) => {
      showStatus(`bench: repeat ${rep + 1}/${repeat}, prompt ${i + 1}/${prompts.length}`);
      const first = (rep * prompts.length + i) % names.length;
      names.forEach((_, j) => {
        const k = (first + j) % names.length;
        const sampling = { temperature: run.temperature, topK: 0, topP: 1 };
        const gen = decode(m, prompt, { maxNewTokens: run.newTokens, sampling, seed: run.seed + i, stopIds: [] },
          makeProposer(configs[k], spec.head));
        const tokens: number[] = [];
        let step = gen.next();
        for (; !step.done; step = gen.next()) tokens.push(step.value);
        if (rep === 0) outputs[k].push(tokens);
        stats[k].push(step.value);
      });
    });
    afterPass(); // a peer's pass, between eagle's
  }
  clearStatus();
  return names.map((name, k) => summarise(name, stats[k], outputs[k]));
}

/** The runs' rounds as one run's, for the acceptance figures. */
function pooled(all: DecodeStats[]): DecodeStats {
  const depth = Math.max(0, ...all.map((s) => s.proposedByDepth.length));
  const byDepth = (f: (s: DecodeStats) => number[]) => Array.from({ length: depth }, (_, d) => all.reduce((t, s) => t + (f(s)[d] ?? 0), 0));
  return {
    ...all[0], targetForwards: all.reduce((t, s) => t + s.targetForwards, 0),
    acceptedByDepth: byDepth((s) => s.acceptedByDepth), proposedByDepth: byDepth((s) => s.proposedByDepth),
    treeNodes: { total: all.reduce((t, s) => t + s.treeNodes.total, 0), min: 0, max: 0 },
  };
}

function summarise(name: SpecMode, all: DecodeStats[], outputs: number[][]): MethodResult {
  const sum = (f: (s: DecodeStats) => number) => all.reduce((t, s) => t + f(s), 0);
  const steps = sum((s) => s.targetForwards);
  const a = acceptanceStats(pooled(all));
  return {
    name, tokens: sum((s) => s.newTokens), tokens_per_s: (sum((s) => s.newTokens) * 1000) / sum((s) => s.decodeMs),
    prompt_tokens_per_s: (sum((s) => s.promptTokens) * 1000) / sum((s) => s.promptMs),
    mean_acceptance_length: a.meanAcceptanceLength, speedup: 1,
    per_position_acceptance_rate: a.perPositionAcceptanceRate, conditional_acceptance_by_depth: a.conditionalAcceptance,
    draft_acceptance_rate: a.draftAcceptanceRate, steps, ms_per_step: sum((s) => s.decodeMs) / steps,
    native_ms_per_step: sum((s) => s.nativeMs) / steps, ts_ms_per_step: sum((s) => s.decodeMs - s.nativeMs) / steps,
    draft_ms_per_step: sum((s) => s.draftMs) / steps,
    tree_nodes: {
      mean: sum((s) => s.treeNodes.total) / steps,
      min: Math.min(...all.map((s) => s.treeNodes.min)),
      max: Math.max(...all.map((s) => s.treeNodes.max)),
    },
    predicted_tokens_per_s: all.every((s) => s.predicted)
      ? (sum((s) => s.predicted!.tokens) * 1e6) / sum((s) => s.predicted!.us) : null,
    outputs,
  };
}

/** For each speculative method and prompt, where its greedy output first leaves plain decoding's. */
export function findDivergences(m: LoadedModel, prompts: number[][], base: MethodResult, results: MethodResult[]): Divergence[] {
  const found: Divergence[] = [];
  for (const r of results) {
    if (r === base) continue;
    prompts.forEach((prompt, i) => {
      const d = explainDivergence(m, r.name, i, prompt, base.outputs[i], r.outputs[i]);
      if (d) found.push(d);
    });
  }
  return found;
}

/** Mean time of one FFI crossing, from a call that does no work in the shim. */
export function ffiCrossingUs(m: LoadedModel): number {
  const kv = KvCache.create(m.model, 1);
  const calls = 20000;
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) void kv.length;
  const us = ((performance.now() - t0) * 1000) / calls;
  kv.dispose();
  return us;
}
