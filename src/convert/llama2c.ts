// llama2.c checkpoint + tokenizer -> a Hugging Face Llama model directory (config, safetensors, tokenizer).
// checkpoint ("legacy" format): seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
// seq_len), then fp32 arrays; a negative vocab_size means the classifier is stored, not tied.
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.ts";
import { EagleError } from "../util/errors.ts";
import { writeSafetensors, type TensorData } from "../formats/safetensors.ts";
import { readInput, readLlama2cTokenizer, sentencePieces, tokenizerJson } from "./llama2c-tokenizer.ts";
import { MIT_LICENSE, modelCard } from "./model-card.ts";

export { readLlama2cTokenizer, type Llama2cTokenizer } from "./llama2c-tokenizer.ts";

export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  shared: boolean; // classifier tied to the token embedding
}

// original llama2.c layout; every matrix is (out, in) row-major, stacked over layers
export interface Llama2cWeights {
  tokenEmbedding: Float32Array; // (vocab, dim)
  rmsAtt: Float32Array; // (layer, dim)
  wq: Float32Array; // (layer, dim, dim)
  wk: Float32Array; // (layer, kv_dim, dim)
  wv: Float32Array; // (layer, kv_dim, dim)
  wo: Float32Array; // (layer, dim, dim)
  rmsFfn: Float32Array; // (layer, dim)
  w1: Float32Array; // (layer, hidden, dim)
  w2: Float32Array; // (layer, dim, hidden)
  w3: Float32Array; // (layer, hidden, dim)
  rmsFinal: Float32Array; // (dim)
  wcls?: Float32Array; // (vocab, dim), only when not shared
}

export interface Llama2cCheckpoint {
  config: Llama2cConfig;
  weights: Llama2cWeights;
}

const HEADER_BYTES = 28;
const HEADER_FIELDS = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];

export function readLlama2cCheckpoint(path: string): Llama2cCheckpoint {
  const bytes = readInput(path);
  if (bytes.length < HEADER_BYTES) {
    throw new EagleError(`${path}: truncated header: expected ${HEADER_BYTES} bytes, got ${bytes.length}`);
  }
  const config = parseHeader(bytes, path);
  const sizes = arraySizes(config);
  const floats = Object.values(sizes).reduce((a, b) => a + b, 0);
  const expected = HEADER_BYTES + 4 * floats;
  if (bytes.length !== expected) {
    throw new EagleError(`${path}: ${bytes.length < expected ? "truncated" : "oversized"} checkpoint: expected ${expected} bytes, got ${bytes.length}`);
  }
  // one aligned copy of the data; the arrays below are views into it
  const data = new Float32Array(new Uint8Array(bytes.subarray(HEADER_BYTES)).buffer);
  const views: Record<string, Float32Array> = {};
  let at = 0;
  for (const [name, size] of Object.entries(sizes)) {
    views[name] = data.subarray(at, at + size);
    at += size;
  }
  const { freqCisReal: _real, freqCisImag: _imag, wcls, ...rest } = views;
  const weights = { ...rest, ...(config.shared ? {} : { wcls }) } as unknown as Llama2cWeights;
  return { config, weights };
}

function parseHeader(bytes: Buffer, path: string): Llama2cConfig {
  const v = HEADER_FIELDS.map((_, i) => bytes.readInt32LE(4 * i));
  HEADER_FIELDS.forEach((field, i) => {
    if (v[i] === 0 || (v[i] < 0 && field !== "vocab_size")) throw new EagleError(`${path}: header ${field} is ${v[i]}`);
  });
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = v;
  if (dim % nHeads !== 0 || (dim / nHeads) % 2 !== 0) {
    throw new EagleError(`${path}: header dim ${dim} is not n_heads ${nHeads} times an even head size`);
  }
  if (nHeads % nKvHeads !== 0) throw new EagleError(`${path}: header n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`);
  return { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocab), seqLen, shared: vocab > 0 };
}

// element counts of the arrays in file order
function arraySizes(c: Llama2cConfig): Record<string, number> {
  const headDim = c.dim / c.nHeads;
  const kvDim = c.nKvHeads * headDim;
  const L = c.nLayers;
  return {
    tokenEmbedding: c.vocabSize * c.dim,
    rmsAtt: L * c.dim,
    wq: L * c.dim * c.dim,
    wk: L * kvDim * c.dim,
    wv: L * kvDim * c.dim,
    wo: L * c.dim * c.dim,
    rmsFfn: L * c.dim,
    w1: L * c.hiddenDim * c.dim,
    w2: L * c.dim * c.hiddenDim,
    w3: L * c.hiddenDim * c.dim,
    rmsFinal: c.dim,
    freqCisReal: (c.seqLen * headDim) / 2, // old RoPE tables, unused
    freqCisImag: (c.seqLen * headDim) / 2,
    wcls: c.shared ? 0 : c.vocabSize * c.dim,
  };
}

// llama2.c rotates adjacent pairs (2i, 2i+1) of each head; HF Llama rotates i with i + head/2.
// so row 2i+j of a head moves to row j*head/2 + i (HF's permute: view(h, d/2, 2, in).transpose(1, 2)).
export function permuteRopeRows(w: Float32Array, nHeads: number, cols: number): Float32Array {
  const headDim = w.length / cols / nHeads;
  const half = headDim / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * headDim + 2 * i + j) * cols;
        const to = (h * headDim + j * half + i) * cols;
        out.set(w.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

function hfTensors(ckpt: Llama2cCheckpoint): TensorData[] {
  const { config: c, weights: w } = ckpt;
  const kvDim = (c.nKvHeads * c.dim) / c.nHeads;
  const f32 = (name: string, shape: number[], data: Float32Array): TensorData => ({ name, dtype: "F32", shape, data });
  const tensors = [f32("model.embed_tokens.weight", [c.vocabSize, c.dim], w.tokenEmbedding)];
  for (let l = 0; l < c.nLayers; l++) {
    const layer = (all: Float32Array, rows: number, cols: number) => all.subarray(l * rows * cols, (l + 1) * rows * cols);
    const p = `model.layers.${l}.`;
    tensors.push(
      f32(`${p}input_layernorm.weight`, [c.dim], layer(w.rmsAtt, 1, c.dim)),
      f32(`${p}self_attn.q_proj.weight`, [c.dim, c.dim], permuteRopeRows(layer(w.wq, c.dim, c.dim), c.nHeads, c.dim)),
      f32(`${p}self_attn.k_proj.weight`, [kvDim, c.dim], permuteRopeRows(layer(w.wk, kvDim, c.dim), c.nKvHeads, c.dim)),
      f32(`${p}self_attn.v_proj.weight`, [kvDim, c.dim], layer(w.wv, kvDim, c.dim)),
      f32(`${p}self_attn.o_proj.weight`, [c.dim, c.dim], layer(w.wo, c.dim, c.dim)),
      f32(`${p}post_attention_layernorm.weight`, [c.dim], layer(w.rmsFfn, 1, c.dim)),
      f32(`${p}mlp.gate_proj.weight`, [c.hiddenDim, c.dim], layer(w.w1, c.hiddenDim, c.dim)),
      f32(`${p}mlp.down_proj.weight`, [c.dim, c.hiddenDim], layer(w.w2, c.dim, c.hiddenDim)),
      f32(`${p}mlp.up_proj.weight`, [c.hiddenDim, c.dim], layer(w.w3, c.hiddenDim, c.dim)),
    );
  }
  tensors.push(f32("model.norm.weight", [c.dim], w.rmsFinal));
  if (w.wcls) tensors.push(f32("lm_head.weight", [c.vocabSize, c.dim], w.wcls));
  return tensors;
}

// llama2.c's models end a story with BOS and next to never emit EOS: run.c stops at BOS ("data-specific BOS
// (=1) token delimits sequences"), so both are end-of-sequence ids here, EOS first (what a tool that takes one reads)
const BOS_ID = 1;
const STOP_IDS = [2, BOS_ID];

function hfConfig(c: Llama2cConfig): object {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.seqLen,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: c.shared,
    bos_token_id: BOS_ID,
    eos_token_id: STOP_IDS,
    hidden_act: "silu",
    torch_dtype: "float32",
  };
}

function tokenizerConfig(c: Llama2cConfig): object {
  return {
    tokenizer_class: "LlamaTokenizer",
    bos_token: "<s>",
    eos_token: "</s>",
    unk_token: "<unk>",
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: c.seqLen,
  };
}

export interface ConvertOptions {
  checkpoint: string;
  tokenizer: string; // llama2.c tokenizer.bin, e.g. tok512.bin
  out: string;
  force?: boolean; // overwrite into a non-empty out directory
}

export function convertLlama2c(opts: ConvertOptions): void {
  if (existsSync(opts.out) && !statSync(opts.out).isDirectory()) throw new EagleError(`--out ${opts.out}: exists and is not a directory`, 2);
  if (existsSync(opts.out) && readdirSync(opts.out).length > 0 && !opts.force) {
    throw new EagleError(`${opts.out}: output directory is not empty (pass --force to overwrite)`);
  }
  const ckpt = readLlama2cCheckpoint(opts.checkpoint);
  const c = ckpt.config;
  const tok = readLlama2cTokenizer(opts.tokenizer);
  if (tok.pieces.length !== c.vocabSize) {
    throw new EagleError(`${opts.tokenizer}: has ${tok.pieces.length} tokens but ${opts.checkpoint} vocab_size is ${c.vocabSize}`);
  }
  const pieces = sentencePieces(tok, opts.tokenizer);
  mkdirSync(opts.out, { recursive: true });
  const json = (name: string, value: object) => writeFileAtomic(join(opts.out, name), JSON.stringify(value, null, 2) + "\n");
  json("config.json", hfConfig(c));
  json("generation_config.json", { bos_token_id: BOS_ID, eos_token_id: STOP_IDS });
  json("tokenizer.json", tokenizerJson(pieces, tok.scores));
  json("tokenizer_config.json", tokenizerConfig(c));
  writeSafetensors(join(opts.out, "model.safetensors"), hfTensors(ckpt), { format: "pt" });
  const card = modelCard({ ...c, checkpoint: opts.checkpoint, tokenizer: opts.tokenizer, tied: c.shared });
  writeFileAtomic(join(opts.out, "README.md"), card);
  writeFileAtomic(join(opts.out, "LICENSE"), MIT_LICENSE);
}
