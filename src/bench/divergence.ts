// divergence.ts — where a greedy speculative output first differs from plain greedy decoding, and why.
// In float32 the two must be identical. In bf16/f16 a tree verification computes the same logits in a
// different batch shape, so rounding can flip an argmax between two nearly tied tokens; a flip between
// tokens far apart is a bug. The gap is measured by a fresh target forward over the common prefix.
import { forward, KvCache, StepOutput } from "../native/engine.ts";
import type { LoadedModel } from "../model/loader.ts";

export interface Divergence {
  method: string;
  prompt: number;       // index into the prompt set
  at: number;           // index of the first differing new token
  plain_token: number;
  method_token: number;
  gap: number;          // log p(plain's token) - log p(method's token) after the common prefix, in nats
  near_tie: boolean;
}

/** Largest gap (nats) a rounding flip can explain, by compute dtype. */
export const NEAR_TIE_NATS: Record<string, number> = { f32: 1e-3, f16: 0.05, bf16: 0.1 };

/** The first index where a and b differ, or -1 where they are equal. */
export function firstDifference(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Log-probabilities of two tokens after `context`, from one fresh forward of the target. */
function logProbs(m: LoadedModel, context: number[], a: number, b: number): { a: number; b: number } {
  using kv = KvCache.create(m.model, context.length);
  using out = StepOutput.create();
  forward(m.model, kv, { tokens: Int32Array.from(context), positions: Int32Array.from(context, (_, i) => i) }, out);
  const logits = out.logitsRow(context.length - 1, new Float32Array(m.config.vocabSize));
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  const lse = max + Math.log(sum);
  return { a: logits[a] - lse, b: logits[b] - lse };
}

/** The divergence of `output` from `plain` on prompt `index`, or null where they agree. */
export function explainDivergence(m: LoadedModel, method: string, index: number, prompt: number[], plain: number[],
  output: number[]): Divergence | null {
  const at = firstDifference(plain, output);
  if (at < 0) return null;
  const plainToken = plain[at] ?? -1;
  const methodToken = output[at] ?? -1;
  if (plainToken < 0 || methodToken < 0) { // one stopped early: no token to compare
    return { method, prompt: index, at, plain_token: plainToken, method_token: methodToken, gap: Number.NaN, near_tie: false };
  }
  const lp = logProbs(m, [...prompt, ...plain.slice(0, at)], plainToken, methodToken);
  const gap = lp.a - lp.b;
  return {
    method, prompt: index, at, plain_token: plainToken, method_token: methodToken, gap,
    near_tie: Math.abs(gap) <= (NEAR_TIE_NATS[m.placement.dtype] ?? 0),
  };
}
