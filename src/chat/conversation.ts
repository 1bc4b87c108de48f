// conversation.ts — the turns so far and the prompt for the next answer, kept inside the context:
// the oldest turns go first; the system message always stays.
import type { Message, PromptFormat } from "./template.ts";

export interface Turn {
  user: string;
  answer: string; // what the model said, possibly cut short by Ctrl-C
}

export type PromptPlan =
  | { fits: true; ids: number[]; dropped: number; maxNew: number } // maxNew < the asked max when the context is short
  | { fits: false; tokens: number }; // the message alone (with the system message) fills the context

export class Conversation {
  turns: Turn[] = [];

  constructor(readonly format: PromptFormat, readonly system: string | null) {}

  messages(turns: Turn[], user: string): Message[] {
    return [...this.history(turns), { role: "user", content: user }];
  }

  /** The system message and the turns, as messages (all turns so far unless given). */
  history(turns: Turn[] = this.turns): Message[] {
    const out: Message[] = this.system !== null ? [{ role: "system", content: this.system }] : [];
    for (const t of turns) out.push({ role: "user", content: t.user }, { role: "assistant", content: t.answer });
    return out;
  }

  /**
   * The prompt for `user` with as many recent turns as leave room for `maxNew` tokens in `context`.
   * Dropped turns are gone for good; the new message is not added (see `record`).
   */
  plan(user: string, encode: (text: string) => number[], context: number, maxNew: number): PromptPlan {
    const promptIds = (drop: number) => encode(this.format.render(this.messages(this.turns.slice(drop), user)));
    let drop = 0;
    let ids = promptIds(0);
    while (ids.length + maxNew > context && drop < this.turns.length) ids = promptIds(++drop);
    if (ids.length >= context) return { fits: false, tokens: ids.length };
    this.turns = this.turns.slice(drop);
    return { fits: true, ids, dropped: drop, maxNew: Math.min(maxNew, context - ids.length) };
  }

  clear(): void {
    this.turns = [];
  }

  record(user: string, answer: string): void {
    this.turns.push({ user, answer });
  }
}
