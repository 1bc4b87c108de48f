// proposer.ts — what a decode loop asks of a drafter. Plain decoding proposes the root alone, so one
// loop serves plain decoding, EAGLE-1 and EAGLE-2; the EAGLE modes differ only in their proposer.
import type { DraftSequenceForward } from "../native/batch-forward.ts";
import { draftForward, type Model, type StepOutput } from "../native/engine.ts";
import type { Rng } from "../util/rng.ts";
import type { SamplingParams } from "./sampling.ts";
import { chainTree, type DraftTree } from "./tree.ts";

/** A run's sampling and its random stream, for a drafter that samples its tree (EAGLE-1 at T > 0). */
export interface RunDraws {
  sampling: SamplingParams;
  rng: Rng; // the run's own: drafting, verification and the bonus draw from it in turn, so a seed fixes all
}

/** A draft-head forward a drafter leaves to whoever drives it: run alone (runDrafts), or batched with other
 * sequences' (the batch decoder), which gives each the same results. */
export interface DraftCall extends DraftSequenceForward {
  head: Model;
}

/** Drafting work that may stop at its draft forwards (yielded as DraftCalls) and ends with a T. */
export type Drafting<T> = Generator<DraftCall, T, void>;

/** Runs `work` to its end, each draft forward alone. */
export function runDrafts<T>(work: Drafting<T>): T {
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
    const c = step.value;
    draftForward(c.head, c.kv, c.batch, c.features, c.featureRows, c.out);
  }
}

/** A proposer's own expectation of its rounds: tokens they should yield and microseconds they should take. */
/** What a cost-aware proposer expected of its rounds: tokens and cost, and what plain steps at the same
 * contexts would have cost, one per round (so plain decoding's expected rate is rounds / plainUs). */
export interface Prediction {
  tokens: number;
  us: number;
  rounds: number;
  plainUs: number;
}

/** A run a proposer left to plain decoding (Proposer.plainRun): at its end, told how many rounds it made, in
 * how long, and whether alone (not sharing a batch's forwards), it returns the prediction to report. */
export interface PlainRun {
  finish(rounds: number, decodeMs: number, alone: boolean): Prediction;
}

/** The speedup over plain decoding a prediction expects. */
export function expectedSpeedup(p: Prediction): number {
  return p.us > 0 && p.rounds > 0 ? (p.tokens / p.us) / (p.rounds / p.plainUs) : 0;
}

export interface Proposer {
  /** Largest tree it will propose, root included. */
  readonly maxTreeNodes: number;
  /** Draft cache slots it needs beyond the target's. */
  readonly extraDraftSlots: number;
  /** Before the run starts: its prompt's length, token limit and draws. A PlainRun when no draft could pay
   * anywhere in this run: the run then decodes as plain decoding does (a PlainProposer: no room for trees, no
   * draft cache, nothing drafted), and the PlainRun is told its rounds at the end. */
  plainRun?(promptLength: number, maxNewTokens: number, draws?: RunDraws): PlainRun | null;
  /** After the target's prefill: `prompt`, its output rows (one per prompt token) and the first root token;
   * `sharing` as for propose. */
  start(prompt: number[], target: StepOutput, root: number, capacity: number, draws?: RunDraws, sharing?: number): Drafting<void>;
  /** A tree rooted at `root` with at most `maxNodes` nodes. `sharing`: the sequences whose target forwards
   * run with this one's in a batch (1 alone), for a cost-aware builder. */
  propose(root: number, maxNodes: number, sharing?: number): Drafting<DraftTree>;
  /** After verification: the accepted nodes (rows of `target`) and the bonus token, the next root. */
  commit(tree: DraftTree, path: number[], bonus: number, target: StepOutput): Drafting<void>;
  /** Milliseconds spent drafting so far. */
  readonly draftMs: number;
  /** What a cost-aware proposer expected of its rounds so far. */
  readonly prediction?: Prediction;
  dispose(): void;
}

export class PlainProposer implements Proposer {
  readonly maxTreeNodes = 1;
  readonly extraDraftSlots = 0;
  readonly draftMs = 0;
  // the root alone, the same tree each round (the loop is done with a round's tree when it asks for the next)
  readonly #tree = chainTree([0]);
  *start(): Drafting<void> {}
  *propose(root: number): Drafting<DraftTree> {
    this.#tree.tokens[0] = root;
    return this.#tree;
  }
  *commit(): Drafting<void> {}
  dispose(): void {}
}
