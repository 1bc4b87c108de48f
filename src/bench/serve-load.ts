// serve-load.ts — a load on a running `eagle serve`: many clients at once, each sending its requests one
// after another over /v1/completions (whole or streamed), every answer read to its end and checked
// complete. Used by the load test and by scripts/serve-load.ts, which reports requests/s and tokens/s.

/** One request of the load. */
export interface LoadRequest {
  prompt: string;
  maxTokens: number;
  temperature: number; // 0 = greedy
  seed: number;
  stream: boolean;
}

/** One answer, read to its end. */
export interface LoadAnswer {
  request: LoadRequest;
  text: string;
  finishReason: string;
  completionTokens: number;
  ms: number; // from sending to the last byte
}

export interface LoadResult {
  answers: LoadAnswer[]; // in plan order: client by client, each client's requests in order
  seconds: number;       // wall time of the whole load
  tokens: number;        // completion tokens over every answer
}

/**
 * The fixed workload: `clients` × `requests`; client c's request j is on prompt (c + j) mod the prompts,
 * every fourth one sampled at temperature 1 (seeds 1 and 2 in turn), the rest greedy; odd clients stream.
 * So the same few (prompt, settings) pairs recur in many different batches.
 */
export function loadPlan(prompts: string[], clients: number, requests: number, maxTokens: number): LoadRequest[][] {
  return Array.from({ length: clients }, (_, c) => Array.from({ length: requests }, (_, j) => {
    const sampled = j % 4 === 3;
    return {
      prompt: prompts[(c + j) % prompts.length], maxTokens, stream: c % 2 === 1,
      temperature: sampled ? 1 : 0, seed: sampled ? 1 + ((j >> 2) % 2) : 0,
    };
  }));
}

/** What decides a request's text: requests with the same key must get the same text. */
export function answerKey(r: LoadRequest): string {
  return JSON.stringify([r.prompt, r.maxTokens, r.temperature, r.temperature > 0 ? r.seed : 0]);
}

/** Runs every client at once; throws, naming the request, at the first answer that is not complete. */
export async function runLoad(base: string, plan: LoadRequest[][], apiKey?: string): Promise<LoadResult> {
  const started = performance.now();
  const perClient = await Promise.all(plan.map(async (list) => {
    const answers: LoadAnswer[] = [];
    for (const r of list) answers.push(await ask(base, r, apiKey));
    return answers;
  }));
  const answers = perClient.flat();
  return {
    answers, seconds: (performance.now() - started) / 1000,
    tokens: answers.reduce((n, a) => n + a.completionTokens, 0),
  };
}

/** One request, its answer read whole (a stream to its [DONE]) and checked. */
export async function ask(base: string, r: LoadRequest, apiKey?: string): Promise<LoadAnswer> {
  const t0 = performance.now();
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (apiKey !== undefined) headers.Authorization = `Bearer ${apiKey}`;
  const res = await fetch(`${base}/v1/completions`, {
    method: "POST", headers,
    body: JSON.stringify({
      prompt: r.prompt, max_tokens: r.maxTokens, temperature: r.temperature, seed: r.seed,
      stream: r.stream, ...(r.stream ? { stream_options: { include_usage: true } } : {}),
    }),
  });
  const body = await res.text();
  const fail = (why: string) => new Error(`${JSON.stringify(r)}: ${why}: ${body.slice(0, 300)}`);
  if (res.status !== 200) throw fail(`status ${res.status}`);
  const whole = r.stream ? fromEvents(body, fail) : fromJson(body);
  if (whole.finishReason !== "stop" && whole.finishReason !== "length") throw fail(`finish_reason ${whole.finishReason}`);
  if (!(whole.completionTokens >= 1 && whole.completionTokens <= r.maxTokens)) throw fail(`completion_tokens ${whole.completionTokens}`);
  return { request: r, ...whole, ms: performance.now() - t0 };
}

type Whole = Pick<LoadAnswer, "text" | "finishReason" | "completionTokens">;

function fromJson(body: string): Whole {
  const b = JSON.parse(body);
  return { text: b.choices[0].text, finishReason: b.choices[0].finish_reason, completionTokens: b.usage.completion_tokens };
}

// a completions stream: text chunks, one with the finish reason, the usage chunk, then [DONE]
function fromEvents(body: string, fail: (why: string) => Error): Whole {
  const data = body.split("\n\n").filter((e) => e !== "").map((e) => {
    if (!e.startsWith("data: ")) throw fail("not a server-sent event");
    return e.slice("data: ".length);
  });
  if (data.at(-1) !== "[DONE]") throw fail("the stream did not end with [DONE]");
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
  const usage = chunks.at(-1)?.usage;
  if (usage === undefined) throw fail("no usage chunk");
  const withChoice = chunks.filter((c) => c.choices.length > 0);
  return {
    text: withChoice.map((c) => c.choices[0].text).join(""),
    finishReason: withChoice.at(-1)?.choices[0].finish_reason ?? "none",
    completionTokens: usage.completion_tokens,
  };
}
