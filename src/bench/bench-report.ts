// bench-report.ts — the bench tables for people: the methods', and the batch curve's (--parallel).
import type { CurvePoint } from "./batch-curve.ts";
import type { Divergence } from "./divergence.ts";
import type { PeerResult } from "./peer.ts";
import type { MethodResult } from "./run-method.ts";

export interface BenchReport {
  model: string;
  draft: string | null;
  draft_dtype: string | null; // its own weights' (it computes in float32 on the CPU kernels)
  device: string;
  dtype: string;
  params: number;
  ffi_crossing_us: number;
  workload: { prompts: number; new_tokens: number; temperature: number; seed: number; repeat: number; prompt_file: string };
  identical_outputs: boolean | null; // greedy: every method's; sampled: identical_methods' (the same seeds)
  identical_methods: string[];
  peer: PeerResult | null;
  divergences: Divergence[];
  methods: Omit<MethodResult, "outputs">[];
}

export function formatBench(r: BenchReport): string {
  const w = r.workload;
  const lines = [
    `model ${r.model} (${(r.params / 1e6).toFixed(2)}M params, ${r.device} ${r.dtype})${r.draft ? `, draft ${r.draft}${r.draft_dtype !== r.dtype ? ` (${r.draft_dtype} weights)` : ""}` : ""}`,
    `${w.prompts} prompts x ${w.new_tokens} new tokens x ${w.repeat} repeat(s), methods interleaved, temperature ${w.temperature}; ` +
      `one FFI crossing ${r.ffi_crossing_us.toFixed(2)} us`,
    "",
    "method   decode tok/s  speedup    tau  ms/step    native  ts/step  draft/step  tree nodes (min-max)  acceptance per position",
  ];
  for (const m of r.methods) {
    const t = m.tree_nodes;
    const speedup = Number.isFinite(m.speedup) ? `${m.speedup.toFixed(2)}x` : "-";
    lines.push(`${m.name.padEnd(8)} ${m.tokens_per_s.toFixed(1).padStart(12)} ${speedup.padStart(8)} ` +
      `${m.mean_acceptance_length.toFixed(2).padStart(6)} ${m.ms_per_step.toFixed(3).padStart(8)} ${m.native_ms_per_step.toFixed(3).padStart(9)} ` +
      `${m.ts_ms_per_step.toFixed(3).padStart(8)} ${m.draft_ms_per_step.toFixed(3).padStart(11)}  ` +
      `${`${t.mean.toFixed(1)} (${t.min}-${t.max})`.padEnd(20)}  ` + m.per_position_acceptance_rate.map((x) => x.toFixed(2)).join(" "));
  }
  for (const m of r.methods) {
    if (m.predicted_tokens_per_s === null) continue;
    lines.push(`${m.name}: its cost model predicted ${m.predicted_tokens_per_s.toFixed(1)} tok/s for the trees it chose, ` +
      `measured ${m.tokens_per_s.toFixed(1)} (${((m.tokens_per_s / m.predicted_tokens_per_s) * 100).toFixed(0)}%)`);
  }
  if (r.identical_outputs !== null) {
    const which = r.workload.temperature === 0 ? "greedy outputs identical across methods"
      : `sampled outputs identical across ${r.identical_methods.join(", ")} (the same seeds)`;
    lines.push("", `${which}: ${r.identical_outputs ? "yes" : "NO"}`);
  }
  if (r.peer) lines.push("", ...formatPeer(r.peer));
  for (const d of r.divergences) {
    const why = Number.isNaN(d.gap) ? "one run stopped first" : `gap ${d.gap.toFixed(4)} nats: ${d.near_tie ? "a near tie" : "NOT a near tie"}`;
    lines.push(`  ${d.method} prompt ${d.prompt}: first differs at new token ${d.at} (${d.plain_token} plain, ${d.method_token} ${d.method}; ${why})`);
  }
  if (r.methods.some((m) => m.per_position_acceptance_rate.length > 0)) {
    lines.push("", "acceptance per position: rounds that accepted a draft token at that depth, over all rounds (adds up to tau - 1);",
      "--json also gives it conditional on the tree reaching the depth, and the draft acceptance rate");
  }
  return `${lines.join("\n")}\n`;
}

export function formatPeer(p: PeerResult): string[] {
  const lines = [
    `${p.name} ${p.release} (node-llama-cpp ${p.version}, ${p.threads} thread${p.threads === 1 ? "" : "s"}, ${p.weights}, flash attention off): ` +
      `${p.tokens_per_s.toFixed(1)} tok/s from JavaScript, ${p.engine_tokens_per_s.toFixed(1)} tok/s by its own counters`,
  ];
  if (Number.isFinite(p.plain_over_peer)) lines.push(`eagle plain decoding: ${p.plain_over_peer.toFixed(2)}x ${p.name}'s tok/s (both from JavaScript)`);
  if (p.identical_to_plain !== null) {
    const d = p.first_difference;
    // in bf16 llama.cpp's products round their activations to bf16 and eagle's do not: a difference is expected there
    const differs = p.weights === "BF16" ? `they differ from prompt ${d?.prompt}, new token ${d?.at} (bf16 rounding, gap ${d?.gap.toFixed(3)} nats)`
      : `NO (prompt ${d?.prompt}, new token ${d?.at})`;
    lines.push(`greedy tokens identical to eagle's plain decoding: ${p.identical_to_plain ? "yes" : differs}`);
  }
  return lines;
}

export interface CurveReport {
  model: string;
  draft: string | null;
  device: string;
  dtype: string;
  threads: number;
  workload: { items: number; prompts: number; new_tokens: number; temperature: number; seed: number; repeat: number; prompt_file: string };
  identical_outputs: boolean; // every item's tokens at every width (greedy: and across methods)
  points: CurvePoint[];
}

/** bench --parallel: the batch curve, a row per method and width. */
export function formatCurve(r: CurveReport): string {
  const w = r.workload;
  const ratio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : "-");
  const lines = [
    `model ${r.model} (${r.device} ${r.dtype}, ${r.threads} thread${r.threads === 1 ? "" : "s"})${r.draft ? `, draft ${r.draft}` : ""}`,
    `batch: ${w.items} items (${w.prompts} prompts in turn) x ${w.new_tokens} new tokens x ${w.repeat} repeat(s), temperature ` +
      `${w.temperature}; widths and methods interleaved; tok/s as batch counts them (prefill included)`,
    "",
    "method   parallel        tok/s  vs parallel 1  vs none at 1     tau  mean batch",
  ];
  for (const p of r.points) {
    lines.push(`${p.method.padEnd(8)} ${String(p.parallel).padStart(8)} ${p.tokens_per_s.toFixed(1).padStart(12)} ` +
      `${ratio(p.vs_sequential).padStart(14)} ${ratio(p.vs_plain_sequential).padStart(13)} ${p.tau.toFixed(2).padStart(7)} ` +
      `${p.mean_batch.toFixed(1).padStart(11)}`);
  }
  const which = w.temperature === 0 ? "greedy outputs identical across widths and methods"
    : "sampled outputs identical across widths (and methods but eagle1: the same seeds)";
  lines.push("", `${which}: ${r.identical_outputs ? "yes" : "NO"}`);
  return `${lines.join("\n")}\n`;
}
