// bench-device-report.ts — the bench-device records and their table for people.
import chalk from "chalk";

export interface TargetCheck {
  name: string;
  value: number;
  op: "<=" | ">=";
  target: number;
  pass: boolean;
}

export interface ShapeResult {
  shape: string;
  about: string;
  params: number;
  draft_params: number;
  weight_bytes: number; // the target's weights on the device
  bytes_per_token: { weights: number; kv: number; total: number }; // read by one decode step
  decode: { ms: number; tokens_per_s: number; limit_tokens_per_s: number; fraction_of_limit: number };
  verify: { nodes: number; ms: number; ratio: number }[]; // ratio: to the one-token step
  draft: { width: number; ms: number; ratio: number }[];
  derived: {
    label: "derived";
    tau: number;
    tau_source: string;
    depth: number;
    top_k: number;
    draft_forwards: number;
    formula: string;
    speedup: number;
  };
  targets: TargetCheck[];
}

export interface DeviceBenchReport {
  device: string;
  dtype: string;
  torch: string;
  workload: { context: number; iters: number; warmup: number; seed: number };
  copy_bandwidth_bytes_per_s: number; // bytes read + written per second by a device-to-device copy
  shapes: ShapeResult[];
}

const GB = 1e9;

function count(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : `${(n / 1e6).toFixed(1)}M`;
}

function shapeLines(r: ShapeResult): string[] {
  const d = r.decode;
  const lines = [
    chalk.bold(`${r.shape}`) + ` — ${r.about}; ${count(r.params)} params, head ${count(r.draft_params)}`,
    `  plain decode   ${d.ms.toFixed(3)} ms/token = ${d.tokens_per_s.toFixed(1)} tok/s; limit ${d.limit_tokens_per_s.toFixed(1)} tok/s ` +
      `(${(r.bytes_per_token.total / GB).toFixed(2)} GB/token: weights ${(r.bytes_per_token.weights / GB).toFixed(2)} + kv ${(r.bytes_per_token.kv / GB).toFixed(3)})`,
  ];
  for (const v of r.verify) lines.push(`  verify ${String(v.nodes).padStart(2)}      ${v.ms.toFixed(3)} ms = ${v.ratio.toFixed(2)}x a one-token step`);
  for (const x of r.draft) lines.push(`  draft ${String(x.width).padStart(2)} wide  ${x.ms.toFixed(3)} ms = ${(100 * x.ratio).toFixed(1)}% of a target step`);
  const e = r.derived;
  lines.push(`  EAGLE-2 speedup ${chalk.bold(`${e.speedup.toFixed(2)}x`)} (derived, not measured: ${e.formula}, depth ${e.depth}, ` +
    `top-k ${e.top_k}, tau ${e.tau} ${e.tau_source})`);
  for (const t of r.targets) {
    const mark = t.pass ? chalk.green("pass") : chalk.red("FAIL");
    lines.push(`  ${mark}  ${t.name} = ${t.value.toFixed(3)} (target ${t.op} ${t.target})`);
  }
  return lines;
}

export function formatDeviceBench(r: DeviceBenchReport): string {
  const w = r.workload;
  const lines = [
    `device ${r.device} ${r.dtype}, libtorch ${r.torch}; random weights (seed ${w.seed}); context ${w.context} cached tokens; ` +
      `mean of ${w.iters} runs after ${w.warmup} warm-up`,
    `copy bandwidth ${(r.copy_bandwidth_bytes_per_s / GB).toFixed(1)} GB/s (bytes read + written); ` +
      "limit = bandwidth / bytes one decode step reads (weights without the embedding table, plus the K/V of the context)",
  ];
  for (const s of r.shapes) lines.push("", ...shapeLines(s));
  return `${lines.join("\n")}\n`;
}
