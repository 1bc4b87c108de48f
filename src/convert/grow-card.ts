// grow-card.ts — README.md of a grown model: what it is (a small model made larger, not a model trained
// at that size), the factors, the shapes, and what stays equal.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import type { GrowFactors, GrowShape } from "../model/grow.ts";

export interface GrowCardInput {
  kind: "model" | "head";
  model: string;
  draft: string | null;
  factors: GrowFactors;
  shapeName: string | null;
  dtype: string;
  from: GrowShape;
  to: GrowShape;
}

function parameters(s: GrowShape, layers: number, tied: boolean): number {
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const layer = s.hidden * (2 * q + 2 * kv) + 3 * s.hidden * s.intermediate + 2 * s.hidden;
  return layers * layer + s.vocab * s.hidden * (tied ? 1 : 2) + s.hidden;
}

function describe(s: GrowShape): string {
  return `hidden ${s.hidden}, ${s.heads} heads of ${s.headDim}, ${s.kvHeads} key/value heads, MLP ${s.intermediate}, ` +
    `${s.layers} layer${s.layers === 1 ? "" : "s"}, vocabulary ${s.vocab}`;
}

export function growCard(c: GrowCardInput): string {
  const src = c.kind === "model" ? c.model : c.draft!;
  const weights = join(src, "model.safetensors");
  let sha = "(not a single safetensors file)";
  try {
    sha = createHash("sha256").update(readFileSync(weights)).digest("hex");
  } catch {
    sha = "(not a single safetensors file)"; // a sharded or pytorch_model.bin source: named, not hashed
  }
  const f = c.factors;
  const what = c.kind === "model" ? "model" : "EAGLE draft head";
  return `# A grown ${what}: ${src} made larger, computing the same function

This is **not a model trained at this size**. It is \`${src}\` grown by \`eagle grow\`${c.shapeName ? ` (shape \`${c.shapeName}\`)` : ""}
with function-preserving maps (Net2Net, Chen et al. 2016): it predicts what the original predicts, up to
floating-point rounding, while every step costs what a model of this shape costs. It exists to measure
speed at realistic sizes with real predictions (speculative decoding needs a draft that is right).

| | original | grown |
|---|---|---|
| shape | ${describe(c.from)} | ${describe(c.to)}${c.kind === "model" ? `, ${f.layers} layers (${f.layers - c.from.layers} identity blocks)` : ""} |
| parameters | ${(parameters(c.from, c.kind === "model" ? c.from.layers : 1, true) / 1e6).toFixed(2)}M | ${(parameters(c.to, c.kind === "model" ? f.layers : 1, false) / 1e6).toFixed(2)}M |

Factors: residual width x${f.width}, query heads x${f.headCopies}, ${f.kvHeads} key/value heads, head_dim x${f.headDimScale},
MLP x${f.mlpCopies}${c.kind === "model" ? `, ${f.layers} layers` : ""}; weights stored as ${c.dtype}.

How: every residual unit is copied ${f.width} times (products reading the residual divide their columns by
${f.width}, products writing it copy their rows; RMSNorm is unchanged by copying); query and key/value heads
are copied with each query copy in the group of a copy of its own key/value head; RoPE pairs (i, i + D/2)
move to (${f.headDimScale}i, ${f.headDimScale}i + D'/2), which keeps their frequency, and q is scaled by sqrt(${f.headDimScale});
intermediate units are copied ${f.mlpCopies} times; added layers have o_proj and down_proj zero. A tied LM head
is stored untied. Source weights: \`${weights}\`, sha256 ${sha}.
`;
}
