// commands.ts — the REPL's slash commands, parsed and checked. A bad command is a one-line message for
// the user, never an exception: the REPL carries on.
import { SPEC_MODES, type SpecMode } from "../decoding/spec-mode.ts";

export interface Settings {
  temp: number;
  topP: number;
  topK: number;
  seed: number; // -1: a fresh random seed per answer
  max: number;  // new tokens per answer at most
  stop: string[]; // an answer ends at the first of these (--stop), which is not shown
}

/** The settings /set changes: the numbers. */
export type NumberSetting = Exclude<keyof Settings, "stop">;

export type Command =
  | { kind: "help" }
  | { kind: "set"; key: NumberSetting; value: number }
  | { kind: "show" }
  | { kind: "spec"; mode: SpecMode }
  | { kind: "stats" }
  | { kind: "clear" }
  | { kind: "bye" }
  | { kind: "error"; message: string };

interface SettingRule {
  key: NumberSetting;
  ok: (v: number) => boolean;
  want: string;
}

// /set names, in the spelling of sampling papers and llama.cpp
const SETTINGS: Record<string, SettingRule> = {
  temp: { key: "temp", ok: (v) => v >= 0 && Number.isFinite(v), want: "a number >= 0" },
  top_p: { key: "topP", ok: (v) => v > 0 && v <= 1, want: "in (0, 1]" },
  top_k: { key: "topK", ok: (v) => Number.isInteger(v) && v >= 0, want: "an integer >= 0 (0 = off)" },
  seed: { key: "seed", ok: (v) => Number.isInteger(v) && v >= -1, want: "an integer >= -1 (-1 = random)" },
  max: { key: "max", ok: (v) => Number.isInteger(v) && v >= 1, want: "an integer >= 1" },
};
// the command line's flag names for the same settings (with or without their dashes: /set -n 64)
const FLAG_NAMES: Record<string, string> = { "top-p": "top_p", "top-k": "top_k", n: "max", "n-predict": "max", "max-tokens": "max" };


export const HELP = [
  "/help                     this list",
  "/set temp|top_p|top_k|seed|max <value>",
  "                          change sampling (temp 0 = greedy; seed -1 = random) or the answer length;",
  "                          the flag names work too: /set top-p 0.9, /set top-k 20, /set -n 64",
  "/show                     the settings, the chat template and the prompt of the conversation so far",
  "/spec none|eagle1|eagle2|auto  speculative decoding method (all but none need a draft head)",
  "/stats                    speed and acceptance of the last answer",
  "/clear                    forget the conversation",
  "/bye                      leave (also Ctrl-D, or Ctrl-C twice at an empty prompt)",
  'a line ending in \\ continues on the next line; """ opens and closes a multi-line block',
  "Ctrl-C during an answer stops it",
].join("\n");

/** `text` starts with "/". */
export function parseCommand(text: string): Command {
  const [name, ...args] = text.trim().split(/\s+/);
  const arity = (n: number, usage: string): Command | null =>
    args.length === n ? null : { kind: "error", message: `usage: ${usage}` };
  switch (name) {
    case "/help":
    case "/?":
      return { kind: "help" };
    case "/stats":
      return arity(0, "/stats") ?? { kind: "stats" };
    case "/show":
      return arity(0, "/show") ?? { kind: "show" };
    case "/clear":
      return arity(0, "/clear") ?? { kind: "clear" };
    case "/bye":
    case "/exit":
    case "/quit":
      return { kind: "bye" };
    case "/spec": {
      const usage = arity(1, "/spec none|eagle1|eagle2|auto");
      if (usage) return usage;
      const mode = SPEC_MODES.find((m) => m === args[0]);
      return mode ? { kind: "spec", mode } : { kind: "error", message: `/spec ${args[0]}: must be none, eagle1, eagle2 or auto` };
    }
    case "/set":
      return parseSet(args);
    default:
      return { kind: "error", message: `unknown command ${name} (try /help)` };
  }
}

function parseSet(args: string[]): Command {
  const names = Object.keys(SETTINGS).join("|");
  if (args.length !== 2) return { kind: "error", message: `usage: /set ${names} <value>` };
  const [name, raw] = args;
  const bare = name.replace(/^--?/, "");
  const key = Object.hasOwn(FLAG_NAMES, bare) ? FLAG_NAMES[bare] : bare;
  const rule = Object.hasOwn(SETTINGS, key) ? SETTINGS[key] : undefined;
  if (!rule) return { kind: "error", message: `/set ${name}: unknown setting (${names})` };
  const value = Number(raw);
  if (raw.trim() === "" || !rule.ok(value)) return { kind: "error", message: `/set ${name} ${raw}: must be ${rule.want}` };
  return { kind: "set", key: rule.key, value };
}

/** The /set name of a setting, for acknowledgements. */
export function settingName(key: NumberSetting): string {
  return Object.entries(SETTINGS).find(([, r]) => r.key === key)![0];
}
