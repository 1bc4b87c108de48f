// `eagle serve` end to end on the shipped stories260K model, as a subprocess on a free loopback port:
// OpenAI's shapes through plain fetch and through the official `openai` client, streaming equal to the
// whole answer, greedy text equal to `eagle generate`'s, seeds, stop strings, usage and /metrics counts,
// 4xx errors that leave the server up, a client that goes away mid-stream, the API key, and Ctrl-C.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { join } from "node:path";
import { startServe, type ServeProcess } from "../src/bench/serve-process.ts";
import { TextTokenizer } from "../src/model/tokenizer.ts";
import { DEFAULT_MODEL_DIR, REPO_ROOT } from "../src/util/paths.ts";

const CLI = join(REPO_ROOT, "src/cli.ts");
const ENV = { ...process.env, NO_COLOR: "1" };
const PROMPT = "Once upon a time";
const tokenizer = TextTokenizer.load(DEFAULT_MODEL_DIR);

/** `eagle serve -t 1` on the shipped model, on a free loopback port. */
async function startServer(args: string[] = []): Promise<ServeProcess> {
  const server = await startServe(["-t", "1", ...args], ENV);
  expect(server.stderr()).toMatch(/eagle serve: http:\/\/127\.0\.0\.1:\d+ \(model stories260K, spec \w+, parallel \d+( \(measured\))?\)/);
  return server;
}

async function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: "POST", headers: { "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** A response body as JSON (any: the tests read fields OpenAI's shapes promise). */
async function json(res: Response): Promise<any> {
  return JSON.parse(await res.text());
}

/** A server-sent-event body as its data payloads, [DONE] included. */
function events(sse: string): string[] {
  return sse.split("\n\n").filter((e) => e !== "").map((e) => {
    expect(e.startsWith("data: ")).toBe(true);
    return e.slice("data: ".length);
  });
}

function generateGreedy(prompt: string, n: number): string {
  const p = Bun.spawnSync([process.execPath, CLI, "generate", "-t", "1", "-p", prompt, "-n", String(n), "--temp", "0", "--no-stats"], { env: ENV });
  expect(p.exitCode).toBe(0);
  return p.stdout.toString().replace(/\n$/, "");
}

/** /metrics as sample name (with labels) -> value; checks every line is a comment or a sample. */
async function scrape(base: string): Promise<Map<string, number>> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toStartWith("text/plain");
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    if (line === "" || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    expect(m, `not a sample line: ${line}`).not.toBeNull();
    samples.set(m![1], Number(m![2]));
  }
  return samples;
}

let server: ServeProcess;
beforeAll(async () => {
  server = await startServer(["--max-tokens-limit", "300"]);
});
afterAll(() => {
  if (server.proc.exitCode === null) server.proc.kill("SIGKILL");
});

describe("completions and chat", () => {
  test("a greedy completion is eagle generate's text, with usage counts and finish_reason length", async () => {
    const res = await post(server.base, "/v1/completions", { model: "stories260K", prompt: PROMPT, max_tokens: 40, temperature: 0 });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({ object: "text_completion", model: "stories260K" });
    expect(body.id).toStartWith("cmpl-");
    expect(body.choices).toHaveLength(1);
    expect(body.choices[0]).toMatchObject({ index: 0, finish_reason: "length" });
    expect(body.choices[0].text).toBe(generateGreedy(PROMPT, 40));
    const promptTokens = tokenizer.encode(PROMPT).length;
    expect(body.usage).toEqual({ prompt_tokens: promptTokens, completion_tokens: 40, total_tokens: promptTokens + 40 });
  });

  test("a streamed completion's chunks add up to the whole answer, then [DONE]", async () => {
    const request = { prompt: PROMPT, max_tokens: 60, temperature: 0 };
    const whole = await json(await post(server.base, "/v1/completions", request));
    const res = await post(server.base, "/v1/completions", { ...request, stream: true, stream_options: { include_usage: true } });
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    const data = events(await res.text());
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    const withChoice = chunks.filter((c) => c.choices.length > 0);
    expect(withChoice.map((c) => c.choices[0].text).join("")).toBe(whole.choices[0].text);
    expect(withChoice.at(-1).choices[0].finish_reason).toBe("length");
    expect(withChoice.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).toBe(true);
    expect(chunks.at(-1).usage).toEqual(whole.usage);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });

  test("chat: continuation for a base model; streamed deltas add up to the message", async () => {
    const request = { model: "stories260K", messages: [{ role: "user", content: "Lily went to the park" }], max_tokens: 30, temperature: 0 };
    const res = await post(server.base, "/v1/chat/completions", request);
    expect(res.status).toBe(200);
    const whole = await json(res);
    expect(whole).toMatchObject({ object: "chat.completion", choices: [{ index: 0, message: { role: "assistant" }, finish_reason: "length" }] });
    expect(whole.id).toStartWith("chatcmpl-");
    expect(whole.usage.completion_tokens).toBe(30);
    const text = whole.choices[0].message.content;
    expect(text.length).toBeGreaterThan(0);
    const data = events(await (await post(server.base, "/v1/chat/completions", { ...request, stream: true })).text());
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true);
    expect(chunks.map((c) => c.choices[0].delta.content ?? "").join("")).toBe(text);
    expect(chunks.at(-1).choices[0]).toMatchObject({ delta: {}, finish_reason: "length" });
  });

  test("the same seed gives the same text at temperature 1; another seed another text", async () => {
    const sampled = async (seed: number) => {
      const res = await post(server.base, "/v1/completions", { prompt: PROMPT, max_tokens: 50, temperature: 1, seed });
      return (await json(res)).choices[0].text as string;
    };
    const first = await sampled(7);
    expect(await sampled(7)).toBe(first);
    expect(await sampled(8)).not.toBe(first);
  });

  test("a stop string ends the text before it, finish_reason stop; a list of them works too", async () => {
    const greedy = generateGreedy(PROMPT, 40); // ", there was a little girl named Lily. ..."
    const stop = " girl";
    expect(greedy).toContain(stop);
    for (const s of [stop, [stop, "zzz"]]) {
      const body = await json(await post(server.base, "/v1/completions", { prompt: PROMPT, max_tokens: 40, temperature: 0, stop: s }));
      expect(body.choices[0].text).toBe(greedy.slice(0, greedy.indexOf(stop)));
      expect(body.choices[0].finish_reason).toBe("stop");
    }
  });

  test("/v1/models names the model folder; /health says ok", async () => {
    const models = await json(await fetch(`${server.base}/v1/models`));
    expect(models).toMatchObject({ object: "list", data: [{ id: "stories260K", object: "model" }] });
    const health = await fetch(`${server.base}/health`);
    expect(health.status).toBe(200);
    expect(await json(health)).toEqual({ status: "ok" });
  });
});

describe("the openai client", () => {
  const client = () => new OpenAI({ baseURL: `${server.base}/v1`, apiKey: "unused", maxRetries: 0 });

  test("completions, chat and a streamed chat through the official package", async () => {
    const openai = client();
    const completion = await openai.completions.create({ model: "stories260K", prompt: PROMPT, max_tokens: 40, temperature: 0 });
    expect(completion.choices[0].text).toBe(generateGreedy(PROMPT, 40));
    expect(completion.usage?.completion_tokens).toBe(40);

    const messages = [{ role: "user" as const, content: "Tom had a red ball" }];
    const chat = await openai.chat.completions.create({ model: "stories260K", messages, max_tokens: 25, temperature: 0 });
    expect(chat.choices[0].finish_reason).toBe("length");
    const stream = await openai.chat.completions.create({ model: "stories260K", messages, max_tokens: 25, temperature: 0, stream: true });
    let streamed = "";
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? "";
    expect(streamed).toBe(chat.choices[0].message.content!);
  });

  test("an error comes back as the client's APIError with OpenAI's fields", async () => {
    const err = await client().completions.create({ model: "stories260K", prompt: PROMPT, max_tokens: 100000 }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err.status).toBe(400);
    expect(err.param).toBe("max_tokens");
  });
});

describe("bad requests are 4xx JSON errors and the server stays up", () => {
  const cases: [string, () => Promise<Response>, number, string | null][] = [
    ["malformed JSON", () => post(server.base, "/v1/completions", "{nope"), 400, null],
    ["not an object", () => post(server.base, "/v1/completions", "[1, 2]"), 400, null],
    ["no prompt", () => post(server.base, "/v1/completions", { max_tokens: 5 }), 400, "prompt"],
    ["no messages", () => post(server.base, "/v1/chat/completions", { prompt: "x" }), 400, "messages"],
    ["a message without content", () => post(server.base, "/v1/chat/completions", { messages: [{ role: "user" }] }), 400, "messages[0].content"],
    ["max_tokens of the wrong type", () => post(server.base, "/v1/completions", { prompt: "x", max_tokens: "5" }), 400, "max_tokens"],
    ["max_tokens above the limit", () => post(server.base, "/v1/completions", { prompt: "x", max_tokens: 301 }), 400, "max_tokens"],
    ["temperature below 0", () => post(server.base, "/v1/completions", { prompt: "x", temperature: -1 }), 400, "temperature"],
    ["n = 2", () => post(server.base, "/v1/completions", { prompt: "x", n: 2 }), 400, "n"],
    ["an empty stop string", () => post(server.base, "/v1/completions", { prompt: "x", stop: "" }), 400, "stop"],
    ["another model", () => post(server.base, "/v1/completions", { prompt: "x", model: "gpt-4" }), 404, "model"],
    ["a prompt longer than the context", () => post(server.base, "/v1/completions", { prompt: "the dog ran. ".repeat(400) }), 400, "prompt"],
    ["an unknown path", () => fetch(`${server.base}/v1/nothing`), 404, null],
    ["the wrong method", () => fetch(`${server.base}/v1/completions`), 405, null],
    ["a body over --max-body-bytes", () => post(server.base, "/v1/completions", { prompt: "x".repeat(2 << 20) }), 413, null],
  ];
  for (const [name, send, status, param] of cases) {
    test(name, async () => {
      const res = await send();
      expect(res.status).toBe(status);
      const body = await json(res);
      expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
      expect(body.error.type).toBe("invalid_request_error");
      expect(body.error.param).toBe(param);
      expect(typeof body.error.message).toBe("string");
    });
  }

  test("after all of them, a request is still served", async () => {
    const res = await post(server.base, "/v1/completions", { prompt: PROMPT, max_tokens: 5, temperature: 0 });
    expect(res.status).toBe(200);
    expect((await json(res)).usage.completion_tokens).toBe(5);
  });
});

describe("metrics", () => {
  test("/metrics counts the requests made and the tokens generated", async () => {
    const before = await scrape(server.base);
    const ok = 'eagle_requests_total{endpoint="/v1/completions",status="200"}';
    const bad = 'eagle_requests_total{endpoint="/v1/completions",status="400"}';
    const other = 'eagle_requests_total{endpoint="other",status="404"}';
    const usages = [];
    for (const n of [7, 9]) usages.push((await json(await post(server.base, "/v1/completions", { prompt: PROMPT, max_tokens: n, temperature: 0 }))).usage);
    await post(server.base, "/v1/completions", "{nope");
    await fetch(`${server.base}/nowhere`);
    const after = await scrape(server.base);
    const delta = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    expect(delta(ok)).toBe(2);
    expect(delta(bad)).toBe(1);
    expect(delta(other)).toBe(1);
    expect(delta("eagle_generation_tokens_total")).toBe(16);
    expect(delta("eagle_prompt_tokens_total")).toBe(usages[0].prompt_tokens + usages[1].prompt_tokens);
    expect(after.get('eagle_requests_total{endpoint="/metrics",status="200"}')).toBeGreaterThanOrEqual(1);
    expect(after.get("eagle_mean_acceptance_length")).toBeGreaterThanOrEqual(1);
    expect(after.get("eagle_queue_length")).toBe(0);
    expect(after.get("eagle_requests_in_flight")).toBe(0);
    for (const [k, v] of after) if (k.startsWith("eagle_acceptance_rate{")) expect(v >= 0 && v <= 1).toBe(true);
  });
});

describe("clients that go away, keys, Ctrl-C", () => {
  test("a client that aborts a stream mid-way frees the server for the next request", async () => {
    const abort = new AbortController();
    const res = await fetch(`${server.base}/v1/completions`, {
      method: "POST", body: JSON.stringify({ prompt: PROMPT, max_tokens: 300, temperature: 1, seed: 3, stream: true }), signal: abort.signal,
    });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toStartWith("data: ");
    abort.abort();
    await reader.read().catch(() => {}); // the read ends with the abort
    const next = await post(server.base, "/v1/completions", { prompt: PROMPT, max_tokens: 20, temperature: 0 });
    expect(next.status).toBe(200);
    expect((await json(next)).choices[0].text).toBe(generateGreedy(PROMPT, 20));
  });

  test("--api-key: /v1/ needs the Bearer key (401 otherwise), /health does not; Ctrl-C exits 0", async () => {
    const keyed = await startServer(["--api-key", "s3cret"]);
    const request = { prompt: PROMPT, max_tokens: 5, temperature: 0 };
    const none = await post(keyed.base, "/v1/completions", request);
    expect(none.status).toBe(401);
    expect((await json(none)).error.code).toBe("invalid_api_key");
    expect((await post(keyed.base, "/v1/completions", request, { Authorization: "Bearer wrong" })).status).toBe(401);
    expect((await fetch(`${keyed.base}/v1/models`)).status).toBe(401);
    expect((await post(keyed.base, "/v1/completions", request, { Authorization: "Bearer s3cret" })).status).toBe(200);
    expect((await fetch(`${keyed.base}/health`)).status).toBe(200);
    keyed.proc.kill("SIGINT");
    expect(await keyed.proc.exited).toBe(0);
    expect(keyed.stderr()).toContain("eagle serve: shutting down");
  });

  test("Ctrl-C during a stream ends the stream and the server exits 0", async () => {
    const res = await post(server.base, "/v1/completions", { prompt: PROMPT, max_tokens: 300, temperature: 1, seed: 5, stream: true });
    const reader = res.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    server.proc.kill("SIGINT");
    // the rest of the stream: either the generation finished first, or it was cut; either way it ends
    while (!(await reader.read().catch(() => ({ done: true }))).done);
    expect(await server.proc.exited).toBe(0);
    expect(server.stderr()).not.toContain("internal error");
  });
});
