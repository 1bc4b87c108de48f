// grow.ts (convert) — `eagle grow`: a model directory (and its EAGLE head) written larger by the
// function-preserving maps of src/model/grow.ts, as ordinary Hugging Face directories every command loads.
// Weights are made and written one tensor at a time, so a 7B-shaped model never sits in memory whole.
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { type DType, listModelTensors, readTensorF32, type TensorInfo, writeSafetensorsLazy } from "../formats/safetensors.ts";
import { f32ToBf16, f32ToF16 } from "../formats/half.ts";
import { loadConfig, readJsonFile } from "../model/config.ts";
import { headTensors } from "../model/loader.ts";
import { checkFactors, type GrowFactors, type GrowShape, grownShape, growTensor, Growth, IDENTITY_ZEROED, RULES } from "../model/grow.ts";
import { writeFileAtomic } from "../util/atomic-write.ts";
import { EagleError } from "../util/errors.ts";
import { growCard } from "./grow-card.ts";

export interface GrowOptions {
  model: string;
  draft: string | null; // head to grow alongside (written to `${out}-eagle`)
  out: string;
  factors: GrowFactors;
  shapeName: string | null;
  dtype: DType;
  force: boolean;
}

function shapeOf(dir: string): GrowShape {
  const c = loadConfig(dir);
  return { hidden: c.hiddenSize, intermediate: c.intermediateSize, layers: c.nLayers, heads: c.nHeads, kvHeads: c.nKvHeads,
    headDim: c.headDim, vocab: c.vocabSize };
}

function prepareOut(dir: string, force: boolean): void {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new EagleError(`--out ${dir}: exists and is not a directory`, 2);
  if (existsSync(dir) && readdirSync(dir).length > 0 && !force) {
    throw new EagleError(`${dir}: output directory is not empty (pass --force to overwrite)`, 2);
  }
  mkdirSync(dir, { recursive: true });
}

function encode(values: Float32Array, dtype: DType): Float32Array | Uint16Array {
  return dtype === "F32" ? values : dtype === "BF16" ? f32ToBf16(values) : f32ToF16(values);
}

function grownConfig(dir: string, to: GrowShape, layers: number, dtype: DType): Record<string, unknown> {
  const raw = readJsonFile(join(dir, "config.json"));
  return {
    ...raw, hidden_size: to.hidden, intermediate_size: to.intermediate, num_hidden_layers: layers,
    num_attention_heads: to.heads, num_key_value_heads: to.kvHeads, head_dim: to.headDim,
    tie_word_embeddings: false, torch_dtype: { F32: "float32", BF16: "bfloat16", F16: "float16" }[dtype],
  };
}

/** A lazily grown tensor: `rule` names the RULES entry; `source` the original tensor it grows. */
function lazy(g: Growth, outName: string, rule: string, source: TensorInfo | undefined, dtype: DType, zero = false) {
  if (!source) throw new EagleError(`grow: the model has no tensor for ${outName}`);
  const [, , rows] = RULES[rule].rows(g);
  const cols = RULES[rule].cols?.(g)[2];
  return {
    name: outName, dtype, shape: cols === undefined ? [rows] : [rows, cols],
    data: () => encode(zero ? new Float32Array(rows * (cols ?? 1)) : growTensor(g, rule, readTensorF32(source)).values, dtype),
  };
}

// the per-layer weights of a target (RULES also holds the global ones and a head's fc)
const LAYER_RULES = Object.keys(RULES).filter((r) => !["embed_tokens.weight", "norm.weight", "lm_head.weight", "fc.weight", "fc.bias"].includes(r));

function growTarget(o: GrowOptions, g: Growth): void {
  const src = listModelTensors(o.model);
  const embed = src.get("model.embed_tokens.weight");
  const tensors = [
    lazy(g, "model.embed_tokens.weight", "embed_tokens.weight", embed, o.dtype),
    lazy(g, "model.norm.weight", "norm.weight", src.get("model.norm.weight"), o.dtype),
    lazy(g, "lm_head.weight", "lm_head.weight", src.get("lm_head.weight") ?? embed, o.dtype), // a tied head is untied
  ];
  const real = g.from.layers;
  for (let l = 0; l < o.factors.layers; l++) {
    const from = l % real; // identity blocks past the real ones copy a real block, its writes zeroed
    for (const rule of LAYER_RULES) {
      const source = src.get(`model.layers.${from}.${rule}`);
      if (!source) continue; // the biases a model without them lacks
      tensors.push(lazy(g, `model.layers.${l}.${rule}`, rule, source, o.dtype, l >= real && IDENTITY_ZEROED.has(rule)));
    }
  }
  writeSafetensorsLazy(join(o.out, "model.safetensors"), tensors, { format: "pt" });
  const json = (name: string, v: unknown) => writeFileAtomic(join(o.out, name), `${JSON.stringify(v, null, 2)}\n`);
  json("config.json", grownConfig(o.model, g.to, o.factors.layers, o.dtype));
  for (const f of ["generation_config.json", "tokenizer.json", "tokenizer_config.json"]) {
    if (existsSync(join(o.model, f))) copyFileSync(join(o.model, f), join(o.out, f));
  }
}

function growHead(o: GrowOptions, draftDir: string, out: string, g: Growth): void {
  const src = headTensors(draftDir);
  const tensors = [];
  for (const [name, info] of src) {
    const rule = name.replace(/^layers\.0\./, "");
    if (!RULES[rule]) throw new EagleError(`${draftDir}: no growth rule for head weight ${name}`);
    tensors.push(lazy(g, name, rule, info, o.dtype));
  }
  writeSafetensorsLazy(join(out, "model.safetensors"), tensors, { format: "pt" });
  const config = { ...grownConfig(draftDir, g.to, 1, o.dtype), tie_word_embeddings: false };
  writeFileAtomic(join(out, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
}

/** Writes the grown model (and head); returns the grown directories. */
export function growModel(o: GrowOptions): { model: string; head: string | null } {
  const from = shapeOf(o.model);
  checkFactors(from, o.factors);
  const g = new Growth(from, o.factors);
  const headOut = o.draft ? `${o.out.replace(/\/+$/, "")}-eagle` : null;
  prepareOut(o.out, o.force);
  if (headOut) prepareOut(headOut, o.force);
  growTarget(o, g);
  if (o.draft && headOut) {
    const headShape = { ...shapeOf(o.draft), layers: 1 };
    const hg = new Growth(headShape, { ...o.factors, layers: 1 });
    checkFactors(headShape, { ...o.factors, layers: 1 });
    growHead(o, o.draft, headOut, hg);
    writeFileAtomic(join(headOut, "README.md"), growCard({ ...o, kind: "head", from: headShape, to: grownShape(headShape, { ...o.factors, layers: 1 }) }));
  }
  writeFileAtomic(join(o.out, "README.md"), growCard({ ...o, kind: "model", from, to: g.to }));
  return { model: o.out, head: headOut };
}

export const DTYPES: Record<string, DType> = { f32: "F32", bf16: "BF16", f16: "F16" };
