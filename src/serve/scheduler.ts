// scheduler.ts — where the server's generations run. The server hands each request to a Scheduler and
// awaits its result; it never calls decode itself, so a continuous-batching scheduler (many sequences
// stepped in one forward) can replace the one-at-a-time scheduler here without the HTTP side changing.
import { contextCapacity, decode, type DecodeStats } from "../decoding/decode.ts";
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

/** One generation at a time, first come first served. Between tokens the loop yields to the event loop
 * (decoding is synchronous FFI), so requests keep being accepted and queued and disconnects are seen. */
export class SequentialScheduler implements Scheduler {
  #queue: Job[] = [];
  #running = 0;
  #working = false; // the worker loop is on: it takes the next job itself
  #closed = false;
  #idle: Promise<void> = Promise.resolve(); // settles when the worker loop ends

  constructor(private readonly engine: Engine) {}

  get waiting(): number {
    return this.#queue.length;
  }

  get running(): number {
    return this.#running;
  }

  submit(g: Generation, hooks: GenerationHooks = {}): Promise<GenerationResult> {
    if (this.#closed || hooks.signal?.aborted) return Promise.resolve(cancelled(g));
    return new Promise((resolve, reject) => {
      const job: Job = { g, hooks, resolve, reject };
      this.#queue.push(job);
      // a request that goes away while it waits leaves the queue
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

  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.resolve(cancelled(job.g));
    await this.#idle;
  }

  async #work(): Promise<void> {
    this.#working = true;
    for (let job = this.#queue.shift(); job !== undefined; job = this.#queue.shift()) {
      this.#running++;
      try {
        job.resolve(await this.#run(job));
      } catch (err) {
        job.reject(err);
      } finally {
        this.#running--;
      }
    }
    this.#working = false;
  }

  async #run({ g, hooks }: Job): Promise<GenerationResult> {
    const { target, spec, tokenizer } = this.engine;
    const stops = new StopStrings(g.stop);
    const ended = () => this.#closed || hooks.signal?.aborted === true;
    const run = decode(target, g.ids, {
      maxNewTokens: g.maxTokens,
      sampling: { temperature: g.temperature, topK: g.topK, topP: g.topP },
      seed: g.seed,
      stopIds: tokenizer.eosIds,
      stop: () => ended() || stops.stopped, // a disconnect, shutdown, or a stop string in the text
    }, makeProposer(spec.config, spec.head));
    const stream = tokenizer.streamDecoder(g.ids);
    let text = "";
    const emit = (piece: string) => {
      if (piece === "") return;
      text += piece;
      hooks.onText?.(piece);
    };
    let step = run.next();
    while (!step.done) {
      emit(stops.push(stream.push(step.value)));
      await breathe();
      step = run.next();
    }
    emit(stops.finish(stream.flush()));
    const s = step.value;
    return {
      text,
      promptTokens: s.promptTokens,
      completionTokens: s.newTokens,
      finishReason: openAiFinish(s.stopReason, stops) ?? "cancelled",
      stats: s,
    };
  }
}

function cancelled(g: Generation): GenerationResult {
  return { text: "", promptTokens: g.ids.length, completionTokens: 0, finishReason: "cancelled", stats: null };
}

// one turn of the event loop: sockets are read and written, signals and aborts delivered
function breathe(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
