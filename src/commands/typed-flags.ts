// typed-flags.ts — the flags as the user typed them (`-n`, `--max-tokens`), read from argv with a command's
// option table, so that a bad flag is named as typed; and the rules yargs does not keep by itself: a flag
// that takes a value gets one, a repeated flag takes its last value (as llama.cpp's do; array flags such
// as --methods still gather theirs), a number parses, a choice is one of its choices.
import { EagleError, type FlagError } from "../util/errors.ts";

/** One flag as typed, the last time it was given; `text` is null when no value followed it. */
export interface TypedFlag {
  flag: string;
  text: string | null;
}

/** The parts of yargs' option table (its getOptions()) read here. */
export interface OptionTable {
  key: Record<string, unknown>;
  alias: Record<string, string[]>;
  boolean: string[];
  count: string[];
  array: string[];
  number: string[];
  choices: Record<string, readonly unknown[]>;
}

export interface TypedFlags {
  byKey: Map<string, TypedFlag>; // by the option's key as declared ("top-k", "n")
  keyOf: Map<string, string>; // camelCase of every spelling (key or alias) -> key
  spellings: Map<string, string[]>; // key -> every name yargs may have set for it in the parsed arguments
}

const camel = (s: string) => s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
// a negative number is a value, not a flag (yargs reads `--temp -1` so too)
const NUMBER = /^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const isValue = (token: string) => !token.startsWith("-") || token === "-" || NUMBER.test(token);

function optionNames(t: OptionTable): Pick<TypedFlags, "keyOf" | "spellings"> {
  const aliases = new Set(Object.values(t.alias).flat());
  const keyOf = new Map<string, string>();
  const spellings = new Map<string, string[]>();
  for (const key of Object.keys(t.key)) {
    if (aliases.has(key)) continue;
    const names = [key, ...(t.alias[key] ?? [])];
    spellings.set(key, [...new Set(names.flatMap((n) => [n, camel(n)]))]);
    for (const n of names) keyOf.set(camel(n), key);
  }
  return { keyOf, spellings };
}

/** Reads `argv` (up to a `--`) against a command's options; unknown flags are left to yargs to report. */
export function scanFlags(argv: string[], t: OptionTable): TypedFlags {
  const names = optionNames(t);
  const noValue = new Set([...t.boolean, ...t.count]);
  const byKey = new Map<string, TypedFlag>();
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (token === "--") break;
    const m = /^(--?)([^=]+)(?:=([^]*))?$/.exec(token);
    if (!m || NUMBER.test(token)) continue;
    const dashes = m[1];
    let [name, attached] = [m[2], m[3] as string | undefined];
    if (dashes === "-" && name.length > 1 && attached === undefined) [name, attached] = [name[0], name.slice(1)]; // -n5
    const key = names.keyOf.get(camel(name));
    if (key === undefined || noValue.has(key)) continue;
    let text = attached ?? null;
    if (text === null && i + 1 < argv.length && isValue(argv[i + 1])) text = argv[++i];
    byKey.set(key, { flag: `${dashes}${name}`, text });
  }
  return { byKey, ...names };
}

export function typedFlag(flags: TypedFlags, name: string): TypedFlag | undefined {
  const key = flags.keyOf.get(camel(name));
  return key === undefined ? undefined : flags.byKey.get(key);
}

/** Applies the rules above to yargs' parsed arguments, in place; throws a usage error (exit 2). */
export function checkFlags(flags: TypedFlags, t: OptionTable, parsed: Record<string, unknown>): void {
  const label = (key: string) => flags.byKey.get(key)?.flag ?? `--${key}`;
  for (const { flag, text } of flags.byKey.values()) {
    if (text === null) throw new EagleError(`${flag}: needs a value`, 2);
  }
  for (const [key, names] of flags.spellings) {
    const value = parsed[key];
    if (!t.array.includes(key) && Array.isArray(value)) {
      for (const n of names) if (n in parsed) parsed[n] = value[value.length - 1];
    }
  }
  for (const key of t.number) {
    if ([parsed[key]].flat().some((v) => typeof v === "number" && Number.isNaN(v))) {
      throw new EagleError(`${label(key)} ${flags.byKey.get(key)?.text ?? "NaN"}: must be a number`, 2);
    }
  }
  for (const [key, choices] of Object.entries(t.choices)) {
    const bad = [parsed[key]].flat().find((v) => v !== undefined && !choices.includes(v));
    if (bad !== undefined) throw new EagleError(`${label(key)} ${String(bad)}: must be one of ${choices.join(", ")}`, 2);
  }
}

/** A FlagError's message with the flag and value as the user typed them, where they did. */
export function typedMessage(e: FlagError, flags: TypedFlags): string {
  const typed = typedFlag(flags, e.flag);
  return typed?.text != null ? `${typed.flag} ${typed.text}: must be ${e.want}` : e.message;
}

/** yargs' "Unknown argument(s): a, b" with each name as typed in argv (`--bogus`, `-x`). */
export function unknownAsTyped(message: string, argv: string[]): string {
  const m = /^(Unknown arguments?: )(.*)$/.exec(message);
  if (!m) return message;
  const typed = m[2].split(", ").map((name) => {
    const token = argv.find((a) => a.replace(/=[^]*$/, "").replace(/^--?/, "") === name && a.startsWith("-"));
    return token ? token.replace(/=[^]*$/, "") : name;
  });
  return `${m[1]}${typed.join(", ")}`;
}
