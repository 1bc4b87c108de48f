// bench — a fixed workload anyone can rerun: plain decoding, EAGLE-1 and EAGLE-2 on a prompt set, each
// method's decode tokens/s, τ and acceptance by depth, the speedup over plain decoding measured in the
// same run, where each step's time goes (libtorch + FFI crossings, TypeScript), and whether greedy
// outputs are identical across methods.
import type { Argv } from "yargs";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { readTextFile } from "../files.ts";
import { join } from "node:path";
import { decode, type DecodeStats } from "../decode.ts";
import { type Divergence, explainDivergence } from "../divergence.ts";
import { KvCache } from "../engine.ts";
import { EagleError } from "../errors.ts";
import { DTYPE_BYTES, type LoadedModel, loadModel, resolvePlacement } from "../loader.ts";
import { DEFAULT_MODEL_DIR, DEFAULT_PROMPTS, REPO_ROOT } from "../paths.ts";
import { type RandomModelSpec, writeRandomModel } from "../random-model.ts";
import { makeProposer, type SpecMode } from "../speculation.ts";
import { clearStatus, showStatus } from "../status.ts";
import { TextTokenizer } from "../tokenizer.ts";
import { applyThreads, resolveSpec, type RuntimeArgs, runtimeFlags, type SpecArgs, specFlags } from "./common.ts";
import { formatBench } from "./bench-report.ts";

// ~134M parameters: Llama shapes at GPT-2-small width, 32K vocabulary
export const BENCH_LARGE: RandomModelSpec = {
  name: "random-134m", hiddenSize: 768, intermediateSize: 2048, layers: 12, heads: 12, kvHeads: 12,
  vocabSize: 32000, maxPositions: 2048,
};

interface BenchArgs extends RuntimeArgs, SpecArgs {
  model: string;
  methods?: SpecMode[];
  prompts: string;
  n: number;
  temp: number;
  seed: number;
  json: boolean;
}

export function benchFlags<T>(y: Argv<T>) {
  return specFlags(runtimeFlags(y))
    .option("model", { alias: "m", type: "string", default: "stories260K", describe: "model directory, or stories260K / random-134m (made once, random weights)" })
    .option("methods", { type: "string", array: true, choices: ["none", "eagle1", "eagle2"] as const, describe: "methods to compare", defaultDescription: "none, plus eagle1 eagle2 when a draft head is found" })
    .option("prompts", { type: "string", default: DEFAULT_PROMPTS, defaultDescription: "test/prompts/stories.txt", describe: "prompt file, one per line" })
    .option("n", { type: "number", default: 128, describe: "tokens to decode per prompt (end-of-sequence ignored: a fixed workload)" })
    .option("temp", { type: "number", default: 0, describe: "temperature; 0 = greedy, which also checks outputs are identical" })
    .option("seed", { type: "number", default: 1, describe: "sampling seed (per prompt: seed + index)" })
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

/** Prompts as token ids: text through the model's tokenizer, or fixed ids for a model without one. */
function promptIds(file: string, dir: string, vocab: number): number[][] {
  if (!existsSync(file)) throw new EagleError(`${file}: prompt file not found`);
  const lines = readTextFile(file, "prompt file").split("\n").filter((l) => l.trim() !== "");
  if (lines.length === 0) throw new EagleError(`${file}: no prompts`);
  if (existsSync(join(dir, "tokenizer.json"))) {
    const tok = TextTokenizer.load(dir);
    return lines.map((l) => tok.encode(l));
  }
  return lines.map((l, p) => [1, ...Array.from({ length: 16 }, (_, i) => 3 + ((p * 7919 + i * 104729) % (vocab - 3)))]);
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

export interface MethodResult {
  name: SpecMode;
  tokens: number;
  tokens_per_s: number;
  prompt_tokens_per_s: number;
  tau: number;
  speedup: number;
  acceptance_by_depth: number[];
  steps: number;
  ms_per_step: number;
  native_ms_per_step: number; // libtorch + FFI crossings
  ts_ms_per_step: number;     // TypeScript: tree building, verification, bookkeeping
  draft_ms_per_step: number;
  outputs: number[][];
}

function runMethod(m: LoadedModel, name: SpecMode, a: BenchArgs, prompts: number[][], spec: ReturnType<typeof resolveSpec>): MethodResult {
  const config = { ...spec.config, mode: name };
  const all: DecodeStats[] = [];
  const outputs: number[][] = [];
  prompts.forEach((prompt, i) => {
    showStatus(`bench: ${name}, prompt ${i + 1}/${prompts.length}`);
    const gen = decode(m, prompt, { maxNewTokens: a.n, sampling: { temperature: a.temp, topK: 0, topP: 1 }, seed: a.seed + i, stopIds: [] },
      makeProposer(config, spec.head));
    const tokens: number[] = [];
    let step = gen.next();
    for (; !step.done; step = gen.next()) tokens.push(step.value);
    outputs.push(tokens);
    all.push(step.value);
  });
  clearStatus();
  const sum = (f: (s: DecodeStats) => number) => all.reduce((t, s) => t + f(s), 0);
  const steps = sum((s) => s.targetForwards);
  const depth = Math.max(0, ...all.map((s) => s.proposedByDepth.length));
  const acceptance = Array.from({ length: depth }, (_, d) =>
    sum((s) => s.acceptedByDepth[d] ?? 0) / Math.max(1, sum((s) => s.proposedByDepth[d] ?? 0)));
  return {
    name, tokens: sum((s) => s.newTokens), tokens_per_s: (sum((s) => s.newTokens) * 1000) / sum((s) => s.decodeMs),
    prompt_tokens_per_s: (sum((s) => s.promptTokens) * 1000) / sum((s) => s.promptMs),
    tau: sum((s) => s.newTokens - 1) / steps, speedup: 1,
    acceptance_by_depth: acceptance, steps, ms_per_step: sum((s) => s.decodeMs) / steps,
    native_ms_per_step: sum((s) => s.nativeMs) / steps, ts_ms_per_step: sum((s) => s.decodeMs - s.nativeMs) / steps,
    draft_ms_per_step: sum((s) => s.draftMs) / steps, outputs,
  };
}

/** For each speculative method and prompt, where its greedy output first leaves plain decoding's. */
function findDivergences(m: LoadedModel, prompts: number[][], base: MethodResult, results: MethodResult[]): Divergence[] {
  const found: Divergence[] = [];
  for (const r of results) {
    if (r === base) continue;
    prompts.forEach((prompt, i) => {
      const d = explainDivergence(m, r.name, i, prompt, base.outputs[i], r.outputs[i]);
      if (d) found.push(d);
    });
  }
  return found;
}

export function runBench(a: BenchArgs): void {
  if (!Number.isInteger(a.n) || a.n < 1) throw new EagleError(`--n ${a.n}: must be an integer >= 1`, 2);
  applyThreads(a.threads);
  const dir = resolveModelDir(a.model);
  const m = loadModel(dir, resolvePlacement(a.device, a.dtype));
  const spec = resolveSpec({ ...a, spec: a.spec ?? (a.methods?.some((x) => x !== "none") ? "eagle2" : undefined) }, dir, m);
  try {
    const methods = a.methods ?? (spec.head ? ["none", "eagle1", "eagle2"] as SpecMode[] : ["none"] as SpecMode[]);
    const prompts = promptIds(a.prompts, dir, m.config.vocabSize);
    runMethod(m, methods[0], { ...a, n: 8 }, prompts.slice(0, 1), spec); // warm-up
    const results = methods.map((name) => runMethod(m, name, a, prompts, spec));
    const base = results.find((r) => r.name === "none");
    for (const r of results) r.speedup = base ? r.tokens_per_s / base.tokens_per_s : NaN;
    const identical = a.temp !== 0 ? null : results.every((r) => JSON.stringify(r.outputs) === JSON.stringify(results[0].outputs));
    const divergences = identical === false && base ? findDivergences(m, prompts, base, results) : [];
    const report = {
      model: dir, draft: spec.head?.dir ?? null, device: m.placement.device, dtype: m.placement.dtype,
      params: m.model.weightBytes() / DTYPE_BYTES[m.placement.dtype], ffi_crossing_us: ffiCrossingUs(m),
      workload: { prompts: prompts.length, new_tokens: a.n, temperature: a.temp, seed: a.seed, prompt_file: a.prompts },
      identical_outputs: identical,
      divergences,
      methods: results.map(({ outputs, ...r }) => r),
    };
    process.stdout.write(a.json ? `${JSON.stringify(report, null, 2)}\n` : formatBench(report));
    // float32 must match exactly; in half precision only a flip between nearly tied tokens is allowed
    const unexplained = m.placement.dtype === "f32" ? divergences : divergences.filter((d) => !d.near_tie);
    if (identical === false && (unexplained.length > 0 || !base)) {
      throw new EagleError("greedy outputs differ between methods: speculative decoding was not lossless");
    }
  } finally {
    spec.head?.model.dispose();
    m.model.dispose();
  }
}
