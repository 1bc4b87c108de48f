// server.ts — the HTTP side of `eagle serve` on Bun.serve: routing, the API key, body limits, JSON and
// server-sent-event responses, metrics, and a clean shutdown. Generation is the scheduler's: a request
// is parsed, handed to it, and answered from its result (or streamed from its text as it appears).
// Every failure a request can cause becomes a JSON error response; none ends the server.
import type { Server } from "bun";
import { MemoryError } from "../native/memory.ts";
import { Metrics } from "./metrics.ts";
import { ApiError, parseChat, parseCompletion, parseJson, type ParsedRequest, type RequestContext } from "./requests.ts";
import { completionBody, type Endpoint, finishChunk, newHead, sseEvent, textChunk, usageChunk } from "./responses.ts";
import type { Scheduler } from "./scheduler.ts";

export interface ServeOptions {
  host: string;
  port: number;           // 0: a free port
  apiKey: string | null;  // null: no Authorization needed
  maxBodyBytes: number;
}

export interface RunningServer {
  readonly url: string;   // http://host:port, with the port actually bound
  readonly port: number;
  /** Stops accepting, cancels queued and running generations, ends open responses, closes the socket. */
  shutdown(): Promise<void>;
}

type Handler = (req: Request) => Promise<Response> | Response;

export function startServer(ctx: RequestContext, scheduler: Scheduler, opts: ServeOptions): RunningServer {
  const metrics = new Metrics();
  const pending = new Set<Promise<unknown>>(); // responses still being produced (shutdown waits for them)
  const track = <T>(p: Promise<T>): Promise<T> => {
    pending.add(p);
    void p.finally(() => pending.delete(p)).catch(() => {});
    return p;
  };
  const answering: Answering = { scheduler, metrics, track, model: ctx.model };

  const generate = (endpoint: Endpoint): Handler => async (req) => {
    const body = parseJson(await readBody(req, opts.maxBodyBytes));
    const parsed = endpoint === "chat" ? parseChat(body, ctx) : parseCompletion(body, ctx);
    return parsed.stream ? streamed(answering, endpoint, parsed, req) : await whole(answering, endpoint, parsed, req);
  };

  const routes: Record<string, { method: string; handle: Handler; auth: boolean }> = {
    "/v1/completions": { method: "POST", handle: generate("completion"), auth: true },
    "/v1/chat/completions": { method: "POST", handle: generate("chat"), auth: true },
    "/v1/models": { method: "GET", handle: () => Response.json(modelList(ctx.model)), auth: true },
    "/health": { method: "GET", handle: () => Response.json({ status: "ok" }), auth: false },
    "/metrics": {
      method: "GET", auth: false,
      handle: () => new Response(metrics.render({ queue: scheduler.waiting, running: scheduler.running, batches: scheduler.batches }),
        { headers: { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" } }),
    },
  };

  let closing = false;
  const answer = async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    const route = routes[path];
    let response: Response;
    try {
      if (route === undefined) throw new ApiError(404, `Invalid URL (${req.method} ${path})`, null, "unknown_url");
      if (req.method !== route.method) throw new ApiError(405, `${path} takes ${route.method}, not ${req.method}`, null, "method_not_allowed");
      if (route.auth) checkKey(req, opts.apiKey);
      if (closing) throw new ApiError(503, "the server is shutting down", null, "server_shutting_down");
      response = await route.handle(req);
    } catch (err) {
      response = errorResponse(err);
    }
    metrics.request(route ? path : "other", response.status);
    return response;
  };

  const server: Server<undefined> = Bun.serve({
    hostname: opts.host,
    port: opts.port,
    idleTimeout: 0, // a queued request may wait long for its first byte; Bun's default (10 s) would drop it
    fetch: (req) => track(answer(req)),
    error: (err) => errorResponse(err),
  });

  return {
    url: `http://${urlHost(opts.host)}:${server.port}`,
    port: server.port!,
    async shutdown() {
      closing = true;
      void server.stop(); // no new connections
      await scheduler.close();
      await Promise.allSettled([...pending]);
      await server.stop(true); // keep-alive connections idle now
    },
  };
}

/** What answering a generation request needs of the server. */
interface Answering {
  scheduler: Scheduler;
  metrics: Metrics;
  track<T>(p: Promise<T>): Promise<T>; // shutdown waits for what is tracked
  model: string;
}

async function whole(a: Answering, endpoint: Endpoint, p: ParsedRequest, req: Request): Promise<Response> {
  const head = newHead(endpoint, a.model);
  const result = await a.track(a.scheduler.submit(p.generation, { signal: req.signal }));
  if (result.stats) a.metrics.generation(result.stats);
  if (result.finishReason === "cancelled") throw new ApiError(503, "the server is shutting down; the request was cancelled", null, "server_shutting_down");
  return Response.json(completionBody(endpoint, head, result));
}

// a stream ends when the generation does; a client that goes away (request signal, or the stream
// cancelled by Bun) ends the generation
function streamed(a: Answering, endpoint: Endpoint, p: ParsedRequest, req: Request): Response {
  const head = newHead(endpoint, a.model);
  const abort = new AbortController();
  req.signal.addEventListener("abort", () => abort.abort(), { once: true });
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let open = true;
      const send = (data: object | "[DONE]") => {
        if (!open) return;
        try {
          controller.enqueue(sseEvent(data));
        } catch {
          open = false; // the stream was cancelled: the abort below ends the generation
        }
      };
      if (endpoint === "chat") send(textChunk(endpoint, head, "", true)); // the role, before any text
      const onText = (piece: string) => send(textChunk(endpoint, head, piece));
      void a.track(a.scheduler.submit(p.generation, { onText, signal: abort.signal }).then((result) => {
        if (result.stats) a.metrics.generation(result.stats);
        if (result.finishReason !== "cancelled") {
          send(finishChunk(endpoint, head, result));
          if (p.includeUsage) send(usageChunk(endpoint, head, result));
          send("[DONE]");
        }
      }, (err) => {
        send(generationError(err).body());
      }).finally(() => {
        if (open) controller.close();
        open = false;
      }));
    },
    cancel() {
      abort.abort();
    },
  });
  return new Response(body, { headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" } });
}

function checkKey(req: Request, key: string | null): void {
  if (key === null) return;
  const given = req.headers.get("authorization") ?? "";
  if (given !== `Bearer ${key}`) {
    const message = given === "" ? "no API key given: send 'Authorization: Bearer KEY'" : "incorrect API key";
    throw new ApiError(401, message, null, "invalid_api_key");
  }
}

/** The body as text, refused (413) past `max` bytes, whether it says its length or not. */
async function readBody(req: Request, max: number): Promise<string> {
  const declared = Number(req.headers.get("content-length"));
  const tooBig = () => new ApiError(413, `the body is over this server's limit of ${max} bytes`, null, "request_too_large");
  if (declared > max) throw tooBig();
  if (req.body === null) return "";
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body) {
    size += chunk.byteLength;
    if (size > max) throw tooBig();
    parts.push(chunk);
  }
  return new TextDecoder().decode(Buffer.concat(parts));
}

function errorResponse(err: unknown): Response {
  const e = err instanceof ApiError ? err : generationError(err, "internal error");
  return Response.json(e.body(), { status: e.status });
}

// a generation that failed: its caches did not fit even with nothing else running (503, the message says
// what it needed), or a bug (500, logged)
function generationError(err: unknown, internal = "internal error while generating"): ApiError {
  if (err instanceof MemoryError) return new ApiError(503, err.message, null, "insufficient_memory");
  logInternal(err);
  return new ApiError(500, internal);
}

function logInternal(err: unknown): void {
  process.stderr.write(`eagle serve: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
}

function modelList(model: string): object {
  return { object: "list", data: [{ id: model, object: "model", created: 0, owned_by: "eagle" }] };
}

// an IPv6 address goes in brackets in a URL
function urlHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
