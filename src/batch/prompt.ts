// prompt.ts — an item's input as prompt token ids: plain text through the tokenizer; chat messages
// through the model's chat template (tokenizer_config.json `chat_template`), or joined by newlines
// when the model has none.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { readJsonFile } from "../model/config.ts";
import { EagleError } from "../util/errors.ts";
import type { TextTokenizer } from "../model/tokenizer.ts";
import type { ChatMessage, ItemInput } from "./items.ts";

export class PromptBuilder {
  #template: Template | null = null; // compiled on first use, so a broken template only fails chat items

  private constructor(
    private readonly tokenizer: TextTokenizer,
    private readonly templateSource: string | null,
    private readonly bosToken: string,
    private readonly eosToken: string,
  ) {}

  static load(dir: string, tokenizer: TextTokenizer): PromptBuilder {
    const path = join(dir, "tokenizer_config.json");
    const config = existsSync(path) ? readJsonFile(path) : {};
    return new PromptBuilder(tokenizer, templateOf(config.chat_template), tokenText(config.bos_token), tokenText(config.eos_token));
  }

  encode(input: ItemInput): number[] {
    if ("prompt" in input) return this.tokenizer.encode(input.prompt);
    if (this.templateSource === null) return this.tokenizer.encode(input.messages.map((m) => m.content).join("\n"));
    const text = this.render(input.messages);
    // a template that writes the BOS text itself gets no second BOS from the tokenizer
    const writesBos = this.bosToken !== "" && text.startsWith(this.bosToken);
    return this.tokenizer.encode(text, { addBos: writesBos ? false : undefined });
  }

  private render(messages: ChatMessage[]): string {
    try {
      this.#template ??= new Template(this.templateSource!);
      return this.#template.render({ messages, add_generation_prompt: true, bos_token: this.bosToken, eos_token: this.eosToken });
    } catch (err) {
      throw new EagleError(`chat template: ${(err as Error).message}`);
    }
  }
}

/** `chat_template` is a string, or a list of {name, template} where "default" is the one to use. */
function templateOf(t: unknown): string | null {
  if (typeof t === "string") return t;
  if (!Array.isArray(t)) return null;
  const named = t as { name?: unknown; template?: unknown }[];
  const chosen = named.find((x) => x?.name === "default") ?? named[0];
  return typeof chosen?.template === "string" ? chosen.template : null;
}

/** tokenizer_config names special tokens either as a string or as {content: "..."}. */
function tokenText(t: unknown): string {
  const content = typeof t === "object" && t !== null ? (t as { content?: unknown }).content : t;
  return typeof content === "string" ? content : "";
}
