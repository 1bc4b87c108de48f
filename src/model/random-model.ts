// small seeded random Llama-family models in hugging face layout, for tests and the benchmark
// each with a particular shape feature (gqa, biases, head_dim, rope scaling, sharding, half precision).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RopeScaling } from "./config.ts";
import { fail } from "../util/errors.ts";
import { Rng } from "../util/rng.ts";
import { f32ToBf16, f32ToF16, writeSafetensors, type DType, type TensorData } from "../formats/safetensors.ts";

export type RopeScalingSpec = RopeScaling; // the parsed config type: the generator writes what config.ts reads

export interface RandomModelSpec {
  name: string;
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim?: number; // explicit head_dim, may differ from hidden / heads
  vocabSize: number;
  bias?: boolean; // qwen2-style q/k/v biases: written as model_type qwen2
  tied?: boolean; // lm head is the embedding
  ropeScaling?: RopeScalingSpec;
  ropeTheta?: number; // default 10000
  dtype?: DType; // default F32
  sharded?: boolean; // two files plus model.safetensors.index.json
  maxPositions?: number; // default 512
  layerScale?: number; // scales what each layer writes to the residual stream (o_proj, down_proj); default 1.
  // small values make a nearly-bigram model whose next token an echo draft head predicts well
}

const llama3 = { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 256 } as const;

// between them these cover each loader and forward feature once; all vocab 512 like stories260K
export const RANDOM_SPECS: RandomModelSpec[] = [
  { name: "llama-mha", hiddenSize: 64, intermediateSize: 160, layers: 2, heads: 4, kvHeads: 4, vocabSize: 512 },
  { name: "llama-gqa-tied", hiddenSize: 64, intermediateSize: 128, layers: 3, heads: 8, kvHeads: 2, vocabSize: 512, tied: true },
  { name: "qwen2-bias", hiddenSize: 64, intermediateSize: 128, layers: 2, heads: 4, kvHeads: 2, vocabSize: 512, bias: true, ropeTheta: 1e6 },
  { name: "llama3-headdim", hiddenSize: 48, intermediateSize: 96, layers: 2, heads: 4, kvHeads: 2, headDim: 16, vocabSize: 512, ropeTheta: 500000, ropeScaling: llama3, maxPositions: 2048 },
  { name: "linear-sharded", hiddenSize: 64, intermediateSize: 128, layers: 3, heads: 4, kvHeads: 1, vocabSize: 512, ropeScaling: { type: "linear", factor: 2 }, sharded: true },
  { name: "llama-bf16", hiddenSize: 64, intermediateSize: 128, layers: 2, heads: 4, kvHeads: 2, vocabSize: 512, dtype: "BF16" },
  { name: "llama-f16-tied", hiddenSize: 48, intermediateSize: 96, layers: 2, heads: 3, kvHeads: 1, vocabSize: 512, dtype: "F16", tied: true },
  // narrow heads, three to a key/value head (stories260K's are 8 wide, two to one): the attention kernel's
  // shared-load paths and its dimensions past the last whole 8
  { name: "narrow-heads", hiddenSize: 48, intermediateSize: 96, layers: 2, heads: 6, kvHeads: 2, headDim: 12, vocabSize: 512 },
];

export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

function headDimOf(spec: RandomModelSpec): number {
  return spec.headDim ?? spec.hiddenSize / spec.heads;
}

function ropeScalingJson(s: RopeScalingSpec | undefined): Record<string, unknown> | null {
  if (!s) return null;
  if (s.type === "linear") return { rope_type: "linear", factor: s.factor };
  return {
    rope_type: "llama3",
    factor: s.factor,
    low_freq_factor: s.lowFreqFactor,
    high_freq_factor: s.highFreqFactor,
    original_max_position_embeddings: s.originalMaxPositions,
  };
}

const TORCH_DTYPE: Record<DType, string> = { F32: "float32", F16: "float16", BF16: "bfloat16" };

export function configJson(spec: RandomModelSpec): Record<string, unknown> {
  const qwen2 = spec.bias === true;
  return {
    architectures: [qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"],
    model_type: qwen2 ? "qwen2" : "llama",
    hidden_size: spec.hiddenSize,
    intermediate_size: spec.intermediateSize,
    num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads,
    num_key_value_heads: spec.kvHeads,
    head_dim: headDimOf(spec),
    vocab_size: spec.vocabSize,
    rms_norm_eps: 1e-5,
    rope_theta: spec.ropeTheta ?? 10000,
    rope_scaling: ropeScalingJson(spec.ropeScaling),
    tie_word_embeddings: spec.tied === true,
    max_position_embeddings: spec.maxPositions ?? 512,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: TORCH_DTYPE[spec.dtype ?? "F32"],
    hidden_act: "silu",
    // llama spells its q/k/v/o biases out; qwen2 always has q/k/v biases and no such field
    ...(qwen2 ? { use_sliding_window: false } : { attention_bias: false, mlp_bias: false }),
  };
}

interface NamedF32 {
  name: string;
  shape: number[];
  values: Float32Array;
}

// weights scaled so every sublayer adds a vector with entries of size ~1 to the residual stream.
// q and k get twice that, so attention scores have sd ~4: sharp enough that context matters.
// an untied embedding is as loud as a sublayer so the input token matters; a tied one is quiet
// (with a larger final norm to restore the logit scale) so the head does not just echo the input.
// most seeds give well over 5 distinct tokens in 24 greedy steps (reference.test.ts checks seed 1234).
const QK_GAIN = 2;
const TIED_EMBED_STD = 0.25; // times 1/sqrt(hidden)
const TIED_FINAL_NORM = 4;

function randomTensors(spec: RandomModelSpec, rng: Rng): NamedF32[] {
  const [H, I, hd] = [spec.hiddenSize, spec.intermediateSize, headDimOf(spec)];
  const [q, kv] = [spec.heads * hd, spec.kvHeads * hd];
  const out: NamedF32[] = [];
  const add = (name: string, shape: number[], draw: () => number) => {
    const values = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, draw);
    out.push({ name, shape, values });
  };
  const matrix = (name: string, rows: number, cols: number, gain = 1) =>
    add(name, [rows, cols], () => (gain * rng.normal()) / Math.sqrt(cols));
  const norm = (name: string) => add(name, [H], () => 1 + 0.1 * rng.normal());
  const bias = (name: string, n: number) => add(name, [n], () => 0.5 * rng.normal());
  const embedStd = spec.tied ? TIED_EMBED_STD / Math.sqrt(H) : 1;
  add("model.embed_tokens.weight", [spec.vocabSize, H], () => embedStd * rng.normal());
  for (let l = 0; l < spec.layers; l++) {
    const p = `model.layers.${l}.`;
    norm(p + "input_layernorm.weight");
    matrix(p + "self_attn.q_proj.weight", q, H, QK_GAIN);
    matrix(p + "self_attn.k_proj.weight", kv, H, QK_GAIN);
    matrix(p + "self_attn.v_proj.weight", kv, H);
    if (spec.bias) {
      bias(p + "self_attn.q_proj.bias", q);
      bias(p + "self_attn.k_proj.bias", kv);
      bias(p + "self_attn.v_proj.bias", kv);
    }
    matrix(p + "self_attn.o_proj.weight", H, q, spec.layerScale);
    norm(p + "post_attention_layernorm.weight");
    matrix(p + "mlp.gate_proj.weight", I, H);
    matrix(p + "mlp.up_proj.weight", I, H);
    matrix(p + "mlp.down_proj.weight", H, I, spec.layerScale);
  }
  add("model.norm.weight", [H], () => (spec.tied ? TIED_FINAL_NORM : 1) * (1 + 0.1 * rng.normal()));
  if (!spec.tied) matrix("lm_head.weight", spec.vocabSize, H);
  return out;
}

function encode(t: NamedF32, dtype: DType): TensorData {
  const data = dtype === "F32" ? t.values : dtype === "BF16" ? f32ToBf16(t.values) : f32ToF16(t.values);
  return { name: t.name, dtype, shape: t.shape, data };
}

function shardName(i: number, of: number): string {
  const pad = (k: number) => String(k).padStart(5, "0");
  return `model-${pad(i + 1)}-of-${pad(of)}.safetensors`;
}

// split in two at the middle tensor, with an index that maps each name to its file
function writeSharded(dir: string, tensors: TensorData[]): void {
  const half = Math.ceil(tensors.length / 2);
  const shards = [tensors.slice(0, half), tensors.slice(half)];
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  shards.forEach((shard, i) => {
    writeSafetensors(join(dir, shardName(i, shards.length)), shard, { format: "pt" });
    for (const t of shard) {
      weightMap[t.name] = shardName(i, shards.length);
      totalSize += t.data.byteLength;
    }
  });
  const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify(index, null, 2));
}

// config.json plus weights in `dir` (which must exist), deterministic in (spec, seed)
export function writeRandomModel(dir: string, spec: RandomModelSpec, seed: number): void {
  if (spec.heads % spec.kvHeads !== 0) fail(`random model ${spec.name}: ${spec.heads} heads not divisible by ${spec.kvHeads} kv heads`);
  if (headDimOf(spec) % 2 !== 0) fail(`random model ${spec.name}: head_dim ${headDimOf(spec)} must be even for rope`);
  const dtype = spec.dtype ?? "F32";
  const tensors = randomTensors(spec, new Rng(seed)).map((t) => encode(t, dtype));
  writeFileSync(join(dir, "config.json"), JSON.stringify(configJson(spec), null, 2));
  if (spec.sharded) writeSharded(dir, tensors);
  else writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
}

export interface RandomDraftOptions {
  fcBias?: boolean;       // default true, as in the official EAGLE-1 heads
  ownEmbedding?: boolean; // write embed_tokens.weight (official EAGLE-1 heads carry a copy)
  echo?: boolean; // fc passes the token embedding through and the layer writes nothing: the head guesses
  // lm_head(embedding), the bigram guess, which a target made with a small layerScale mostly agrees with
}

// an EAGLE draft head for a model of `spec`'s shape: config.json (one layer) + model.safetensors with the
// official key names. random weights: it drafts badly, which is what correctness tests want (rejections).
export function writeRandomDraftHead(dir: string, spec: RandomModelSpec, seed: number, opts: RandomDraftOptions = {}): void {
  const rng = new Rng(seed);
  const [H, I, hd] = [spec.hiddenSize, spec.intermediateSize, headDimOf(spec)];
  const out: NamedF32[] = [];
  const add = (name: string, shape: number[], draw: () => number) =>
    out.push({ name, shape, values: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, draw) });
  const matrix = (name: string, rows: number, cols: number) => add(name, [rows, cols], () => rng.normal() / Math.sqrt(cols));
  const fcBias = opts.fcBias ?? true;
  if (opts.ownEmbedding) add("embed_tokens.weight", [spec.vocabSize, H], () => rng.normal());
  if (opts.echo) add("fc.weight", [H, 2 * H], echoFc(H));
  else matrix("fc.weight", H, 2 * H);
  if (fcBias) add("fc.bias", [H], () => (opts.echo ? 0 : 0.1 * rng.normal()));
  matrix("layers.0.self_attn.q_proj.weight", spec.heads * hd, H);
  matrix("layers.0.self_attn.k_proj.weight", spec.kvHeads * hd, H);
  matrix("layers.0.self_attn.v_proj.weight", spec.kvHeads * hd, H);
  if (spec.bias) {
    for (const [p, n] of [["q", spec.heads * hd], ["k", spec.kvHeads * hd], ["v", spec.kvHeads * hd]] as const) {
      add(`layers.0.self_attn.${p}_proj.bias`, [n], () => 0.1 * rng.normal());
    }
  }
  add("layers.0.self_attn.o_proj.weight", [H, spec.heads * hd], () => (opts.echo ? 0 : rng.normal() / Math.sqrt(spec.heads * hd)));
  add("layers.0.post_attention_layernorm.weight", [H], () => 1 + 0.1 * rng.normal());
  matrix("layers.0.mlp.gate_proj.weight", I, H);
  matrix("layers.0.mlp.up_proj.weight", I, H);
  add("layers.0.mlp.down_proj.weight", [H, I], () => (opts.echo ? 0 : rng.normal() / Math.sqrt(I)));
  const config = { ...configJson(spec), num_hidden_layers: 1, bias: fcBias, architectures: ["LlamaForCausalLM"] };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
  const dtype = spec.dtype ?? "F32";
  writeSafetensors(join(dir, "model.safetensors"), out.map((t) => encode(t, dtype)), { format: "pt" });
}

// draws for fc.weight (H, 2H) = [3 identity | 0]: the embedding half passes through, scaled up
function echoFc(H: number): () => number {
  let i = 0;
  return () => {
    const [r, c] = [Math.floor(i / (2 * H)), i++ % (2 * H)];
    return r === c ? 3 : 0; // sharper than the target: a confident drafter
  };
}
