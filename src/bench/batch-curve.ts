// batch-curve.ts — bench --parallel: the batch decoder's aggregate tokens/s on a fixed workload (the prompts
// repeated to `items`, a fixed number of tokens each, end-of-sequence ignored) at each width and method, as
// `batch --parallel N` decodes it (continuous batching, prefill included); widths and methods interleaved, each
// point's ratio to the same method one item at a time and to plain decoding one at a time, all from the same
// run. Every item's tokens must be the same at every width (an item's output does not depend on its batch).
import { type BatchCounts, BatchDecoder, type BatchSequence } from "../decoding/batch-decode.ts";
import { decodeSteps, type DecodeStats } from "../decoding/decode.ts";
import type { Proposer } from "../decoding/proposer.ts";
import { makeProposer, type ResolvedSpec, type SpecMode, withMode } from "../decoding/spec-mode.ts";
import type { LoadedModel } from "../model/loader.ts";
import { clearStatus, showStatus } from "../util/status-line.ts";

export interface CurveRun {
  items: number;     // the prompts, repeated in turn to this many
  newTokens: number; // per item; end-of-sequence ignored
  temperature: number;
  seed: number;      // item i samples with seed + i
}

export interface CurvePoint {
  method: SpecMode;
  parallel: number;
  tokens: number;        // over every repeat
  ms: number;            // wall time of its runs, prefill included
  tokens_per_s: number;
  vs_sequential: number; // over the same method at parallel 1 (NaN when 1 was not measured)
  vs_plain_sequential: number; // over none at parallel 1 (NaN when it was not measured)
  tau: number;           // tokens per verification forward: 1 (the bonus) + draft tokens accepted
  mean_batch: number;    // sequences per batched target forward (prefills included)
}

export interface Curve {
  points: CurvePoint[];
  /** Whether each item's tokens were the same at every width, and (greedy; sampled: every method but
   * eagle1, whose children are drawn) across methods. */
  identical: boolean;
}

/** The workload's prompts: `prompts` repeated in turn to `items`. */
export function curveItems(prompts: number[][], items: number): number[][] {
  return Array.from({ length: items }, (_, i) => prompts[i % prompts.length]);
}

/** Every (width, method) pair over the workload, `repeat` times, the order rotating from one pass to the next
 * so that no pair always runs after the same other. Outputs come from the first pass. */
export function runCurve(m: LoadedModel, names: SpecMode[], widths: number[], run: CurveRun, prompts: number[][],
  spec: ResolvedSpec, repeat = 1): Curve {
  const configs = names.map((name) => withMode(spec, name, m));
  const pairs = widths.flatMap((parallel) => names.map((_, k) => ({ parallel, k })));
  const totals = pairs.map(() => ({ tokens: 0, ms: 0, forwards: 0, accepted: 0, calls: 0, sequences: 0 }));
  const outputs: (number[][] | null)[] = pairs.map(() => null);
  const items = curveItems(prompts, run.items);
  for (let rep = 0; rep < repeat; rep++) {
    pairs.forEach((_, j) => {
      const i = (rep + j) % pairs.length;
      const { parallel, k } = pairs[i];
      showStatus(`bench: repeat ${rep + 1}/${repeat}, ${names[k]} at parallel ${parallel}`);
      const r = decodeAll(m, items, parallel, run, () => makeProposer(configs[k], spec.head));
      totals[i].tokens += r.tokens;
      totals[i].ms += r.ms;
      totals[i].forwards += r.forwards;
      totals[i].accepted += r.accepted;
      totals[i].calls += r.counts.targetCalls;
      totals[i].sequences += r.counts.targetSequences;
      outputs[i] ??= r.outputs;
    });
  }
  clearStatus();
  const points = pairs.map(({ parallel, k }, i): CurvePoint => ({
    method: names[k], parallel, tokens: totals[i].tokens, ms: totals[i].ms,
    tokens_per_s: (totals[i].tokens * 1000) / totals[i].ms, vs_sequential: NaN, vs_plain_sequential: NaN,
    tau: 1 + totals[i].accepted / Math.max(1, totals[i].forwards),
    mean_batch: totals[i].sequences / Math.max(1, totals[i].calls),
  }));
  for (const p of points) {
    const alone = points.find((q) => q.method === p.method && q.parallel === 1);
    const plain = points.find((q) => q.method === "none" && q.parallel === 1);
    if (alone) p.vs_sequential = p.tokens_per_s / alone.tokens_per_s;
    if (plain) p.vs_plain_sequential = p.tokens_per_s / plain.tokens_per_s;
  }
  return { points, identical: outputsAgree(pairs.map((p, i) => ({ method: names[p.k], outputs: outputs[i]! })), run.temperature) };
}

/** Whether every run's outputs are the same: each method's at every width; greedy, every method's too;
 * sampled, every method's but eagle1's (its children are drawn, so its text is its own for a seed). */
export function outputsAgree(runs: { method: SpecMode; outputs: number[][] }[], temperature: number): boolean {
  const text = (r: { outputs: number[][] }) => JSON.stringify(r.outputs);
  const sameWidths = runs.every((r) => runs.every((q) => q.method !== r.method || text(q) === text(r)));
  const shared = runs.filter((r) => temperature === 0 || r.method !== "eagle1");
  return sameWidths && shared.every((r) => text(r) === text(shared[0]));
}

interface Decoded {
  tokens: number;
  ms: number;
  forwards: number; // verifications (one a round), prefills not counted
  accepted: number; // draft tokens accepted
  counts: BatchCounts;
  outputs: number[][];
}

/** The items through the batch decoder, up to `parallel` at once, a finished one's place taken at once by the
 * next (as `batch` schedules them). */
function decodeAll(m: LoadedModel, items: number[][], parallel: number, run: CurveRun,
  proposer: () => Proposer): Decoded {
  const decoder = new BatchDecoder(m);
  const outputs = items.map((): number[] => []);
  const stats: DecodeStats[] = [];
  let failure: unknown = null;
  let next = 0;
  const t0 = performance.now();
  try {
    while ((next < items.length || decoder.size > 0) && failure === null) {
      while (decoder.size < parallel && next < items.length) decoder.add(itemSequence(next++));
      decoder.round();
    }
  } finally {
    decoder.cancelAll();
  }
  if (failure !== null) throw failure;
  const ms = performance.now() - t0;
  const sum = (f: (s: DecodeStats) => number) => stats.reduce((t, s) => t + f(s), 0);
  const accepted = sum((s) => s.acceptedByDepth.reduce((a, b) => a + b, 0));
  return { tokens: sum((s) => s.newTokens), ms, forwards: sum((s) => s.targetForwards), accepted, counts: decoder.counts, outputs };

  function itemSequence(i: number): BatchSequence {
    const sampling = { temperature: run.temperature, topK: 0, topP: 1 };
    const options = { maxNewTokens: run.newTokens, sampling, seed: run.seed + i, stopIds: [], sharing: () => decoder.size };
    return {
      steps: decodeSteps(m, items[i], options, proposer()),
      onToken: (token) => outputs[i].push(token),
      onDone: (s) => stats.push(s),
      onError: (err) => (failure ??= err),
    };
  }
}
