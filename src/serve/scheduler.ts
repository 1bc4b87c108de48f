// scheduler.ts — where the server's generations run. The server hands each request to a Scheduler and
// awaits its result; it never calls decode itself. The scheduler here batches: many requests decode at
// once, their target forwards stepped together (continuous batching).
import { type BatchCounts, type BatchSequence, BatchDecoder } from "../decoding/batch-decode.ts";
import { contextCapacity, decodeSteps, type DecodeStats } from "../decoding/decode.ts";
import type { LoadedModel } from "../model/loader.ts";
import { makeProposer, type ResolvedSpec } from "../decoding/spec-mode.ts";
import type { TextTokenizer } from "../model/tokenizer.ts";
import { openAiFinish, StopStrings } from "../util/stop-strings.ts";

/** One request's generation, already checked: prompt ids and the sampling settings. */
export interface Generation {
  ids: number[];
  maxTokens: number;
  temperature: number; // 0 = greedy
  topK: number;        // 0 = off
  topP: number;        // 1 = off
  seed: number;
  stop: string[];      // stop strings: the text ends before the first of them
}

/** OpenAI's finish reasons, plus "cancelled": the client went away or the server is shutting down. */
export type FinishReason = "stop" | "length" | "cancelled";


export interface GenerationResult {
  text: string;
  promptTokens: number;
  completionTokens: number;
  finishReason: FinishReason;
  stats: DecodeStats | null; // null when cancelled before it started
}

/** What a request gives besides its generation: where its text goes as it appears (streaming), and a
 * signal that ends it early (a disconnect). */
export interface GenerationHooks {
  onText?(piece: string): void;
  signal?: AbortSignal;
}

export interface Scheduler {
  /** Runs `g` to its end; a cancelled one resolves with finish reason "cancelled". */
  submit(g: Generation, hooks?: GenerationHooks): Promise<GenerationResult>;
  /** Requests waiting for their turn. */
  readonly waiting: number;
  /** Requests being decoded now. */
  readonly running: number;
  /** The batched forwards run so far, and the requests they stepped. */
  readonly batches: BatchCounts;
  /** Cancels everything queued or running; resolves once no decode runs. Later submits are cancelled at once. */
  close(): Promise<void>;
}

/** What every generation shares: loaded once, owned by the command. */
export interface Engine {
  target: LoadedModel;
  spec: ResolvedSpec;
  tokenizer: TextTokenizer;
}

/** The longest run of tokens a request may hold: a prompt that leaves no room is refused before it queues. */
export function checkFits(engine: Engine, promptTokens: number, maxTokens: number): void {
  contextCapacity(engine.target, promptTokens, maxTokens, 0);
}

interface Job {
  g: Generation;
  hooks: GenerationHooks;
  resolve(r: GenerationResult): void;
  reject(e: unknown): void;
}

/**
 * Continuous batching: up to `parallel` generations decode at once, their draft passes and target forwards
 * batched each round (BatchDecoder); one that ends leaves and the next in the queue (first come,
 * first served) joins at the next round, without draining the others. Between rounds the loop yields to
 * the event loop (decoding is synchronous FFI), so requests keep being accepted, streamed text is written
 * and disconnects are seen. Each generation owns its caches, proposer and seed, so its tokens are what it
 * gets alone, whatever shares its batch.
 */
export class BatchScheduler implements Scheduler {
  #queue: Job[] = [];
  #decoder: BatchDecoder;
  #working = false; // the worker loop is on: it takes the next jobs itself
  #closed = false;
  #idle: Promise<void> = Promise.resolve(); // settles when the worker loop ends

  constructor(private readonly engine: Engine, private readonly parallel: number) {
    this.#decoder = new BatchDecoder(engine.target);
  }

  get waiting(): number {
    return this.#queue.length;
  }

  get running(): number {
    return this.#decoder.size;
  }

  get batches(): BatchCounts {
    return this.#decoder.counts;
  }

  submit(g: Generation, hooks: GenerationHooks = {}): Promise<GenerationResult> {
    if (this.#closed || hooks.signal?.aborted) return Promise.resolve(cancelled(g));
    return new Promise((resolve, reject) => {
      const job: Job = { g, hooks, resolve, reject };
      this.#queue.push(job);
      // a request that goes away while it waits leaves the queue (a running one stops at its next token)
      hooks.signal?.addEventListener("abort", () => {
        const at = this.#queue.indexOf(job);
        if (at >= 0) {
          this.#queue.splice(at, 1);
          resolve(cancelled(g));
        }
      }, { once: true });
      if (!this.#working) this.#idle = this.#work();
    });
  }

  /** Queued requests are cancelled at once; running ones stop at their next token and resolve "cancelled". */
  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.resolve(cancelled(job.g));
    await this.#idle;
  }

  async #work(): Promise<void> {
    this.#working = true;
    try {
      await breathe(); // requests that arrive together start together, and submit never decodes
      while (this.#queue.length > 0 || this.#decoder.size > 0) {
        while (this.#decoder.admits && this.#decoder.size < this.parallel && this.#queue.length > 0) this.#start(this.#queue.shift()!);
        if (this.#decoder.size > 0) this.#decoder.round();
        await breathe();
      }
    } finally {
      this.#working = false;
    }
  }

  #start(job: Job): void {
    const { target, spec, tokenizer } = this.engine;
    const { g, hooks } = job;
    const stops = new StopStrings(g.stop);
    const ended = () => this.#closed || hooks.signal?.aborted === true;
    let steps: BatchSequence["steps"];
    try {
      steps = decodeSteps(target, g.ids, {
        maxNewTokens: g.maxTokens,
        sampling: { temperature: g.temperature, topK: g.topK, topP: g.topP },
        seed: g.seed,
        stopIds: tokenizer.eosIds,
        stop: () => ended() || stops.stopped, // a disconnect, shutdown, or a stop string in the text
        sharing: () => this.#decoder.size,
      }, makeProposer(spec.config, spec.head));
    } catch (err) {
      job.reject(err);
      return;
    }
    const stream = tokenizer.streamDecoder(g.ids);
    let text = "";
    const emit = (piece: string) => {
      if (piece === "") return;
      text += piece;
      hooks.onText?.(piece);
    };
    this.#decoder.add({
      steps,
      onToken: (token) => emit(stops.push(stream.push(token))),
      onDone: (s) => {
        emit(stops.finish(stream.flush()));
        job.resolve({
          text,
          promptTokens: s.promptTokens,
          completionTokens: s.newTokens,
          finishReason: openAiFinish(s.stopReason, stops) ?? "cancelled",
          stats: s,
        });
      },
      onError: (err) => job.reject(err),
      // its caches did not fit beside the running requests: it waits, first in the queue, until one ends
      onNoMemory: () => (this.#closed ? job.resolve(cancelled(g)) : this.#queue.unshift(job)),
    });
  }
}

function cancelled(g: Generation): GenerationResult {
  return { text: "", promptTokens: g.ids.length, completionTokens: 0, finishReason: "cancelled", stats: null };
}

// one turn of the event loop: sockets are read and written, signals and aborts delivered
function breathe(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
