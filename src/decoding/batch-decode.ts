// batch-decode.ts — continuous batching: many sequences, each in its own decode loop (decodeSteps), whose
// forwards run together: each round their draft passes, pass by pass, then their target forwards
// (verifications, and the prefills of those that just joined), each kind in one batched call. A sequence
// joins between rounds and leaves when it ends, without draining the others. Every sequence owns its caches,
// proposer and random stream, and a batched forward gives each row what it gets alone, so a sequence's
// tokens do not depend on what shares its batch.
import { draftForwardBatch, forwardBatch, type SequenceForward } from "../native/batch-forward.ts";
import type { Model } from "../native/engine.ts";
import type { LoadedModel } from "../model/loader.ts";
import { type DecodeEvent, type DecodeStats, isDraftCall } from "./decode.ts";
import { MemoryError } from "../native/memory.ts";
import type { DraftCall } from "./proposer.ts";

/** One sequence of a batch: its decode steps and where its tokens, its end and its failure go. */
export interface BatchSequence {
  steps: Generator<DecodeEvent, DecodeStats>;
  onToken(token: number): void;
  onDone(stats: DecodeStats): void;
  onError(err: unknown): void;
  /** Its caches did not fit the free memory beside the running sequences, before it produced a token: it
   * has left, and its owner adds it again later (the decoder admits none until one of those ends). Without
   * this, or when no other sequence runs, the failure goes to onError. */
  onNoMemory?(): void;
}

/** What a batch decoder has run: batched calls, and the sequences they stepped (sequences / calls = the
 * mean batch). */
export interface BatchCounts {
  targetCalls: number;
  targetSequences: number;
  draftCalls: number;
  draftSequences: number;
}

export class BatchDecoder {
  readonly counts: BatchCounts = { targetCalls: 0, targetSequences: 0, draftCalls: 0, draftSequences: 0 };
  #active = new Set<BatchSequence>(); // in the order they joined
  #pending = new Map<BatchSequence, SequenceForward | DraftCall>(); // each one's next forward
  #started = new Set<BatchSequence>(); // those that have produced a token
  #heldAt = 0; // > 0: a sequence's caches did not fit beside this many; none joins until fewer run

  constructor(private readonly target: LoadedModel) {}

  /** Sequences decoding now. */
  get size(): number {
    return this.#active.size;
  }

  /** Whether a new sequence may join now: not while one waits for memory that a running one must free. */
  get admits(): boolean {
    return this.#heldAt === 0;
  }

  /** Adds a sequence; its prefill runs in the next round's target forward. */
  add(seq: BatchSequence): void {
    this.#active.add(seq);
  }

  /** Ends a sequence early (its caches are freed); it gets neither onDone nor onError. */
  cancel(seq: BatchSequence): void {
    if (!this.#active.has(seq)) return;
    this.#remove(seq);
    seq.steps.return(undefined as never);
  }

  /** Ends every sequence early. */
  cancelAll(): void {
    for (const seq of [...this.#active]) this.cancel(seq);
  }

  /** One round: every sequence runs up to its next forward (streaming the tokens it accepted before it);
   * those that draft run their draft passes together, pass by pass, until every sequence waits on its
   * verification; then the verification forwards run in one call. Returns the sequences still decoding. */
  round(): number {
    for (const seq of [...this.#active]) this.#advance(seq);
    for (let drafting = this.#waiting(true); drafting.length > 0; drafting = this.#waiting(true)) {
      this.#run(drafting);
      for (const seq of drafting) this.#advance(seq);
    }
    this.#run(this.#waiting(false));
    return this.#active.size;
  }

  // the sequences waiting on a draft pass (or on their verification), in the order they asked
  #waiting(draft: boolean): BatchSequence[] {
    const seqs: BatchSequence[] = [];
    for (const [s, e] of this.#pending) if (isDraftCall(e) === draft) seqs.push(s);
    return seqs;
  }

  // runs the waiting forwards of `seqs` (all draft passes or all verifications), one call per model
  #run(seqs: BatchSequence[]): void {
    const byModel = new Map<Model, BatchSequence[]>();
    for (const s of seqs) {
      const e = this.#pending.get(s)!;
      const model = isDraftCall(e) ? e.head : this.target.model;
      const group = byModel.get(model);
      if (group) group.push(s);
      else byModel.set(model, [s]);
    }
    for (const [model, group] of byModel) {
      const calls = group.map((s) => this.#pending.get(s)!);
      try {
        if (model === this.target.model) {
          forwardBatch(model, calls);
          this.counts.targetCalls++;
          this.counts.targetSequences += calls.length;
        } else {
          draftForwardBatch(model, calls as DraftCall[]);
          this.counts.draftCalls++;
          this.counts.draftSequences += calls.length;
        }
      } catch (err) {
        for (const s of group) this.#fail(s, err); // the batched call failed for every sequence in it
      }
    }
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
        this.#started.add(seq);
        seq.onToken(step.value);
        if (!this.#active.has(seq)) return; // cancelled from onToken
      }
    } catch (err) {
      this.#fail(seq, err);
    }
  }

  #fail(seq: BatchSequence, err: unknown): void {
    if (!this.#active.has(seq)) return;
    const waitsForMemory = err instanceof MemoryError && !this.#started.has(seq) && seq.onNoMemory !== undefined;
    this.#remove(seq);
    seq.steps.return(undefined as never);
    if (waitsForMemory && this.#active.size > 0) {
      this.#heldAt = this.#active.size;
      seq.onNoMemory!();
    } else seq.onError(err);
  }

  #remove(seq: BatchSequence): void {
    this.#active.delete(seq);
    this.#pending.delete(seq);
    this.#started.delete(seq);
    if (this.#active.size < this.#heldAt) this.#heldAt = 0; // one ended: memory to try again with
  }
}
