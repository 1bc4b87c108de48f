// decode.ts — plain autoregressive decoding as a generator: yields token ids as they are chosen and
// returns the run's statistics. Owns its cache and output handles for exactly the run's lifetime.
import { forward, KvCache, StepOutput } from "./engine.ts";
import { EagleError } from "./errors.ts";
import type { LoadedModel } from "./loader.ts";
import { Rng } from "./rng.ts";
import { type SamplingParams, argmax, sampleFrom, targetDistribution } from "./sampling.ts";

export interface DecodeOptions {
  maxNewTokens: number;
  sampling: SamplingParams; // temperature 0 = greedy
  seed: number;
  stopIds: number[];        // end of sequence ids; the stop token is yielded, then decoding ends
}

export type StopReason = "eos" | "max_tokens" | "context";

export interface DecodeStats {
  promptTokens: number;
  newTokens: number;
  promptMs: number;
  decodeMs: number;        // from the first chosen token to the last
  targetForwards: number;  // decode forwards, prefill not counted
  shimMs: number;          // decode time spent inside shim calls (forward + readers)
  stopReason: StopReason;
}

/** Tokens of a run that fit: prompt + generated <= the model's context. Throws when the prompt alone does not. */
export function contextCapacity(m: LoadedModel, promptTokens: number, maxNewTokens: number): number {
  const context = m.config.maxPositions;
  if (promptTokens === 0) throw new EagleError("the prompt is empty: nothing to condition on (no BOS token either)");
  if (promptTokens >= context) {
    throw new EagleError(`the prompt has ${promptTokens} tokens; the model's context is ${context} (max_position_embeddings)`);
  }
  return Math.min(context, promptTokens + maxNewTokens);
}

/** Chooses the next token from one row of logits: argmax at temperature 0, else a sample. */
export class TokenChooser {
  readonly #rng: Rng;
  readonly #row: Float32Array;
  constructor(private readonly sampling: SamplingParams, seed: number, vocab: number) {
    this.#rng = new Rng(seed);
    this.#row = new Float32Array(vocab);
  }
  choose(out: StepOutput, row: number): number {
    if (this.sampling.temperature === 0) return out.argmax()[row];
    const probs = targetDistribution(out.logitsRow(row, this.#row), this.sampling);
    return sampleFrom(probs, this.#rng.next());
  }
}

export function* decodePlain(m: LoadedModel, prompt: number[], opts: DecodeOptions): Generator<number, DecodeStats> {
  const capacity = contextCapacity(m, prompt.length, opts.maxNewTokens);
  const kv = KvCache.create(m.model, capacity);
  const out = StepOutput.create();
  const chooser = new TokenChooser(opts.sampling, opts.seed, m.config.vocabSize);
  const stats: DecodeStats = {
    promptTokens: prompt.length, newTokens: 0, promptMs: 0, decodeMs: 0, targetForwards: 0, shimMs: 0,
    stopReason: "max_tokens",
  };
  try {
    const t0 = performance.now();
    const positions = Int32Array.from(prompt, (_, i) => i);
    forward(m.model, kv, { tokens: Int32Array.from(prompt), positions }, out);
    let token = chooser.choose(out, prompt.length - 1);
    const t1 = performance.now();
    stats.promptMs = t1 - t0;
    const batch = { tokens: new Int32Array(1), positions: new Int32Array(1) };
    while (opts.maxNewTokens > 0) {
      yield token;
      stats.newTokens++;
      if (opts.stopIds.includes(token)) { stats.stopReason = "eos"; break; }
      if (stats.newTokens >= opts.maxNewTokens) break;
      if (prompt.length + stats.newTokens >= m.config.maxPositions) { stats.stopReason = "context"; break; }
      const s0 = performance.now();
      batch.tokens[0] = token;
      batch.positions[0] = prompt.length + stats.newTokens - 1;
      forward(m.model, kv, batch, out);
      token = chooser.choose(out, 0);
      stats.shimMs += performance.now() - s0;
      stats.targetForwards++;
    }
    stats.decodeMs = performance.now() - t1;
    return stats;
  } finally {
    out.dispose();
    kv.dispose();
  }
}
