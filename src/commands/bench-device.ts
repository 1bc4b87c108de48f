// bench-device — how close plain decoding gets to the memory-bandwidth limit, and the step-time ratios
// that decide EAGLE-2's speed, on synthetic models of real shapes (random weights made on the device, so
// no checkpoint is needed). From those ratios and a τ of a real model it derives EAGLE-2's speedup.
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
import { type DeviceBenchReport, formatDeviceBench, type ShapeResult, type TargetCheck } from "../bench/bench-device-report.ts";

interface BenchDeviceArgs extends RuntimeArgs {
  shape?: string[];
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
  tiny: { tau: 4.11, source: "measured: EAGLE-2 greedy with the shipped head on stories260K (README, bench -n 128)" },
};

export const TREE_SIZES = [26, 60];  // EAGLE-1's default tree, EAGLE-2's default tree size
const TARGETS = { fractionOfLimit: 0.85, verify60: 1.3, draftStep: 0.08 };

export function benchDeviceFlags<T>(y: Argv<T>) {
  return runtimeFlags(y)
    .option("shape", { type: "string", array: true, describe: "llama2-7b, llama3-8b or tiny; repeat or comma-separate", defaultDescription: "llama2-7b,llama3-8b on cuda, tiny on cpu" })
    .option("tau", { type: "number", describe: "τ for the derived EAGLE-2 speedup", defaultDescription: "published τ of the shape's real model (EAGLE-2 paper), measured τ of stories260K for tiny" })
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
  const shapes = parseShapes(a.shape ?? (placement.device === "cuda" ? ["llama2-7b,llama3-8b"] : ["tiny"]));
  if (shapes.length === 0) throw new EagleError("--shape: no shape named", 2);
  // every shape is checked before anything is allocated: a run refuses up front rather than half-way
  for (const s of shapes) {
    checkFits(`--shape ${s.name}`, placement.device, memoryNeeds(s.config, placement.dtype, a.context + Math.max(...TREE_SIZES)),
      placement.dtype === "f32" ? "try --dtype bf16" : "try a smaller shape");
  }
  autoThreads(Math.max(...shapes.map((s) => parameterCount(s.config, false)))); // one count for every measurement
  const device = placement.device === "cuda" ? DeviceCode.CUDA : DeviceCode.CPU;
  showStatus("bench-device: copy bandwidth");
  const bandwidth = measureBandwidth(device);
  const results = shapes.map((s) => benchShape(s, placement, bandwidth, a));
  clearStatus();
  const report: DeviceBenchReport = {
    device: placement.device, dtype: placement.dtype, torch: torchVersion(),
    workload: { context: a.context, iters: a.iters, warmup: a.warmup, seed: a.seed },
    copy_bandwidth_bytes_per_s: bandwidth, shapes: results,
  };
  process.stdout.write(a.json ? `${JSON.stringify(report, null, 2)}\n` : formatDeviceBench(report));
}

function benchShape(s: SyntheticShape, placement: Placement, bandwidth: number, a: BenchDeviceArgs): ShapeResult {
  showStatus(`bench-device: ${s.name}: making random weights`);
  const target = buildSynthetic(s, placement, a.seed);
  let times: StepTimes;
  try {
    const head = buildSyntheticDraft(target, a.seed + 1);
    try {
      showStatus(`bench-device: ${s.name}: timing steps`);
      const trees = [eagle1Tree(s.config.vocabSize), eagle2Tree(TREE_SIZES[1], s.config.vocabSize)];
      times = measureSteps(target, head, a.context, trees, [1, EAGLE2_DEFAULTS.topK], a);
    } finally {
      head.model.dispose();
    }
    return summarize(s, placement, target.model.weightBytes(), bandwidth, times, a);
  } finally {
    target.model.dispose();
  }
}

function summarize(s: SyntheticShape, placement: Placement, weightBytes: number, bandwidth: number, t: StepTimes,
  a: BenchDeviceArgs): ShapeResult {
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
  const tau = a.tau !== undefined ? { tau: a.tau, source: "--tau" } : DEFAULT_TAU[s.name];
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
