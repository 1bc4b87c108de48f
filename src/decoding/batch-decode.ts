// batch-decode.ts — continuous batching: many sequences, each in its own decode loop (decodeSteps), whose
// verification forwards run together in one batched forward per round. A sequence joins between rounds
// (its prefill runs when it first steps) and leaves when it ends, without draining the others. Every
// sequence owns its caches, proposer and random stream, and the batched forward gives each row what it gets
// alone, so a sequence's tokens do not depend on what shares its batch.
import { forwardBatch, type SequenceForward } from "../native/engine.ts";
import type { LoadedModel } from "../model/loader.ts";
import type { DecodeEvent, DecodeStats } from "./decode.ts";

/** One sequence of a batch: its decode steps and where its tokens, its end and its failure go. */
export interface BatchSequence {
  steps: Generator<DecodeEvent, DecodeStats>;
  onToken(token: number): void;
  onDone(stats: DecodeStats): void;
  onError(err: unknown): void;
}

export class BatchDecoder {
  #active: BatchSequence[] = [];
  #pending = new Map<BatchSequence, SequenceForward>();

  constructor(private readonly target: LoadedModel) {}

  /** Sequences decoding now. */
  get size(): number {
    return this.#active.length;
  }

  /** Adds a sequence; it runs its prefill at the next round. */
  add(seq: BatchSequence): void {
    this.#active.push(seq);
  }

  /** Ends a sequence early (its caches are freed); it gets neither onDone nor onError. */
  cancel(seq: BatchSequence): void {
    if (!this.#active.includes(seq)) return;
    this.#remove(seq);
    seq.steps.return(undefined as never);
  }

  /** Ends every sequence early. */
  cancelAll(): void {
    for (const seq of [...this.#active]) this.cancel(seq);
  }

  /** One round: every sequence runs up to its next verification forward (streaming the tokens it accepted
   * before it), then those forwards run in one call. Returns the number of sequences still decoding. */
  round(): number {
    for (const seq of [...this.#active]) this.#advance(seq);
    const waiting = [...this.#pending.keys()]; // in the order they asked
    if (waiting.length > 0) {
      try {
        forwardBatch(this.target.model, waiting.map((s) => this.#pending.get(s)!));
      } catch (err) {
        for (const s of waiting) this.#fail(s, err); // the batched call failed for every sequence in it
      }
    }
    return this.#active.length;
  }

  /** Steps `seq` until it asks for a forward or ends. */
  #advance(seq: BatchSequence): void {
    this.#pending.delete(seq);
    try {
      for (;;) {
        const step = seq.steps.next();
        if (step.done) {
          this.#remove(seq);
          seq.onDone(step.value);
          return;
        }
        if (typeof step.value !== "number") {
          this.#pending.set(seq, step.value);
          return;
        }
        seq.onToken(step.value);
        if (!this.#active.includes(seq)) return; // cancelled from onToken
      }
    } catch (err) {
      this.#fail(seq, err);
    }
  }

  #fail(seq: BatchSequence, err: unknown): void {
    if (!this.#active.includes(seq)) return;
    this.#remove(seq);
    seq.steps.return(undefined as never);
    seq.onError(err);
  }

  #remove(seq: BatchSequence): void {
    this.#active = this.#active.filter((s) => s !== seq);
    this.#pending.delete(seq);
  }
}
