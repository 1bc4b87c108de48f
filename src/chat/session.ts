// session.ts — one chat: the loaded target (and head), the conversation, the settings, and answering
// a message with streamed output that Ctrl-C can stop between tokens.
import { decode, type DecodeStats, acceptanceStats, type StopReason } from "../decoding/decode.ts";
import type { LoadedDraft } from "../model/draft.ts";
import type { LoadedModel } from "../model/loader.ts";
import { makeProposer, type SpecConfig, type SpecMode, treeDepth, withMode } from "../decoding/spec-mode.ts";
import type { TextTokenizer } from "../model/tokenizer.ts";
import { EagleError } from "../util/errors.ts";
import { resolveSeed } from "../util/rng.ts";
import { StopStrings, withStopStrings } from "../util/stop-strings.ts";
import type { Settings } from "./commands.ts";
import type { Conversation } from "./conversation.ts";

/** Where a session writes: the answer's text (stdout) and notices (stderr). */
export interface ChatOutput {
  text(s: string): void;
  notice(s: string): void;
  error(s: string): void;
}

export interface AnswerRecord {
  mode: SpecMode;
  positions: number;         // per-position figures /stats shows: the deepest a tree of the mode reaches
  tokens: number;
  decodeMs: number;          // from the first token to the last
  stop: StopReason | "stop"; // "stop": a stop string (--stop)
  stats: DecodeStats;
}

export class ChatSession {
  last: AnswerRecord | null = null;
  private stopRequested = false;

  constructor(
    private readonly target: LoadedModel,
    private readonly head: LoadedDraft | null,
    private spec: SpecConfig,
    private readonly tokenizer: TextTokenizer,
    private readonly bosText: string,
    readonly conversation: Conversation,
    readonly settings: Settings,
    private readonly out: ChatOutput,
  ) {}

  get mode(): SpecMode {
    return this.spec.mode;
  }

  get hasHead(): boolean {
    return this.head !== null;
  }

  setMode(mode: SpecMode): void {
    this.spec = withMode({ config: this.spec, head: this.head }, mode, this.target);
  }

  /** Asks the running answer to stop after its current token. */
  interrupt(): void {
    this.stopRequested = true;
  }

  /** Answers `user`, streaming the text; the answer (whole, or as far as it got) joins the history. */
  async answer(user: string): Promise<void> {
    const context = this.target.config.maxPositions;
    const plan = this.conversation.plan(user, (text) => this.encode(text), context, this.settings.max);
    if (!plan.fits) {
      this.out.error(`that message makes a ${plan.tokens}-token prompt; the context holds ${context}: no room to answer (try a shorter one)`);
      return;
    }
    if (plan.dropped > 0) this.out.notice(`(dropped ${plan.dropped} old turn${plan.dropped === 1 ? "" : "s"} to fit the context)`);
    if (plan.maxNew < this.settings.max) this.out.notice(`(the context leaves room for ${plan.maxNew} new tokens)`);

    const stops = new StopStrings(this.settings.stop);
    const run = decode(this.target, plan.ids, {
      maxNewTokens: plan.maxNew,
      sampling: { temperature: this.settings.temp, topK: this.settings.topK, topP: this.settings.topP },
      seed: resolveSeed(this.settings.seed),
      stopIds: this.tokenizer.eosIds,
      // Ctrl-C, or a stop string: the run ends after its current token, with its statistics
      stop: () => this.stopRequested || stops.stopped,
    }, makeProposer(this.spec, this.head));
    const stream = this.tokenizer.streamDecoder(plan.ids);
    const display = new LeadingSpaceTrimmer();
    let answer = "";
    let tokens = 0;
    this.stopRequested = false;
    let step = run.next();
    try {
      while (!step.done) {
        tokens++;
        const piece = stops.push(stream.push(step.value));
        answer += piece;
        this.out.text(display.push(piece));
        // decoding is synchronous FFI: let readline see a Ctrl-C between tokens
        await new Promise<void>((resolve) => setImmediate(resolve));
        step = run.next();
      }
    } catch (e) {
      run.return(undefined as never); // frees the run's caches
      throw e;
    }
    const stats = step.value;
    const tail = stops.finish(stream.flush());
    answer += tail;
    this.out.text(`${display.push(tail)}\n`);
    const stop = withStopStrings(stats.stopReason, stops);
    const marker = ENDINGS[stop]?.(this.settings.max);
    if (marker) this.out.notice(marker);
    this.conversation.record(user, answer);
    this.last = { mode: this.spec.mode, positions: treeDepth(this.spec), tokens, decodeMs: stats.decodeMs, stop, stats };
  }

  /** The rendered prompt's tokens; BOS only when the template did not already write it. */
  private encode(text: string): number[] {
    return this.tokenizer.encode(text, this.bosText !== "" && text.startsWith(this.bosText) ? { addBos: false } : {});
  }
}

/** The line after an answer that did not end by itself (an end-of-sequence token or a stop string). */
const ENDINGS: Partial<Record<StopReason | "stop", (max: number) => string>> = {
  interrupted: () => "(stopped)",
  max_tokens: (max) => `(stopped at the token limit of ${max}: /set max N for longer answers)`,
  context: () => "(stopped at the end of the context)",
};

/** The answer as shown: without the whitespace it starts with (the history keeps it). */
class LeadingSpaceTrimmer {
  private started = false;

  push(piece: string): string {
    if (this.started) return piece;
    const shown = piece.trimStart();
    this.started = shown !== "";
    return shown;
  }
}

export function formatAnswerStats(a: AnswerRecord | null): string {
  if (!a) return "no answer yet";
  const rate = a.decodeMs > 0 ? ((a.tokens * 1000) / a.decodeMs).toFixed(1) : "-";
  const lines = [`last answer: ${a.tokens} tokens in ${a.decodeMs.toFixed(0)} ms (${rate} tok/s) | stop: ${a.stop} | spec: ${a.mode}`];
  if (a.mode === "none") return lines.join("\n");
  const s = a.stats;
  const acc = acceptanceStats(s);
  lines.push(`tau: ${acc.meanAcceptanceLength.toFixed(2)} tokens per target forward over ${s.targetForwards} forwards (mean acceptance length)`);
  lines.push(`acceptance per position: ${Array.from({ length: a.positions }, (_, d) => (acc.perPositionAcceptanceRate[d] ?? 0).toFixed(2)).join(" ") || "-"} ` +
    `(accepted at depth d over all forwards; they add up to the mean acceptance length - 1)`);
  lines.push(`draft acceptance rate: ${acc.draftAcceptanceRate.toFixed(2)} (draft tokens accepted over draft tokens verified)`);
  return lines.join("\n");
}

/** /show: the settings, how the conversation becomes a prompt, and that prompt so far. */
export function formatShow(session: ChatSession): string {
  const s = session.settings;
  const stop = s.stop.length > 0 ? `, stop ${s.stop.map((x) => JSON.stringify(x)).join(" ")}` : "";
  const format = session.conversation.format;
  let prompt: string;
  try {
    prompt = format.render(session.conversation.history());
  } catch (e) {
    if (!(e instanceof EagleError)) throw e;
    prompt = `(${e.message})`;
  }
  return [
    `settings: temp ${s.temp}, top_p ${s.topP}, top_k ${s.topK}, seed ${s.seed}, max ${s.max}, spec ${session.mode}${stop}`,
    format.template === null ? "chat template: none (continuation mode: the conversation is one running text)" : `chat template:\n${format.template}`,
    `prompt so far (${count(session.conversation.turns.length, "turn")}${session.conversation.system !== null ? " and the system message" : ""}):`,
    prompt === "" ? "(empty)" : prompt,
  ].join("\n");
}

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
