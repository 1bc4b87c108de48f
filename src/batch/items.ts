// items.ts — batch input lines into work items. A line is a plain-text prompt, or a JSON object (a line
// starting with `{`) with `prompt` or `messages` and per-item options, in the OpenAI completion fields'
// names where they have one. A line that cannot become an item becomes a BadLine with a one-line message;
// the run goes on without it. Blank lines are skipped (ids still count input lines).

/** What an item's `id` may be: any JSON scalar. */
export type ItemId = string | number | boolean | null;

export interface ChatMessage {
  role: string;
  content: string;
}

export type ItemInput = { prompt: string } | { messages: ChatMessage[] };

/** Per-item generation settings; the command line gives the defaults. */
export interface ItemOptions {
  maxTokens: number;
  temperature: number; // 0 = greedy
  topK: number;        // 0 = off
  topP: number;        // 1 = off
  seed: number;        // -1 = pick one
  stop: string[];      // stop strings: the text ends before the first of them
}

export interface BatchItem {
  kind: "item";
  line: number; // 1-based input line
  id: ItemId;
  input: ItemInput;
  options: ItemOptions;
}

export interface BadLine {
  kind: "bad";
  line: number;
  id: ItemId;
  error: string;
}

export type ParsedLine = BatchItem | BadLine;

// JSON field -> option, with the check its value must pass (as data, so each rule is stated once)
const OPTION_FIELDS: Record<string, { option: Exclude<keyof ItemOptions, "stop">; ok: (v: number) => boolean; want: string }> = {
  max_tokens: { option: "maxTokens", ok: (v) => Number.isInteger(v) && v >= 0, want: "an integer >= 0" },
  temperature: { option: "temperature", ok: (v) => Number.isFinite(v) && v >= 0, want: "a number >= 0" },
  top_k: { option: "topK", ok: (v) => Number.isInteger(v) && v >= 0, want: "an integer >= 0" },
  top_p: { option: "topP", ok: (v) => v > 0 && v <= 1, want: "a number in (0, 1]" },
  seed: { option: "seed", ok: (v) => Number.isInteger(v) && v >= -1, want: "an integer >= -1" },
};
const KNOWN_FIELDS = new Set(["id", "prompt", "messages", "model", "stop", ...Object.keys(OPTION_FIELDS)]);

/** What every line is read against: the command line's options, and the name of the model the run serves
 * (its folder's name), which a `model` field may repeat but not contradict. */
export interface ItemContext {
  defaults: ItemOptions;
  model: string;
}

/** Every non-blank line of `text`, in order, as an item or a bad line. */
export function parseItems(text: string, context: ItemContext): ParsedLine[] {
  const parsed: ParsedLine[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") return;
    parsed.push(parseLine(line, i + 1, context));
  });
  return parsed;
}

export function parseLine(line: string, lineNumber: number, context: ItemContext): ParsedLine {
  if (!line.trimStart().startsWith("{")) {
    return { kind: "item", line: lineNumber, id: lineNumber, input: { prompt: line }, options: { ...context.defaults } };
  }
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return bad(lineNumber, lineNumber, `invalid JSON: ${(err as Error).message}`);
  }
  if (!isObject(value)) return bad(lineNumber, lineNumber, "invalid JSON: not an object");
  return parseObject(value, lineNumber, context);
}

function parseObject(o: Record<string, unknown>, lineNumber: number, context: ItemContext): ParsedLine {
  const id = "id" in o ? o.id : lineNumber;
  if (!isScalar(id)) return bad(lineNumber, lineNumber, `"id" must be a string, number, boolean or null`);
  const fail = (message: string) => bad(lineNumber, id, message);

  const unknown = Object.keys(o).find((k) => !KNOWN_FIELDS.has(k));
  if (unknown !== undefined) return fail(`unknown field "${unknown}"`);
  if ("prompt" in o && "messages" in o) return fail(`give "prompt" or "messages", not both`);
  if ("model" in o && o.model !== context.model) {
    return fail(typeof o.model === "string"
      ? `"model" ${JSON.stringify(o.model)}: this run serves ${JSON.stringify(context.model)} (-m); name it or leave the field out`
      : `"model" must be a string`);
  }

  let input: ItemInput;
  if ("prompt" in o) {
    if (typeof o.prompt !== "string") return fail(`"prompt" must be a string`);
    input = { prompt: o.prompt };
  } else if ("messages" in o) {
    const problem = messagesProblem(o.messages);
    if (problem) return fail(problem);
    input = { messages: o.messages as ChatMessage[] };
  } else {
    return fail(`missing "prompt" (or "messages")`);
  }

  const options = { ...context.defaults };
  for (const [field, rule] of Object.entries(OPTION_FIELDS)) {
    if (!(field in o)) continue;
    const v = o[field];
    if (typeof v !== "number" || !rule.ok(v)) return fail(`"${field}" ${JSON.stringify(v)}: must be ${rule.want}`);
    options[rule.option] = v;
  }
  if ("stop" in o) {
    const stop = stopList(o.stop);
    if (stop === null) return fail(`"stop" ${JSON.stringify(o.stop)}: must be a non-empty string or an array of them`);
    options.stop = stop;
  }
  return { kind: "item", line: lineNumber, id, input, options };
}

/** OpenAI's `stop`: one string or a list of them (null: none); null when it is neither. */
function stopList(v: unknown): string[] | null {
  if (v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.every((s) => typeof s === "string" && s !== "") ? (list as string[]) : null;
}

function messagesProblem(m: unknown): string | null {
  if (!Array.isArray(m) || m.length === 0) return `"messages" must be a non-empty array of {role, content}`;
  for (const [i, msg] of m.entries()) {
    if (!isObject(msg) || typeof msg.role !== "string" || typeof msg.content !== "string") {
      return `"messages"[${i}] must be {"role": string, "content": string}`;
    }
  }
  return null;
}

function bad(line: number, id: ItemId, error: string): BadLine {
  return { kind: "bad", line, id, error: oneLine(error) };
}

/** Error messages go in one JSON field and one stderr line: no newlines. */
export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, " ").trim();
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isScalar(v: unknown): v is ItemId {
  return v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean";
}
