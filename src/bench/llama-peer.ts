// llama-peer.ts — bench's llama.cpp peer: the same prompts (token ids) decoded greedily by llama.cpp
// through node-llama-cpp, in a separate Node.js process (llama-peer-runner.mjs) that answers in JSON.
// Timed like eagle's bench: after a warm-up, per prompt from the first generated token to the last.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { EagleError } from "../util/errors.ts";
import type { PeerInstall } from "./llama-peer-install.ts";

const RUNNER = join(import.meta.dir, "llama-peer-runner.mjs");

export interface LlamaPeerRun {
  gguf: string;             // from cachedLlamaGguf
  threads: number;
  contextSize: number;      // at least the longest prompt + newTokens
  prompts: number[][];      // token ids, fed as given (BOS included where the prompt has it)
  newTokens: number;        // per prompt; end-of-sequence ignored: a fixed workload
  warmupTokens?: number;    // an untimed run on the first prompt first; default 8
  kvCacheType?: "F32" | "F16"; // default F32, the precision eagle's CPU bench computes in
}

/** llama.cpp's own perf counters for one prompt (llama_perf_context_print). */
export interface LlamaCounters {
  promptEvalMs: number;     // batches of more than one token: the prefill
  promptEvalTokens: number;
  evalMs: number;           // one-token batches: the decode steps (newTokens - 1 of them)
  evalTokens: number;
}

export interface LlamaPeerResult {
  llamaCppRelease: string;  // the llama.cpp release node-llama-cpp's binary was built from
  nodeLlamaCpp: string;     // node-llama-cpp version
  threads: number;          // what the context reports it uses
  contextSize: number;      // as llama.cpp rounded it
  tokens: number[][];       // generated ids per prompt
  promptMs: number[];       // per prompt, JavaScript wall time from the call to the first generated token
  decodeMs: number[];       // per prompt, JavaScript wall time from the first generated token to the last
  engine: LlamaCounters[];  // per prompt
  tokensPerS: number;       // all generated tokens / all decodeMs, as eagle's bench computes tokens_per_s
  engineEvalTokensPerS: number; // llama.cpp's view: all evalTokens / all evalMs (decode steps only)
}

interface RunnerReply {
  ok: boolean;
  error?: string;
  llamaCppRelease: string;
  threads: number;
  contextSize: number;
  results: { tokens: number[]; promptMs: number; decodeMs: number; counters: LlamaCounters }[];
}

function checkRun(r: LlamaPeerRun): void {
  const longest = Math.max(...r.prompts.map((p) => p.length));
  if (r.prompts.length === 0 || r.prompts.some((p) => p.length === 0)) throw new EagleError("llama.cpp peer: every prompt needs a token");
  if (!Number.isInteger(r.newTokens) || r.newTokens < 1) throw new EagleError(`llama.cpp peer: newTokens ${r.newTokens} must be an integer >= 1`);
  if (!Number.isInteger(r.threads) || r.threads < 1) throw new EagleError(`llama.cpp peer: threads ${r.threads} must be an integer >= 1`);
  if (longest + r.newTokens > r.contextSize) {
    throw new EagleError(`llama.cpp peer: context ${r.contextSize} is smaller than the longest prompt (${longest}) + ${r.newTokens} new tokens`);
  }
}

/** Runs `run` through llama.cpp under Node.js and returns its tokens and timings. */
export function runLlamaPeer(peer: PeerInstall, run: LlamaPeerRun): LlamaPeerResult {
  checkRun(run);
  const job = { peerDir: peer.dir, warmupTokens: 8, kvCacheType: "F32", ...run };
  const p = spawnSync("node", [RUNNER], {
    input: JSON.stringify(job), encoding: "utf8", maxBuffer: 256 * 2 ** 20, stdio: ["pipe", "pipe", "pipe"],
  });
  if (p.error) throw new EagleError(`llama.cpp peer: cannot run node: ${p.error.message}`);
  const last = p.stdout.trim().split("\n").slice(-1)[0] ?? "";
  let reply: RunnerReply;
  try {
    reply = JSON.parse(last) as RunnerReply;
  } catch {
    const why = (p.stderr.trim().split("\n").slice(-1)[0] ?? "") || `exit ${p.status ?? p.signal}`;
    throw new EagleError(`llama.cpp peer: the runner gave no result: ${why}`);
  }
  if (!reply.ok) throw new EagleError(`llama.cpp peer: ${reply.error}`);
  const r = reply.results;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const engine = r.map((x) => x.counters);
  return {
    llamaCppRelease: reply.llamaCppRelease, nodeLlamaCpp: peer.version, threads: reply.threads, contextSize: reply.contextSize,
    tokens: r.map((x) => x.tokens), promptMs: r.map((x) => x.promptMs), decodeMs: r.map((x) => x.decodeMs), engine,
    tokensPerS: (sum(r.map((x) => x.tokens.length)) * 1000) / sum(r.map((x) => x.decodeMs)),
    engineEvalTokensPerS: (sum(engine.map((c) => c.evalTokens)) * 1000) / sum(engine.map((c) => c.evalMs)),
  };
}
