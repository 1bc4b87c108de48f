// run-item.ts — one batch item as a sequence of the batch decoder, into its result record. The model and
// draft head are shared by every item; each run gets its own caches and proposer (decodeSteps, makeProposer).
import type { BatchSequence } from "../decoding/batch-decode.ts";
import { contextCapacity, decodeSteps, meanAcceptance } from "../decoding/decode.ts";
import { EagleError } from "../util/errors.ts";
import type { LoadedModel } from "../model/loader.ts";
import { makeProposer } from "../decoding/spec-mode.ts";
import type { TextTokenizer } from "../model/tokenizer.ts";
import type { ResolvedSpec } from "../decoding/spec-mode.ts";
import { openAiFinish, StopStrings } from "../util/stop-strings.ts";
import { type BatchItem, type ItemId, oneLine } from "./items.ts";
import type { PromptBuilder } from "./prompt.ts";

/** What every item of a run shares: loaded once, disposed once at the end. */
export interface BatchEngine {
  target: LoadedModel;
  spec: ResolvedSpec;
  tokenizer: TextTokenizer;
  prompts: PromptBuilder;
}

/** One output line. Field names are the JSON ones. */
export interface ItemResult {
  id: ItemId;
  text: string;
  prompt_tokens: number;
  completion_tokens: number;
  finish_reason: FinishReason;
  tau: number | null;              // mean tokens per verification forward; null without speculation
  decode_tokens_per_s: number | null;
  prompt_ms: number;
  decode_ms: number;
}

/** OpenAI's finish reasons: "stop" for an end-of-sequence token or a stop string, "length" for the token
 * limit or the context; "interrupted" (Ctrl-C) is never written, since a cut-short item is dropped. */
export type FinishReason = "stop" | "length" | "interrupted";


export interface ItemError {
  id: ItemId;
  error: string;
}

export type BatchResult = ItemResult | ItemError;

export function isError(r: BatchResult): r is ItemError {
  return "error" in r;
}

/** What an item reports back while it runs: each token (the progress display); and what it asks of its
 * batch: the sequences sharing its forwards, for auto's cost model. */
export interface ItemHooks {
  onToken(): void;
  sharing?(): number;
  /** Its caches did not fit beside the running items (see BatchSequence.onNoMemory): it will run again. */
  onNoMemory?(): void;
}

/**
 * One item as a sequence for the batch decoder: its prompt, its own caches, proposer and seed. Its result
 * (or, for an EagleError — a prompt too long for the context, a chat template that fails, an engine error —
 * its error record) goes to `done`, also when it fails before it starts (then null is returned). Anything
 * else is a bug and propagates.
 */
export function itemSequence(engine: BatchEngine, item: BatchItem, hooks: ItemHooks,
  done: (r: BatchResult) => void): BatchSequence | null {
  const { target, spec, tokenizer } = engine;
  const o = item.options;
  let ids: number[];
  try {
    ids = engine.prompts.encode(item.input);
    // checked before the proposer exists: the decode loop only disposes it once the run has started
    contextCapacity(target, ids.length, o.maxTokens, 0);
  } catch (err) {
    if (!(err instanceof EagleError)) throw err;
    done({ id: item.id, error: oneLine(err.message) });
    return null;
  }
  const stops = new StopStrings(o.stop);
  const stream = tokenizer.streamDecoder(ids);
  let text = "";
  const steps = decodeSteps(target, ids, {
    maxNewTokens: o.maxTokens,
    sampling: { temperature: o.temperature, topK: o.topK, topP: o.topP },
    seed: o.seed === -1 ? Math.floor(Math.random() * 2 ** 31) : o.seed,
    stopIds: tokenizer.eosIds,
    stop: () => stops.stopped,
    sharing: hooks.sharing,
  }, makeProposer(spec.config, spec.head));
  return {
    steps,
    onToken(token) {
      text += stops.push(stream.push(token));
      hooks.onToken();
    },
    onDone(s) {
      text += stops.finish(stream.flush());
      done({
        id: item.id,
        text,
        prompt_tokens: s.promptTokens,
        completion_tokens: s.newTokens,
        finish_reason: openAiFinish(s.stopReason, stops) ?? "interrupted",
        tau: spec.config.mode === "none" ? null : round(meanAcceptance(s), 3),
        decode_tokens_per_s: s.decodeMs > 0 ? round((s.newTokens * 1000) / s.decodeMs, 1) : null,
        prompt_ms: round(s.promptMs, 2),
        decode_ms: round(s.decodeMs, 2),
      });
    },
    onNoMemory: hooks.onNoMemory,
    onError(err) {
      if (!(err instanceof EagleError)) throw err;
      done({ id: item.id, error: oneLine(err.message) });
    },
  };
}

function round(x: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(x * scale) / scale;
}
