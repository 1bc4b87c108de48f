// serve — an OpenAI-compatible HTTP server for one model: /v1/completions, /v1/chat/completions (both
// also streamed), /v1/models, /health, /metrics. Requests decode together, up to --parallel at once, in
// one batched forward per round (serve/scheduler.ts); Ctrl-C cancels what runs, closes the socket and exits 0.
import type { Argv } from "yargs";
import { PromptBuilder } from "../batch/prompt.ts";
import { FlagError } from "../util/errors.ts";
import { Interrupt } from "../util/interrupt.ts";
import { loadModel, resolvePlacement } from "../model/loader.ts";
import { DEFAULT_MODEL_DIR, modelName } from "../util/paths.ts";
import { TextTokenizer } from "../model/tokenizer.ts";
import { type ResolvedSpec, resolveSpec } from "../decoding/spec-mode.ts";
import { BatchScheduler } from "../serve/scheduler.ts";
import { startServer } from "../serve/server.ts";
import { decodesBatches } from "../native/engine.ts";
import { applyThreads, helpFirst, parallelCount, parallelFlag, parallelFor, type RuntimeArgs, runtimeFlags, type SpecArgs, specFlags } from "./common.ts";

export interface ServeArgs extends RuntimeArgs, SpecArgs {
  model: string;
  host: string;
  port: number;
  apiKey?: string;
  maxTokensLimit: number;
  maxBodyBytes: number;
  parallel?: number;
}

export function serveFlags<T>(y: Argv<T>) {
  const own = helpFirst(y, ["model", "host", "port", "api-key"])
    .usage("$0 serve [options]\n\nAn OpenAI-compatible HTTP server: POST /v1/completions, POST /v1/chat/completions (stream: true for\n" +
      "server-sent events), GET /v1/models, /health, /metrics (Prometheus). Requests are decoded together, up to --parallel at once,\n" +
      "their target forwards batched (continuous batching); the rest wait in order.")
    .option("model", { alias: "m", type: "string", default: DEFAULT_MODEL_DIR, describe: "model directory (Hugging Face layout)", defaultDescription: "models/stories260K" })
    .option("host", { type: "string", default: "127.0.0.1", describe: "address to listen on (a non-loopback one wants --api-key)" })
    .option("port", { type: "number", default: 8080, describe: "port to listen on; 0 = a free one (printed)" })
    .option("api-key", { type: "string", describe: "require 'Authorization: Bearer KEY' on /v1/ requests", defaultDescription: "none" })
    .option("max-tokens-limit", { type: "number", default: 4096, describe: "the largest max_tokens a request may ask for (and chat's default)" })
    .option("max-body-bytes", { type: "number", default: 1 << 20, describe: "the largest request body accepted (bytes)", defaultDescription: "1 MiB" });
  return specFlags(runtimeFlags(parallelFlag(own, "requests")));
}

function checkServeFlags(a: ServeArgs): void {
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) throw new FlagError("port", a.port, "an integer in [0, 65535]");
  if (!Number.isInteger(a.maxTokensLimit) || a.maxTokensLimit < 1) throw new FlagError("max-tokens-limit", a.maxTokensLimit, "an integer >= 1");
  if (!Number.isInteger(a.maxBodyBytes) || a.maxBodyBytes < 1) throw new FlagError("max-body-bytes", a.maxBodyBytes, "an integer >= 1");
  if (a.apiKey === "") throw new FlagError("api-key", '""', "a non-empty string");
}

export async function runServe(a: ServeArgs): Promise<void> {
  checkServeFlags(a);
  const given = parallelCount(a.parallel);
  applyThreads(a.threads);
  decodesBatches(); // without --threads, a small model gets every core too (see autoThreads)
  const target = loadModel(a.model, resolvePlacement(a.device, a.dtype, a.model));
  let spec: ResolvedSpec | null = null;
  try {
    spec = resolveSpec(a, a.model, target);
    const tokenizer = TextTokenizer.load(a.model);
    const engine = { target, spec, tokenizer };
    const width = parallelFor(given, target);
    const scheduler = new BatchScheduler(engine, width.parallel);
    const model = modelName(a.model);
    const ctx = { engine, prompts: PromptBuilder.load(a.model, tokenizer), model, maxTokensLimit: a.maxTokensLimit };
    let stopRequested = () => {};
    const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
    // Ctrl-C: cancel and close (below); a second one exits at once (Interrupt)
    using _interrupt = new Interrupt(() => stopRequested());
    const server = startServer(ctx, scheduler, { host: a.host, port: a.port, apiKey: a.apiKey ?? null, maxBodyBytes: a.maxBodyBytes });
    if (!isLoopback(a.host) && a.apiKey === undefined) {
      process.stderr.write(`eagle serve: warning: listening on ${a.host} without --api-key: anyone who can reach it can use it\n`);
    }
    process.stderr.write(`eagle serve: ${server.url} (model ${model}, spec ${spec.config.mode}, ${width.how})\n`);
    await stopped;
    process.stderr.write("eagle serve: shutting down\n");
    await server.shutdown();
  } finally {
    spec?.head?.model.dispose();
    target.model.dispose();
  }
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}
