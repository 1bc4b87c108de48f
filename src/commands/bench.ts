// bench — a fixed workload anyone can rerun: plain decoding, EAGLE-1 and EAGLE-2 on a prompt set, each
// method's decode tokens/s, τ and acceptance by depth, the speedup over plain decoding measured in the
// same run, where each step's time goes (libtorch + FFI crossings, TypeScript), and whether greedy
// outputs are identical across methods. With --parallel, the batch curve instead (bench/batch-curve.ts).
import type { Argv } from "yargs";
import { runCurve } from "../bench/batch-curve.ts";
import { formatBench, formatCurve } from "../bench/bench-report.ts";
import { ffiCrossingUs, findDivergences, runMethods } from "../bench/run-method.ts";
import { LlamaPeer, type PeerName, PEERS } from "../bench/peer.ts";
import { benchModelDir, promptIds } from "../bench/workload.ts";
import { type ResolvedSpec, resolveSpec, SPEC_MODES, type SpecMode } from "../decoding/spec-mode.ts";
import { DTYPE_BYTES, type LoadedModel, loadModel, resolvePlacement } from "../model/loader.ts";
import { decodesBatches, threadCount } from "../native/engine.ts";
import { EagleError, FlagError } from "../util/errors.ts";
import { DEFAULT_PROMPTS } from "../util/paths.ts";
import { applyThreads, parallelCount, type RuntimeArgs, runtimeFlags, type SpecArgs, specFlags } from "./common.ts";

interface BenchArgs extends RuntimeArgs, SpecArgs {
  model: string;
  methods?: SpecMode[];
  prompts: string;
  n: number;
  temp: number;
  seed: number;
  repeat: number;
  peer?: PeerName;
  json: boolean;
  parallel?: number[];
  items: number;
}

export function benchFlags<T>(y: Argv<T>) {
  return specFlags(runtimeFlags(y))
    .option("model", { alias: "m", type: "string", default: "stories260K", describe: "model directory, or stories260K / random-134m (made once, random weights)" })
    .option("methods", { type: "string", array: true, choices: SPEC_MODES, describe: "methods to compare", defaultDescription: "none, plus eagle1 eagle2 auto when a draft head is found" })
    .option("prompts", { type: "string", default: DEFAULT_PROMPTS, defaultDescription: "test/prompts/stories.txt", describe: "prompt file, one per line" })
    .option("n", { type: "number", default: 128, describe: "tokens to decode per prompt (end-of-sequence ignored: a fixed workload)" })
    .option("temp", { type: "number", default: 0, describe: "temperature; 0 = greedy, which also checks outputs are identical" })
    .option("seed", { type: "number", default: 1, describe: "sampling seed (per prompt: seed + index)" })
    .option("peer", { choices: PEERS, describe: "also run this engine on the same prompts (installed on demand into build/; the model as an F32 GGUF, BF16 with --dtype bf16; greedy; flash attention off)" })
    .option("repeat", { type: "number", default: 1, describe: "passes over the prompts (methods interleaved prompt by prompt)" })
    .option("json", { type: "boolean", default: false, describe: "print one JSON object instead of a table" })
    .option("parallel", { alias: "P", type: "number", array: true, describe: "instead: the batch curve, these widths (items decoded at once, as batch --parallel; threads as batch's)" })
    .option("items", { type: "number", default: 64, describe: "with --parallel: items in the batch workload (the prompts in turn)" });
}

export function runBench(a: BenchArgs): void {
  if (!Number.isInteger(a.n) || a.n < 1) throw new FlagError("n", a.n, "an integer >= 1");
  if (!Number.isInteger(a.repeat) || a.repeat < 1) throw new FlagError("repeat", a.repeat, "an integer >= 1");
  const widths = a.parallel?.map((p) => parallelCount(p)!);
  if (widths && (!Number.isInteger(a.items) || a.items < 1)) throw new FlagError("items", a.items, "an integer >= 1");
  if (widths && a.peer) throw new EagleError("--peer compares one sequence at a time: not with --parallel", 2);
  applyThreads(a.threads);
  if (widths) decodesBatches(); // the threads batch would use
  const dir = benchModelDir(a.model);
  const m = loadModel(dir, resolvePlacement(a.device, a.dtype, dir));
  const spec = resolveSpec({ ...a, spec: a.spec ?? (a.methods?.some((x) => x !== "none") ? "eagle2" : undefined) }, dir, m);
  try {
    const prompts = promptIds(a.prompts, dir, m.config.vocabSize);
    if (widths) return benchCurve(a, m, spec, prompts, [...new Set(widths)]);
    const methods: SpecMode[] = a.methods ?? (spec.head ? [...SPEC_MODES] : ["none"]);
    const run = { newTokens: a.n, temperature: a.temp, seed: a.seed };
    const peer = a.peer ? new LlamaPeer(m, dir, prompts, a.n) : null; // refuses f16 before any decoding
    runMethods(m, methods, { ...run, newTokens: 8 }, prompts.slice(0, 1), spec); // warm-up
    const results = runMethods(m, methods, run, prompts, spec, a.repeat, () => peer?.run());
    const base = results.find((r) => r.name === "none");
    const peerResult = peer?.result(base ?? null, a.temp === 0) ?? null;
    for (const r of results) r.speedup = base ? r.tokens_per_s / base.tokens_per_s : NaN;
    // with one method there is nothing to compare (and no speedup without plain decoding); sampled, every
    // method but eagle1 (whose children are drawn) writes plain sampling's text for the same seeds
    const compared = a.temp === 0 ? results : results.filter((r) => r.name !== "eagle1");
    const identical = compared.length < 2 ? null
      : compared.every((r) => JSON.stringify(r.outputs) === JSON.stringify(compared[0].outputs));
    const divergences = a.temp === 0 && identical === false && base ? findDivergences(m, prompts, base, results) : [];
    const report = {
      model: dir, draft: spec.head?.dir ?? null, draft_dtype: spec.head?.dtype ?? null, device: m.placement.device, dtype: m.placement.dtype,
      params: m.model.weightBytes() / DTYPE_BYTES[m.placement.dtype], ffi_crossing_us: ffiCrossingUs(m),
      workload: { prompts: prompts.length, new_tokens: a.n, temperature: a.temp, seed: a.seed, repeat: a.repeat, prompt_file: a.prompts },
      identical_outputs: identical, identical_methods: identical === null ? [] : compared.map((r) => r.name),
      peer: peerResult,
      divergences,
      methods: results.map(({ outputs, ...r }) => r),
    };
    process.stdout.write(a.json ? `${JSON.stringify(report, null, 2)}\n` : formatBench(report));
    // float32 must match exactly; in half precision only a flip between nearly tied tokens is allowed
    const unexplained = m.placement.dtype === "f32" ? divergences : divergences.filter((d) => !d.near_tie);
    if (a.temp === 0 && identical === false && (unexplained.length > 0 || !base)) {
      throw new EagleError("greedy outputs differ between methods: speculative decoding was not lossless");
    }
  } finally {
    spec.head?.model.dispose();
    m.model.dispose();
  }
}

/** bench --parallel: each method at each width, as batch decodes them (default methods: none, and auto when a
 * head is found); a width at which an item's output differs is an error. */
function benchCurve(a: BenchArgs, m: LoadedModel, spec: ResolvedSpec, prompts: number[][], widths: number[]): void {
  const methods: SpecMode[] = a.methods ?? (spec.head ? ["none", "auto"] : ["none"]);
  const run = { items: a.items, newTokens: a.n, temperature: a.temp, seed: a.seed };
  runCurve(m, methods, [Math.min(...widths)], { ...run, items: Math.min(2, a.items), newTokens: 8 }, prompts, spec); // warm-up
  const curve = runCurve(m, methods, widths, run, prompts, spec, a.repeat);
  const report = {
    model: m.dir, draft: spec.head?.dir ?? null, device: m.placement.device, dtype: m.placement.dtype, threads: threadCount(),
    workload: { items: a.items, prompts: prompts.length, new_tokens: a.n, temperature: a.temp, seed: a.seed, repeat: a.repeat, prompt_file: a.prompts },
    identical_outputs: curve.identical, points: curve.points,
  };
  process.stdout.write(a.json ? `${JSON.stringify(report, null, 2)}\n` : formatCurve(report));
  if (!curve.identical) throw new EagleError("an item's output differed between widths or methods: batching was not lossless");
}
