// bench — a fixed workload that anyone can rerun: prompt and decode tokens/s of plain decoding on the
// shipped model and on a ~100M-parameter random model, with the time per token split into libtorch,
// FFI crossings and TypeScript.
import type { Argv } from "yargs";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { decode, type DecodeStats } from "../decode.ts";
import { KvCache } from "../engine.ts";
import { EagleError } from "../errors.ts";
import { type LoadedModel, loadModel, resolvePlacement } from "../loader.ts";
import { applyThreads, type RuntimeArgs, runtimeFlags } from "./common.ts";
import { DEFAULT_MODEL_DIR, REPO_ROOT } from "../paths.ts";
import { type RandomModelSpec, writeRandomModel } from "../random-model.ts";

// ~134M parameters: Llama shapes at GPT-2-small width, 32K vocabulary
export const BENCH_LARGE: RandomModelSpec = {
  name: "random-134m", hiddenSize: 768, intermediateSize: 2048, layers: 12, heads: 12, kvHeads: 12,
  vocabSize: 32000, maxPositions: 2048,
};

interface BenchArgs extends RuntimeArgs {
  models: string[];
  n: number;
  promptTokens: number;
  runs: number;
  json: boolean;
}

export function benchFlags<T>(y: Argv<T>) {
  return runtimeFlags(y)
    .option("models", { type: "string", array: true, default: ["stories260K", "random-134m"], describe: "model directories, or the names stories260K / random-134m" })
    .option("n", { type: "number", default: 128, describe: "tokens to decode per run" })
    .option("prompt-tokens", { type: "number", default: 64, describe: "prompt length in tokens" })
    .option("runs", { type: "number", default: 3, describe: "timed runs per model (after one warm-up)" })
    .option("json", { type: "boolean", default: false, describe: "print one JSON object instead of a table" });
}

function resolveModelDir(name: string): string {
  if (name === "stories260K") return DEFAULT_MODEL_DIR;
  if (name !== BENCH_LARGE.name) return name;
  const dir = join(REPO_ROOT, "build", "bench-models", BENCH_LARGE.name);
  if (!existsSync(join(dir, "config.json"))) {
    process.stderr.write(`bench: writing ${dir} (once)...\n`);
    const tmp = `${dir}.tmp-${process.pid}`;
    mkdirSync(tmp, { recursive: true });
    writeRandomModel(tmp, BENCH_LARGE, 1234);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  }
  return dir;
}

/** Mean time of one FFI crossing, from a call that does no work in the shim. */
function ffiCrossingUs(m: LoadedModel): number {
  const kv = KvCache.create(m.model, 1);
  const calls = 20000;
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) void kv.length;
  const us = ((performance.now() - t0) * 1000) / calls;
  kv.dispose();
  return us;
}

export interface BenchResult {
  model: string;
  params: number;
  promptTokensPerS: number;
  decodeTokensPerS: number;
  msPerToken: number;
  libtorchMsPerToken: number;
  ffiMsPerToken: number;
  tsMsPerToken: number;
  overheadPct: number; // (ffi + ts) / total
}

function runOnce(m: LoadedModel, prompt: number[], n: number): DecodeStats {
  const run = decode(m, prompt, { maxNewTokens: n, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stopIds: [] });
  for (;;) {
    const step = run.next();
    if (step.done) return step.value;
  }
}

const FFI_CALLS_PER_TOKEN = 4; // forward, argmax, keep, cache length

function benchModel(name: string, a: BenchArgs): BenchResult {
  const m = loadModel(resolveModelDir(name), resolvePlacement(a.device, a.dtype));
  try {
    const vocab = m.config.vocabSize;
    const prompt = Array.from({ length: a.promptTokens }, (_, i) => (i === 0 ? 1 : 3 + ((i * 7919) % (vocab - 3))));
    runOnce(m, prompt, Math.min(8, a.n));
    const runs = Array.from({ length: a.runs }, () => runOnce(m, prompt, a.n));
    const sum = (f: (s: DecodeStats) => number) => runs.reduce((t, s) => t + f(s), 0);
    const tokens = sum((s) => s.newTokens);
    const steps = sum((s) => s.targetForwards);
    const msPerToken = sum((s) => s.decodeMs) / steps; // per decode step: one forward, one token
    const ffiMs = (ffiCrossingUs(m) * FFI_CALLS_PER_TOKEN) / 1000;
    const shimMs = sum((s) => s.shimMs) / steps;
    const tsMs = Math.max(0, msPerToken - shimMs);
    return {
      model: name, params: m.model.weightBytes() / (m.placement.dtype === "f32" ? 4 : 2),
      promptTokensPerS: (sum((s) => s.promptTokens) * 1000) / sum((s) => s.promptMs),
      decodeTokensPerS: (tokens * 1000) / sum((s) => s.decodeMs), msPerToken,
      libtorchMsPerToken: shimMs - ffiMs, ffiMsPerToken: ffiMs, tsMsPerToken: tsMs,
      overheadPct: (100 * (ffiMs + tsMs)) / msPerToken,
    };
  } finally {
    m.model.dispose();
  }
}

export function runBench(a: BenchArgs): void {
  if (!Number.isInteger(a.n) || a.n < 1) throw new EagleError(`--n ${a.n}: must be an integer >= 1`, 2);
  if (!Number.isInteger(a.runs) || a.runs < 1) throw new EagleError(`--runs ${a.runs}: must be an integer >= 1`, 2);
  applyThreads(a.threads);
  const results = a.models.map((name) => benchModel(name, a));
  if (a.json) {
    process.stdout.write(`${JSON.stringify({ workload: { n: a.n, promptTokens: a.promptTokens, runs: a.runs }, results }, null, 2)}\n`);
    return;
  }
  const f = (x: number, d = 2) => x.toFixed(d);
  process.stdout.write(`plain decoding, greedy, ${a.promptTokens}-token prompt, ${a.n} new tokens, ${a.runs} runs\n`);
  process.stdout.write("model          params  prompt tok/s  decode tok/s  ms/token  libtorch  ffi     ts      overhead\n");
  for (const r of results) {
    process.stdout.write(`${r.model.padEnd(14)} ${(r.params / 1e6).toFixed(1).padStart(5)}M ${f(r.promptTokensPerS, 1).padStart(13)} ` +
      `${f(r.decodeTokensPerS, 1).padStart(13)} ${f(r.msPerToken, 3).padStart(9)} ${f(r.libtorchMsPerToken, 3).padStart(9)} ` +
      `${f(r.ffiMsPerToken, 4).padStart(7)} ${f(r.tsMsPerToken, 3).padStart(7)} ${f(r.overheadPct, 1).padStart(7)}%\n`);
  }
}
