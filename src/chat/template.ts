// template.ts — how a conversation becomes prompt text: the model's own Jinja chat template
// (tokenizer_config.json `chat_template`, or chat_template.jinja beside it), or, for base models
// without one, plain continuation of the running text.
import { existsSync } from "node:fs";
import { readTextFile } from "../util/files.ts";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { readJsonFile } from "../model/config.ts";
import { EagleError } from "../util/errors.ts";

export interface Message {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface PromptFormat {
  /** null: continuation mode */
  readonly template: string | null;
  /** prompt text for these messages, ending where the assistant's answer begins */
  render(messages: Message[]): string;
}

type Json = Record<string, unknown>;

/** The template source a model ships, or null. `chat_template` may also be a list of named templates. */
export function findChatTemplate(modelDir: string): string | null {
  const config = tokenizerConfig(modelDir);
  const raw = config.chat_template;
  if (typeof raw === "string") return raw;
  if (Array.isArray(raw)) {
    const named = raw as { name?: unknown; template?: unknown }[];
    const pick = named.find((t) => t.name === "default") ?? named[0];
    if (typeof pick?.template === "string") return pick.template;
  }
  const file = join(modelDir, "chat_template.jinja");
  return existsSync(file) ? readTextFile(file, "chat template") : null;
}

export function tokenizerConfig(modelDir: string): Json {
  const path = join(modelDir, "tokenizer_config.json");
  return existsSync(path) ? readJsonFile(path) : {};
}

/** A special token as tokenizer_config names it: a string or {content: "..."}. */
export function tokenText(token: unknown): string | null {
  const content = typeof token === "object" && token !== null ? (token as Json).content : token;
  return typeof content === "string" ? content : null;
}

/** The model's chat format; `templateFile` (--chat-template) replaces the model's own template. */
export function loadPromptFormat(modelDir: string, templateFile?: string): PromptFormat {
  let source: string | null;
  if (templateFile !== undefined) {
    if (!existsSync(templateFile)) throw new EagleError(`--chat-template ${templateFile}: file not found`, 2);
    source = readTextFile(templateFile, "chat template");
  } else {
    source = findChatTemplate(modelDir);
  }
  if (source === null) return new ContinuationFormat();
  const config = tokenizerConfig(modelDir);
  return new JinjaFormat(source, tokenText(config.bos_token) ?? "", tokenText(config.eos_token) ?? "", templateFile ?? modelDir);
}

class JinjaFormat implements PromptFormat {
  private readonly compiled: Template;

  constructor(readonly template: string, private readonly bosToken: string, private readonly eosToken: string,
    private readonly origin: string) {
    try {
      this.compiled = new Template(template);
    } catch (e) {
      throw new EagleError(`${origin}: chat template does not parse: ${(e as Error).message}`);
    }
  }

  render(messages: Message[]): string {
    try {
      return this.compiled.render({ messages, add_generation_prompt: true, bos_token: this.bosToken, eos_token: this.eosToken });
    } catch (e) {
      throw new EagleError(`${this.origin}: chat template failed: ${(e as Error).message}`);
    }
  }
}

/** No template: the conversation is the concatenated text, and the model continues it. */
class ContinuationFormat implements PromptFormat {
  readonly template = null;

  render(messages: Message[]): string {
    return messages.reduce((text, m) => joinText(text, m.content, m.role !== "assistant"), "");
  }
}

// a user's words start a new word after the running text; the model's own text joins as it came
function joinText(text: string, next: string, spaced: boolean): string {
  if (!spaced || text === "" || next === "" || /\s$/.test(text) || /^\s/.test(next)) return text + next;
  return `${text} ${next}`;
}
