// bench-device — how close plain decoding gets to the memory-bandwidth limit, and the step-time ratios
// that decide EAGLE-2's speed, on synthetic models of real shapes (random weights made on the device, so
// no checkpoint is needed), or on a model directory and its head (-m; a grown stories260K pair predicts
// for real, so its τ is measured, not borrowed). From those ratios and a τ it derives EAGLE-2's speedup.
import type { Argv } from "yargs";
import { autoThreads, DeviceCode, torchVersion } from "../native/engine.ts";
import { EagleError, FlagError } from "../util/errors.ts";
import { DTYPE_BYTES, type Placement, resolvePlacement } from "../model/loader.ts";
import { kvBytes, memoryNeeds } from "../bench/device-memory.ts";
import { checkFits } from "../native/memory.ts";
import { eagle1Tree, eagle2Tree, measureBandwidth, measureSteps, type StepTimes, type Timing } from "../bench/device-bench.ts";
import { EAGLE2_DEFAULTS } from "../decoding/eagle2.ts";
import { clearStatus, showStatus } from "../util/status-line.ts";
import { buildSynthetic, buildSyntheticDraft, parameterCount, parseShapes, type SyntheticShape } from "../model/synthetic.ts";
import { applyThreads, type RuntimeArgs, runtimeFlags } from "./common.ts";
import { type LoadedModel, loadModel } from "../model/loader.ts";
import { type LoadedDraft, loadDraft } from "../model/draft.ts";
import { siblingHeadDir, modelName, DEFAULT_PROMPTS } from "../util/paths.ts";
import { decode, type DecodeStats } from "../decoding/decode.ts";
import { makeProposer, specConfig } from "../decoding/spec-mode.ts";
import { promptIds } from "../bench/workload.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type DeviceBenchReport, formatDeviceBench, type ShapeResult, type TargetCheck } from "../bench/bench-device-report.ts";

interface BenchDeviceArgs extends RuntimeArgs {
  shape?: string[];
  model?: string;
  draft?: string;
  tau?: number;
  context: number;
  iters: number;
  warmup: number;
  seed: number;
  json: boolean;
}

/** τ (tokens per target forward) that the derived speedup uses when --tau is not given. Random weights
 * cannot give one: τ belongs to a trained head on a real model, so it comes from the papers or our runs. */
const DEFAULT_TAU: Record<string, { tau: number; source: string }> = {
  "llama2-7b": { tau: 4.70, source: "published: EAGLE-2 paper Table 1, LLaMA2-Chat 7B, MT-bench, T=0" },
  "llama3-8b": { tau: 4.53, source: "published: EAGLE-2 paper Table 2, LLaMA3-Instruct 8B, MT-bench, T=0" },
  tiny: { tau: 4.46, source: "measured: EAGLE-2 greedy with the shipped head on stories260K (README, bench -n 128 --repeat 3)" },
};

export const TREE_SIZES = [26, 60];  // EAGLE-1's default tree, EAGLE-2's default tree size
const TARGETS = { fractionOfLimit: 0.85, verify60: 1.3, draftStep: 0.08 };

export function benchDeviceFlags<T>(y: Argv<T>) {
  return runtimeFlags(y)
    .option("shape", { type: "string", array: true, describe: "llama2-7b, llama3-8b or tiny; repeat or comma-separate", defaultDescription: "llama2-7b,llama3-8b on cuda, tiny on cpu" })
    .option("model", { alias: "m", type: "string", describe: "a model directory instead of a random shape (such as a grown stories260K)" })
    .option("draft", { type: "string", describe: "its EAGLE head (with -m)", defaultDescription: "<model>-eagle" })
    .option("tau", { type: "number", describe: "τ for the derived EAGLE-2 speedup", defaultDescription: "published τ of the shape's real model (EAGLE-2 paper), measured τ of stories260K for tiny; with -m, measured on the pair" })
    .option("context", { type: "number", default: 512, describe: "cached tokens every measured step attends to" })
    .option("iters", { type: "number", default: 20, describe: "timed runs per measurement (the mean is reported)" })
    .option("warmup", { type: "number", default: 3, describe: "untimed runs before each measurement" })
    .option("seed", { type: "number", default: 1, describe: "seed of the random weights" })
    .option("json", { type: "boolean", default: false, describe: "print one JSON object instead of a table" });
}

function checkArgs(a: BenchDeviceArgs): void {
  const int = (flag: string, v: number, lo: number, hi: number) => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw new FlagError(flag, v, `an integer in [${lo}, ${hi}]`);
  };
  int("context", a.context, 16, 8192 - 64);
  int("iters", a.iters, 1, 10000);
  int("warmup", a.warmup, 0, 1000);
  int("seed", a.seed, 0, 2 ** 31);
  if (a.tau !== undefined && !(a.tau >= 1 && a.tau <= 64)) throw new FlagError("tau", a.tau, "in [1, 64]");
}

export function runBenchDevice(a: BenchDeviceArgs): void {
  checkArgs(a);
  applyThreads(a.threads);
  const placement = resolvePlacement(a.device, a.dtype);
  if (a.model !== undefined && a.shape !== undefined) throw new EagleError("give --shape or -m, not both", 2);
  if (a.draft !== undefined && a.model === undefined) throw new EagleError("--draft goes with -m (a random shape makes its own head)", 2);
  const shapes = a.model !== undefined ? [] : parseShapes(a.shape ?? (placement.device === "cuda" ? ["llama2-7b,llama3-8b"] : ["tiny"]));
  if (a.model === undefined && shapes.length === 0) throw new EagleError("--shape: no shape named", 2);
  // every shape is checked before anything is allocated: a run refuses up front rather than half-way
  for (const s of shapes) {
    checkFits(`--shape ${s.name}`, placement.device, memoryNeeds(s.config, placement.dtype, a.context + Math.max(...TREE_SIZES)),
      placement.dtype === "f32" ? "try --dtype bf16" : "try a smaller shape");
  }
  const device = placement.device === "cuda" ? DeviceCode.CUDA : DeviceCode.CPU;
  const pairs: (() => BenchPair)[] = a.model !== undefined ? [() => loadedPair(a.model!, a.draft, placement)]
    : shapes.map((s) => () => syntheticPair(s, placement, a.seed));
  if (a.model === undefined) autoThreads(Math.max(...shapes.map((s) => parameterCount(s.config, false)))); // one count for every measurement
  showStatus("bench-device: copy bandwidth");
  const bandwidth = measureBandwidth(device);
  const results = pairs.map((make) => benchPair(make(), bandwidth, a));
  clearStatus();
  const report: DeviceBenchReport = {
    device: placement.device, dtype: placement.dtype, torch: torchVersion(),
    workload: { context: a.context, iters: a.iters, warmup: a.warmup, seed: a.seed },
    copy_bandwidth_bytes_per_s: bandwidth, shapes: results,
  };
  process.stdout.write(a.json ? `${JSON.stringify(report, null, 2)}\n` : formatDeviceBench(report));
}

/** A target and head to measure, what they are, and where the τ for the derived speedup comes from. */
interface BenchPair {
  shape: SyntheticShape;
  target: LoadedModel;
  head: LoadedDraft;
  measureTau: boolean; // a head that predicts: τ from a short EAGLE-2 run of the pair itself
}

function syntheticPair(s: SyntheticShape, placement: Placement, seed: number): BenchPair {
  showStatus(`bench-device: ${s.name}: making random weights`);
  const target = buildSynthetic(s, placement, seed);
  return { shape: s, target, head: buildSyntheticDraft(target, seed + 1), measureTau: false };
}

function loadedPair(dir: string, draft: string | undefined, placement: Placement): BenchPair {
  showStatus(`bench-device: loading ${dir}`);
  const sibling = siblingHeadDir(dir);
  const headDir = draft ?? (existsSync(join(sibling, "config.json")) ? sibling : undefined);
  if (headDir === undefined) throw new EagleError(`-m ${dir}: no draft head (give --draft DIR, or put one at ${sibling})`, 2);
  const target = loadModel(dir, placement);
  try {
    autoThreads(parameterCount(target.config, false));
    const name = modelName(dir);
    return { shape: { name, about: `${dir}, its own weights`, config: target.config }, target, head: loadDraft(headDir, target), measureTau: true };
  } catch (e) {
    target.model.dispose();
    throw e;
  }
}

function benchPair(p: BenchPair, bandwidth: number, a: BenchDeviceArgs): ShapeResult {
  const s = p.shape;
  let times: StepTimes;
  let tau: TauSource | undefined;
  try {
    showStatus(`bench-device: ${s.name}: timing steps`);
    const trees = [eagle1Tree(s.config.vocabSize), eagle2Tree(TREE_SIZES[1], s.config.vocabSize)];
    times = measureSteps(p.target, p.head, a.context, trees, [1, EAGLE2_DEFAULTS.topK], a);
    if (a.tau === undefined && p.measureTau) {
      showStatus(`bench-device: ${s.name}: measuring tau`);
      tau = measuredTau(p.target, p.head);
    }
    return summarize(s, p.target.placement, p.target.model.weightBytes(), bandwidth, times, a, tau);
  } finally {
    p.head.model.dispose();
    p.target.model.dispose();
  }
}

interface TauSource {
  tau: number;
  source: string;
}

const TAU_PROMPTS = 4;
const TAU_TOKENS = 64;

/** τ of a pair that predicts: EAGLE-2 (the official defaults), greedy, over the first bench prompts. */
export function measuredTau(target: LoadedModel, head: LoadedDraft): TauSource {
  const prompts = promptIds(DEFAULT_PROMPTS, target.dir, target.config.vocabSize).slice(0, TAU_PROMPTS);
  let rounds = 0;
  let tokens = 0;
  for (const prompt of prompts) {
    const run = decode(target, prompt, {
      maxNewTokens: TAU_TOKENS, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stopIds: [],
    }, makeProposer(specConfig("eagle2", {}), head));
    let step = run.next();
    while (!step.done) step = run.next();
    const st: DecodeStats = step.value;
    rounds += st.targetForwards;
    tokens += st.targetForwards + st.acceptedByDepth.reduce((x, y) => x + y, 0);
  }
  return { tau: Math.round((tokens / rounds) * 100) / 100,
    source: `measured: EAGLE-2 greedy with this head, ${prompts.length} bench prompts x ${TAU_TOKENS} tokens` };
}

function summarize(s: SyntheticShape, placement: Placement, weightBytes: number, bandwidth: number, t: StepTimes,
  a: BenchDeviceArgs, measured?: TauSource): ShapeResult {
  const c = s.config;
  // a step reads every weight once, except the embedding table (one row per token) when the LM head is separate,
  // and the K/V of every cached token
  const embedding = c.tieEmbeddings ? 0 : c.vocabSize * c.hiddenSize * DTYPE_BYTES[placement.dtype];
  const perToken = { weights: weightBytes - embedding, kv: kvBytes(c, a.context, placement.dtype), total: 0 };
  perToken.total = perToken.weights + perToken.kv;
  const limit = bandwidth / perToken.total;
  const tokensPerS = 1000 / t.decodeMs;
  const verify = [...t.verifyMs].map(([nodes, ms]) => ({ nodes, ms, ratio: ms / t.decodeMs }));
  const draft = [...t.draftMs].map(([width, ms]) => ({ width, ms, ratio: ms / t.decodeMs }));
  const v60 = verify.find((v) => v.nodes === TREE_SIZES[1])!;
  const dK = draft.find((d) => d.width === EAGLE2_DEFAULTS.topK)!;
  const tau = a.tau !== undefined ? { tau: a.tau, source: "--tau" } : measured ?? DEFAULT_TAU[s.name];
  const { depth, topK } = EAGLE2_DEFAULTS;
  // one EAGLE-2 round: `depth` expansion passes of topK frontier nodes, one catch-up forward of the head over
  // the accepted tokens (timed as a topK-wide step), one verification of a 60-node tree; it yields τ tokens
  const roundMs = (depth + 1) * dK.ms + v60.ms;
  const checks: TargetCheck[] = [
    { name: "plain decode / bandwidth limit", value: tokensPerS / limit, op: ">=", target: TARGETS.fractionOfLimit },
    { name: "verify 60 / one-token step", value: v60.ratio, op: "<=", target: TARGETS.verify60 },
    { name: `draft step (${topK} tokens) / target step`, value: dK.ratio, op: "<=", target: TARGETS.draftStep },
  ].map((x) => ({ ...x, op: x.op as TargetCheck["op"], pass: x.op === ">=" ? x.value >= x.target : x.value <= x.target }));
  return {
    shape: s.name, about: s.about, params: parameterCount(c, false), draft_params: parameterCount(c, true),
    weight_bytes: weightBytes, bytes_per_token: perToken,
    decode: { ms: t.decodeMs, tokens_per_s: tokensPerS, limit_tokens_per_s: limit, fraction_of_limit: tokensPerS / limit },
    verify, draft,
    derived: {
      label: "derived", tau: tau.tau, tau_source: tau.source, depth, top_k: topK, draft_forwards: depth + 1,
      formula: "tau * t_step / ((depth + 1) * t_draft(top_k) + t_verify(60))", speedup: (tau.tau * t.decodeMs) / roundMs,
    },
    targets: checks,
  };
}
