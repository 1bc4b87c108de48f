// requests.ts — OpenAI request bodies (/v1/completions, /v1/chat/completions) into checked generations,
// and the error every refusal becomes: {"error": {message, type, param, code}} with a 4xx status, as
// OpenAI answers. Fields this engine does not act on (user, logprobs: null, penalties at 0, ...) are
// ignored, as most OpenAI-compatible servers do; `n` other than 1 is refused.
import { resolveSeed } from "../util/rng.ts";
import { EagleError } from "../util/errors.ts";
import { checkFits, type Engine, type Generation } from "./scheduler.ts";

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null,
    readonly code: string | null = null) {
    super(message);
    this.name = "ApiError";
  }

  get type(): string {
    if (this.status === 401) return "authentication_error";
    return this.status >= 500 ? "server_error" : "invalid_request_error";
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export interface ChatMessage {
  role: string;
  content: string;
}

/** Prompt text or chat messages as prompt ids: the model's chat template, or continuation for a base
 * model (the command passes batch's PromptBuilder). Throws an EagleError when a template fails. */
export interface PromptEncoder {
  encode(input: { prompt: string } | { messages: ChatMessage[] }): number[];
}

/** What requests are read against: the model's name (a `model` field must repeat it) and the limits. */
export interface RequestContext {
  engine: Engine;
  prompts: PromptEncoder;
  model: string;
  maxTokensLimit: number;
}

export interface ParsedRequest {
  generation: Generation;
  stream: boolean;
  includeUsage: boolean; // stream_options.include_usage: a last chunk with the usage counts
}

type Body = Record<string, unknown>;

export function parseJson(text: string): Body {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, `the body is not valid JSON: ${(err as Error).message}`, null, "invalid_json");
  }
  if (!isObject(value)) throw new ApiError(400, "the body must be a JSON object", null, "invalid_json");
  return value;
}

/** /v1/completions: `prompt` is a string (or a list holding one); max_tokens defaults to 16, as OpenAI's does. */
export function parseCompletion(body: Body, ctx: RequestContext): ParsedRequest {
  let prompt = body.prompt;
  if (Array.isArray(prompt) && prompt.length === 1) prompt = prompt[0];
  if (prompt === undefined) throw missing("prompt");
  if (typeof prompt !== "string") throw new ApiError(400, "'prompt' must be a string (one prompt per request)", "prompt", "invalid_type");
  return parseCommon(body, ctx, { prompt }, "prompt", 16);
}

/** /v1/chat/completions: max_tokens (or max_completion_tokens) defaults to the server's limit. */
export function parseChat(body: Body, ctx: RequestContext): ParsedRequest {
  const messages = readMessages(body.messages);
  if (present(body.max_completion_tokens) && !present(body.max_tokens)) body = { ...body, max_tokens: body.max_completion_tokens };
  return parseCommon(body, ctx, { messages }, "messages", ctx.maxTokensLimit);
}

function parseCommon(body: Body, ctx: RequestContext, input: { prompt: string } | { messages: ChatMessage[] },
  inputField: string, defaultMaxTokens: number): ParsedRequest {
  if (present(body.model) && body.model !== ctx.model) {
    throw new ApiError(404, `The model '${String(body.model)}' does not exist; this server serves '${ctx.model}'`, "model", "model_not_found");
  }
  const n = optional(body, "n", "an integer", Number.isInteger, 1);
  if (n !== 1) throw new ApiError(400, `'n' ${n}: only n = 1 is supported`, "n", "invalid_value");
  const maxTokens = optional(body, "max_tokens", "an integer >= 1", (v) => Number.isInteger(v) && v >= 1, defaultMaxTokens);
  if (maxTokens > ctx.maxTokensLimit) {
    throw new ApiError(400, `'max_tokens' ${maxTokens} is above this server's limit of ${ctx.maxTokensLimit}`, "max_tokens", "invalid_value");
  }
  const generation: Generation = {
    ids: [],
    maxTokens,
    temperature: optional(body, "temperature", "a number >= 0", (v) => Number.isFinite(v) && v >= 0, 1),
    topP: optional(body, "top_p", "a number in (0, 1]", (v) => v > 0 && v <= 1, 1),
    topK: optional(body, "top_k", "an integer >= 0", (v) => Number.isInteger(v) && v >= 0, 0),
    seed: resolveSeed(optional(body, "seed", "an integer >= 0", (v) => Number.isSafeInteger(v) && v >= 0, -1)),
    stop: readStop(body.stop),
  };
  const stream = optionalBoolean(body, "stream");
  const options = body.stream_options;
  if (present(options) && !isObject(options)) throw new ApiError(400, "'stream_options' must be an object", "stream_options", "invalid_type");
  const includeUsage = present(options) && (options as Body).include_usage === true;
  generation.ids = encode(ctx, input, inputField, maxTokens);
  return { generation, stream, includeUsage };
}

// the prompt as ids, refused here (not mid-queue) when its template fails or it leaves no room to answer
function encode(ctx: RequestContext, input: { prompt: string } | { messages: ChatMessage[] }, field: string, maxTokens: number): number[] {
  try {
    const ids = ctx.prompts.encode(input);
    checkFits(ctx.engine, ids.length, maxTokens);
    return ids;
  } catch (err) {
    if (err instanceof EagleError) throw new ApiError(400, err.message, field, "invalid_value");
    throw err;
  }
}

function readMessages(m: unknown): ChatMessage[] {
  if (m === undefined) throw missing("messages");
  if (!Array.isArray(m) || m.length === 0) throw new ApiError(400, "'messages' must be a non-empty array", "messages", "invalid_type");
  return m.map((msg, i) => {
    const where = `messages[${i}]`;
    if (!isObject(msg) || typeof msg.role !== "string") throw new ApiError(400, `'${where}' must be an object with a string 'role'`, where, "invalid_type");
    return { role: msg.role, content: contentText(msg.content, `${where}.content`) };
  });
}

// a message's content: a string, or a list of text parts ({"type": "text", "text": ...}) joined
function contentText(c: unknown, where: string): string {
  if (typeof c === "string") return c;
  if (Array.isArray(c) && c.every((p) => isObject(p) && p.type === "text" && typeof p.text === "string")) {
    return c.map((p) => (p as Body).text as string).join("");
  }
  throw new ApiError(400, `'${where}' must be a string or a list of text parts`, where, "invalid_type");
}

/** OpenAI's `stop`: null, a string, or a list of strings; each non-empty. */
function readStop(v: unknown): string[] {
  if (!present(v)) return [];
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((s) => typeof s === "string" && s !== "")) {
    throw new ApiError(400, "'stop' must be a non-empty string or a list of them", "stop", "invalid_type");
  }
  return list as string[];
}

// a numeric field: absent or null gives the default; a wrong type or value is a 400 naming it
function optional(body: Body, field: string, want: string, ok: (v: number) => boolean, fallback: number): number {
  const v = body[field];
  if (!present(v)) return fallback;
  if (typeof v !== "number") throw new ApiError(400, `'${field}' must be ${want}, not ${JSON.stringify(v)}`, field, "invalid_type");
  if (!ok(v)) throw new ApiError(400, `'${field}' ${v}: must be ${want}`, field, "invalid_value");
  return v;
}

function optionalBoolean(body: Body, field: string): boolean {
  const v = body[field];
  if (!present(v)) return false;
  if (typeof v !== "boolean") throw new ApiError(400, `'${field}' must be a boolean, not ${JSON.stringify(v)}`, field, "invalid_type");
  return v;
}

function missing(field: string): ApiError {
  return new ApiError(400, `you must provide '${field}'`, field, "missing_required_parameter");
}

function present(v: unknown): boolean {
  return v !== undefined && v !== null;
}

function isObject(v: unknown): v is Body {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
