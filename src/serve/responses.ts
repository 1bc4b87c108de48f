// responses.ts — OpenAI's response and stream-chunk shapes for completions and chat completions, and
// the server-sent-events framing of a stream (`data: {...}\n\n` chunks, then `data: [DONE]`).
import type { FinishReason, GenerationResult } from "./scheduler.ts";

export type Endpoint = "completion" | "chat";

/** What every body of one response shares. */
export interface ResponseHead {
  id: string;
  created: number; // unix seconds
  model: string;
}

export function newHead(endpoint: Endpoint, model: string): ResponseHead {
  const prefix = endpoint === "chat" ? "chatcmpl" : "cmpl";
  return { id: `${prefix}-${crypto.randomUUID().replaceAll("-", "")}`, created: Math.floor(Date.now() / 1000), model };
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usageOf(r: GenerationResult): Usage {
  return { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens };
}

// "cancelled" never reaches a client that is still there, except at shutdown, where it ends as "length" did
function finish(r: FinishReason): "stop" | "length" {
  return r === "stop" ? "stop" : "length";
}

/** The whole answer (stream: false). */
export function completionBody(endpoint: Endpoint, head: ResponseHead, r: GenerationResult): object {
  const usage = usageOf(r);
  if (endpoint === "completion") {
    return { ...head, object: "text_completion", choices: [{ index: 0, text: r.text, logprobs: null, finish_reason: finish(r.finishReason) }], usage };
  }
  return {
    ...head, object: "chat.completion",
    choices: [{ index: 0, message: { role: "assistant", content: r.text }, logprobs: null, finish_reason: finish(r.finishReason) }],
    usage,
  };
}

/** A chunk of text as it appears (stream: true); chat's first chunk carries the role. */
export function textChunk(endpoint: Endpoint, head: ResponseHead, text: string, first = false): object {
  if (endpoint === "completion") {
    return { ...head, object: "text_completion", choices: [{ index: 0, text, logprobs: null, finish_reason: null }] };
  }
  const delta = first ? { role: "assistant", content: text } : { content: text };
  return { ...head, object: "chat.completion.chunk", choices: [{ index: 0, delta, logprobs: null, finish_reason: null }] };
}

/** The stream's last choice chunk: no text, the finish reason. */
export function finishChunk(endpoint: Endpoint, head: ResponseHead, r: GenerationResult): object {
  if (endpoint === "completion") {
    return { ...head, object: "text_completion", choices: [{ index: 0, text: "", logprobs: null, finish_reason: finish(r.finishReason) }] };
  }
  return { ...head, object: "chat.completion.chunk", choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: finish(r.finishReason) }] };
}

/** stream_options.include_usage: after the finish chunk, one with no choices and the usage counts. */
export function usageChunk(endpoint: Endpoint, head: ResponseHead, r: GenerationResult): object {
  const object = endpoint === "completion" ? "text_completion" : "chat.completion.chunk";
  return { ...head, object, choices: [], usage: usageOf(r) };
}

const encoder = new TextEncoder();

export function sseEvent(data: object | "[DONE]"): Uint8Array {
  return encoder.encode(`data: ${data === "[DONE]" ? data : JSON.stringify(data)}\n\n`);
}
