// llama-gguf.ts — one of our Hugging Face model directories as a llama.cpp GGUF file (architecture
// "llama"), for the llama.cpp benchmark peer; cached under build/ by the weight type and the source files'
// size and mtime, so a rerun does not rewrite it. F32 writes every tensor F32; BF16 (the peer of eagle's
// --dtype bf16) writes the matrices (products and the embedding) BF16 and keeps the 1-D tensors (norms,
// biases, rope factors) F32, as llama.cpp's convert_hf_to_gguf.py does. A BF16 checkpoint's matrices keep
// their bits: widening bf16 to float32 is exact, and rounding an exact value gives it back.
//
// Two layout facts make llama.cpp compute what we compute:
// - RoPE: Hugging Face rotates row i of a head with row i + head/2 ("rotate half"); llama.cpp's "llama"
//   architecture rotates adjacent rows (2i, 2i+1). The q/k rows (and biases) are permuted back so the same
//   pairs meet: the inverse of what the llama2.c converter does going the other way.
// - ggml's shapes are innermost first, so an (out, in) matrix is stored as ne = [in, out]: gguf.ts reverses.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { type GgufLayout, type GgufMetadata, type GgufTensor, type GgufTensorType, writeGguf } from "../formats/gguf.ts";
import { listModelTensors, readTensorF32, type TensorInfo } from "../formats/safetensors.ts";
import { loadConfig, type ModelConfig } from "../model/config.ts";
import { ropeInvFreq } from "../model/rope.ts";
import { EagleError } from "../util/errors.ts";
import { REPO_ROOT } from "../util/paths.ts";
import { ggufVocab, vocabMetadata } from "./gguf-vocab.ts";

// bump when the file this writes changes, so cached files are rewritten
const CONVERTER_VERSION = 1;
export const GGUF_CACHE_DIR = join(REPO_ROOT, "build", "llama-gguf");

/** The weight type of a whole file: F32 everywhere, or BF16 matrices with F32 1-D tensors. */
export type LlamaGgufWeights = "F32" | "BF16";
// general.file_type: llama.h's llama_ftype (LLAMA_FTYPE_ALL_F32, LLAMA_FTYPE_MOSTLY_BF16)
const FILE_TYPES: Record<LlamaGgufWeights, number> = { F32: 0, BF16: 32 };

/**
 * Hugging Face's rotate-half q/k rows -> llama.cpp's interleaved pairs, per head: row j*half + i of a head
 * moves to row 2i + j (j = 0, 1). `w` is (nHeads * headDim, cols) row-major; a bias is cols = 1.
 */
export function interleaveRopeRows(w: Float32Array, nHeads: number, cols: number): Float32Array {
  const headDim = w.length / cols / nHeads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new EagleError(`rope rows: ${w.length} values are not ${nHeads} heads of an even size times ${cols}`);
  }
  const half = headDim / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * headDim + j * half + i) * cols;
        const to = (h * headDim + 2 * i + j) * cols;
        out.set(w.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

type RowPermute = "q" | "k" | null;

// per-layer Hugging Face name -> llama.cpp name, and which RoPE permutation its rows need
const LAYER_NAMES: Record<string, [string, RowPermute]> = {
  "input_layernorm.weight": ["attn_norm.weight", null],
  "self_attn.q_proj.weight": ["attn_q.weight", "q"],
  "self_attn.k_proj.weight": ["attn_k.weight", "k"],
  "self_attn.v_proj.weight": ["attn_v.weight", null],
  "self_attn.q_proj.bias": ["attn_q.bias", "q"],
  "self_attn.k_proj.bias": ["attn_k.bias", "k"],
  "self_attn.v_proj.bias": ["attn_v.bias", null],
  "self_attn.o_proj.weight": ["attn_output.weight", null],
  "post_attention_layernorm.weight": ["ffn_norm.weight", null],
  "mlp.gate_proj.weight": ["ffn_gate.weight", null],
  "mlp.up_proj.weight": ["ffn_up.weight", null],
  "mlp.down_proj.weight": ["ffn_down.weight", null],
};
const GLOBAL_NAMES: Record<string, string> = {
  "model.embed_tokens.weight": "token_embd.weight",
  "model.norm.weight": "output_norm.weight",
  "lm_head.weight": "output.weight", // absent when tied: llama.cpp then uses token_embd
};
const IGNORED = /\.rotary_emb\.inv_freq$/;
const REQUIRED_LAYER = Object.keys(LAYER_NAMES).filter((k) => !k.endsWith(".bias"));

/** The general.* and llama.* keys for `config`. */
export function llamaMetadata(config: ModelConfig, name: string, weights: LlamaGgufWeights = "F32"): GgufMetadata {
  const u32 = (value: number) => ({ type: "u32", value }) as const;
  const f32 = (value: number) => ({ type: "f32", value }) as const;
  const meta: GgufMetadata = {
    "general.architecture": { type: "string", value: "llama" },
    "general.name": { type: "string", value: name },
    "general.file_type": u32(FILE_TYPES[weights]),
    "llama.vocab_size": u32(config.vocabSize),
    "llama.context_length": u32(config.maxPositions),
    "llama.embedding_length": u32(config.hiddenSize),
    "llama.block_count": u32(config.nLayers),
    "llama.feed_forward_length": u32(config.intermediateSize),
    "llama.attention.head_count": u32(config.nHeads),
    "llama.attention.head_count_kv": u32(config.nKvHeads),
    "llama.attention.key_length": u32(config.headDim),
    "llama.attention.value_length": u32(config.headDim),
    "llama.attention.layer_norm_rms_epsilon": f32(config.rmsNormEps),
    "llama.rope.dimension_count": u32(config.headDim),
    "llama.rope.freq_base": f32(config.ropeTheta),
  };
  if (config.ropeScaling?.type === "linear") {
    meta["llama.rope.scaling.type"] = { type: "string", value: "linear" };
    meta["llama.rope.scaling.factor"] = f32(config.ropeScaling.factor);
  }
  return meta;
}

/** Llama 3 rope scaling as llama.cpp takes it: per frequency, the unscaled frequency over the scaled one. */
function ropeFactors(config: ModelConfig): Float32Array {
  const scaled = ropeInvFreq(config);
  const half = config.headDim / 2;
  return Float32Array.from({ length: half }, (_, i) => 1 / config.ropeTheta ** ((2 * i) / config.headDim) / scaled[i]);
}

function ggufName(hfName: string, config: ModelConfig): { name: string; permute: RowPermute } | null {
  if (hfName in GLOBAL_NAMES) return { name: GLOBAL_NAMES[hfName], permute: null };
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  if (!m || !(m[2] in LAYER_NAMES) || Number(m[1]) >= config.nLayers) return null;
  const [name, permute] = LAYER_NAMES[m[2]];
  return { name: `blk.${m[1]}.${name}`, permute };
}

/** The GGUF tensors of a checkpoint, each read (and permuted) only when the writer reaches it. */
export function llamaTensors(config: ModelConfig, tensors: Map<string, TensorInfo>, weights: LlamaGgufWeights = "F32"): GgufTensor[] {
  const out: GgufTensor[] = [];
  for (const info of tensors.values()) {
    if (IGNORED.test(info.name)) continue;
    const target = ggufName(info.name, config);
    if (!target) throw new EagleError(`${info.file}: tensor "${info.name}" has no llama.cpp counterpart`);
    const heads = target.permute === "q" ? config.nHeads : config.nKvHeads;
    const cols = info.shape.length === 2 ? info.shape[1] : 1;
    const data = target.permute ? () => interleaveRopeRows(readTensorF32(info), heads, cols) : () => readTensorF32(info);
    const type: GgufTensorType = weights === "BF16" && info.shape.length >= 2 ? "BF16" : "F32";
    out.push({ name: target.name, shape: info.shape, type, data });
  }
  const names = new Set(out.map((t) => t.name));
  const missing = ["token_embd.weight", "output_norm.weight", ...(config.tieEmbeddings ? [] : ["output.weight"])];
  for (let l = 0; l < config.nLayers; l++) missing.push(...REQUIRED_LAYER.map((k) => `blk.${l}.${LAYER_NAMES[k][0]}`));
  const absent = missing.filter((n) => !names.has(n));
  if (absent.length > 0) throw new EagleError(`checkpoint lacks tensors llama.cpp needs: ${absent.slice(0, 4).join(", ")}${absent.length > 4 ? ", ..." : ""}`);
  if (config.ropeScaling?.type === "llama3") out.push({ name: "rope_freqs.weight", shape: [config.headDim / 2], data: () => ropeFactors(config) });
  return out;
}

/** Writes the model in `dir` to `path` as a llama.cpp GGUF file with `weights`. */
export function writeLlamaGguf(dir: string, path: string, weights: LlamaGgufWeights = "F32"): GgufLayout {
  const config = loadConfig(dir);
  const tensors = listModelTensors(dir);
  const vocab = ggufVocab(dir, config);
  const meta = { ...llamaMetadata(config, basename(resolve(dir)), weights), ...vocabMetadata(vocab, config) };
  try {
    return writeGguf(path, meta, llamaTensors(config, tensors, weights));
  } catch (e) {
    if (e instanceof EagleError) throw new EagleError(`${dir} -> ${path}: ${e.message}`);
    throw e;
  }
}

export interface CachedGguf {
  path: string;
  written: boolean; // false when the cached file was current
  bytes: number;
}

// the files the GGUF is made from, by size and mtime
function sourceKey(dir: string): string {
  const files = new Set([join(dir, "config.json"), ...[...listModelTensors(dir).values()].map((t) => t.file)]);
  for (const extra of ["tokenizer.json", "model.safetensors.index.json"]) if (existsSync(join(dir, extra))) files.add(join(dir, extra));
  const stamp = [...files].sort().map((f) => {
    const s = statSync(f);
    return [f, s.size, s.mtimeMs];
  });
  return createHash("sha256").update(JSON.stringify([CONVERTER_VERSION, stamp])).digest("hex").slice(0, 16);
}

/**
 * The GGUF of the model in `dir` with `weights` under `cacheDir`, written only when its sources changed
 * (older ones of the same weight type removed; the other type's file stays). Named
 * <model>-<path hash>[-bf16]-<source key>.gguf.
 */
export function cachedLlamaGguf(dir: string, weights: LlamaGgufWeights = "F32", cacheDir = GGUF_CACHE_DIR): CachedGguf {
  const abs = resolve(dir);
  const prefix = `${basename(abs)}-${createHash("sha256").update(abs).digest("hex").slice(0, 8)}${weights === "BF16" ? "-bf16" : ""}-`;
  const path = join(cacheDir, `${prefix}${sourceKey(abs)}.gguf`);
  if (existsSync(path)) return { path, written: false, bytes: statSync(path).size };
  mkdirSync(cacheDir, { recursive: true });
  const layout = writeLlamaGguf(abs, path, weights);
  const sameType = (f: string) => f.startsWith(prefix) && /^[0-9a-f]{16}\.gguf$/.test(f.slice(prefix.length));
  for (const old of readdirSync(cacheDir)) {
    if (sameType(old) && join(cacheDir, old) !== path) rmSync(join(cacheDir, old), { force: true });
  }
  return { path, written: true, bytes: layout.bytes };
}
