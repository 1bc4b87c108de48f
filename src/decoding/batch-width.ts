// batch-width.ts — how many sequences `batch` and `serve` decode at once when --parallel is not given,
// measured on this machine for this model. Short runs of the batch decoder, plain decoding made-up prompts,
// time 1, 2, 4, ... sequences, doubling while a doubling still gains; the default is the fewest sequences
// whose throughput is within WITHIN of the best measured. What sets the curve differs by model and machine: a
// model whose step streams its weights from memory gains nearly B-fold until the rows' compute catches up
// (the grown 140M model at one thread: 52 tok/s alone, 478 at 64), a small compute-bound one only the
// per-round overheads, and loses again once the sequences' caches leave the near caches (stories260K: 2x
// by 8-16 sequences, less at 64 with long contexts). Measured once (under a second on stories260K, a few on
// a 140M model on a CPU) and cached beside auto's step costs.
import { resolve } from "node:path";
import type { LoadedModel } from "../model/loader.ts";
import { EagleError } from "../util/errors.ts";
import { BatchDecoder } from "./batch-decode.ts";
import { decodeSteps } from "./decode.ts";
import { cachedMeasurement, folderStamp, runtimeStamp } from "./measured-cache.ts";
import { PlainProposer } from "./proposer.ts";

const FORMAT = 1;
/** The default is the fewest sequences within this fraction of the best throughput measured. */
export const WITHIN = 0.95;
/** A doubling that gains less than this (twice in a row) ends the series. */
export const GAIN = 1.05;
/** The most sequences measured. */
export const MAX_WIDTH = 256;
const SLOW_RUN_MS = 1500; // a width whose run took this long is the last: the next would take twice as long

/** Throughput measured at one width: decoded tokens per second of `sequences` decoding together. */
export interface WidthPoint {
  sequences: number;
  tokensPerS: number;
}

/** The measured curve and the width chosen from it. */
export interface BatchWidth {
  parallel: number;
  curve: WidthPoint[];
}

/** The fewest sequences within WITHIN of the best throughput of `curve` (1 for an empty curve). */
export function chooseWidth(curve: WidthPoint[]): number {
  const best = Math.max(0, ...curve.map((p) => p.tokensPerS));
  const fits = curve.filter((p) => p.tokensPerS >= WITHIN * best).map((p) => p.sequences);
  return fits.length > 0 ? Math.min(...fits) : 1;
}

/** Whether a series measured up to `curve`'s last point should stop: `patience` doublings in a row gained
 * less than GAIN. */
export function widthSeriesEnds(curve: WidthPoint[], patience: number): boolean {
  const n = curve.length;
  if (n <= patience) return false;
  for (let i = n - patience; i < n; i++) if (curve[i].tokensPerS >= GAIN * curve[i - 1].tokensPerS) return false;
  return true;
}

/** The default --parallel for `target` on this machine: cached, or measured now (and cached). */
export function defaultParallel(target: LoadedModel): BatchWidth {
  const key = JSON.stringify({ format: FORMAT, target: resolve(target.dir), targetFiles: folderStamp(target.dir), ...runtimeStamp(target) });
  return cachedMeasurement("batch-width", key, "measuring how many sequences this machine decodes best at once (once)...",
    () => measureWidth(target), checkWidth).value;
}

function checkWidth(raw: unknown, where: string): BatchWidth {
  const w = raw as BatchWidth | null;
  const ok = w && Number.isInteger(w.parallel) && w.parallel >= 1 && w.parallel <= MAX_WIDTH && Array.isArray(w.curve);
  if (!ok) throw new EagleError(`${where}: batch width must hold parallel (1..${MAX_WIDTH}) and its curve`);
  return w;
}

/** Runs of a model this slow a token are short: a few tokens after a short prompt, measured once. */
const SLOW_TOKEN_US = 2000;

/**
 * The curve and the width chosen from it (see the file comment). A slow model's series (a token over
 * SLOW_TOKEN_US alone) has short runs, each width once, and ends at its first doubling without gain; a
 * fast one's has prompts as long as a story's, enough rounds to time, needs two doublings without gain to
 * end, and is run three times, each width keeping its best. A width whose sequences do not fit the free
 * memory ends the series.
 */
export function measureWidth(target: LoadedModel): BatchWidth {
  const room = target.config.maxPositions;
  const quick = (b: number) => timeBatch(target, b, Math.min(8, room >> 1), Math.min(4, room >> 2));
  const alone = quick(1);
  if (alone === null) return { parallel: 1, curve: [] };
  const slow = 1e6 / alone.tokensPerS > SLOW_TOKEN_US;
  const run = slow ? quick : (b: number) => timeBatch(target, b, Math.min(64, room >> 1), Math.min(32, room >> 2));
  const curve: WidthPoint[] = [];
  for (let b = 1; b <= MAX_WIDTH; b *= 2) {
    const t0 = performance.now();
    const point = slow && b === 1 ? alone : run(b);
    if (point === null) break;
    curve.push(point);
    if (widthSeriesEnds(curve, slow ? 1 : 2) || performance.now() - t0 > SLOW_RUN_MS) break;
  }
  for (let rep = 0; rep < (slow ? 0 : 2); rep++) {
    curve.forEach((p, i) => {
      const again = run(p.sequences);
      if (again !== null && again.tokensPerS > p.tokensPerS) curve[i] = again; // the best of its runs: load only slows
    });
  }
  return { parallel: chooseWidth(curve), curve };
}

/** Plain batched decoding of `sequences` made-up prompts of `prompt` tokens, `tokens` each: the tokens per
 * second of the rounds after the prefill; null when their caches do not fit the free memory together. */
function timeBatch(target: LoadedModel, sequences: number, prompt: number, tokens: number): WidthPoint | null {
  const vocab = target.config.vocabSize;
  const options = { maxNewTokens: tokens, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 1, stopIds: [] };
  const decoder = new BatchDecoder(target);
  let made = 0;
  let failure: unknown = null;
  let fits = true;
  for (let s = 0; s < sequences; s++) {
    const ids = Array.from({ length: prompt }, (_, i) => 3 + ((i * 7919 + s * 104729) % (vocab - 3)));
    decoder.add({
      steps: decodeSteps(target, ids, options, new PlainProposer()),
      onToken: () => made++,
      onDone: () => {},
      onError: (err) => (failure ??= err),
      onNoMemory: () => (fits = false),
    });
  }
  try {
    decoder.round(); // the prefills, and each sequence's first token
    const first = made;
    const t0 = performance.now();
    while (fits && failure === null && decoder.round() > 0);
    if (failure !== null) throw failure;
    if (!fits) return null;
    return { sequences, tokensPerS: ((made - first) * 1000) / Math.max(1e-6, performance.now() - t0) };
  } finally {
    decoder.cancelAll();
  }
}
