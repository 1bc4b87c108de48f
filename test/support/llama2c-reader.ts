// test-only readers for karpathy's llama2.c files, kept apart from src/convert so the reference
// forward does not share a bug with the converter it checks.
import { readFileSync } from "node:fs";
import { fail } from "../../src/util/errors.ts";

export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  shared: boolean; // classifier tied to the token embedding (header vocab_size > 0)
}

// original layout: matrices (out, in) row-major, per-layer arrays concatenated over layers
export interface Llama2cWeights {
  tokenEmbedding: Float32Array; // (vocab, dim)
  rmsAtt: Float32Array; // (layer, dim)
  wq: Float32Array; // (layer, dim, dim)
  wk: Float32Array; // (layer, kvDim, dim)
  wv: Float32Array; // (layer, kvDim, dim)
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

const HEADER_BYTES = 7 * 4;

export function readLlama2c(path: string): Llama2cCheckpoint {
  const bytes = readFileSync(path);
  if (bytes.length < HEADER_BYTES) fail(`llama2.c: ${path} is too short for a header`);
  const head = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const int = (i: number) => head.getInt32(4 * i, true);
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabRaw, seqLen] = [0, 1, 2, 3, 4, 5, 6].map(int);
  const config: Llama2cConfig = {
    dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocabRaw), seqLen, shared: vocabRaw > 0,
  };
  // copy past the header so the floats are 4-byte aligned whatever node's buffer pool did
  const floats = new Float32Array(bytes.buffer.slice(bytes.byteOffset + HEADER_BYTES, bytes.byteOffset + bytes.length));
  let at = 0;
  const take = (n: number) => {
    if (at + n > floats.length) fail(`llama2.c: ${path} ends ${at + n - floats.length} floats early`);
    const out = floats.subarray(at, at + n);
    at += n;
    return out;
  };
  const kvDim = (dim / nHeads) * nKvHeads;
  const L = nLayers;
  const weights: Llama2cWeights = {
    tokenEmbedding: take(config.vocabSize * dim),
    rmsAtt: take(L * dim),
    wq: take(L * dim * dim),
    wk: take(L * kvDim * dim),
    wv: take(L * kvDim * dim),
    wo: take(L * dim * dim),
    rmsFfn: take(L * dim),
    w1: take(L * hiddenDim * dim),
    w2: take(L * dim * hiddenDim),
    w3: take(L * hiddenDim * dim),
    rmsFinal: take(dim),
  };
  take(seqLen * (dim / nHeads)); // the two legacy rope tables (cos, sin), unused
  if (!config.shared) weights.wcls = take(config.vocabSize * dim);
  return { config, weights };
}

// the pieces of a llama2.c tokenizer .bin: max_token_length, then per token (score f32, len i32, bytes)
export function readLlama2cPieces(path: string): string[] {
  const bytes = readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const pieces: string[] = [];
  let at = 4;
  while (at < bytes.length) {
    const len = view.getInt32(at + 4, true);
    pieces.push(bytes.subarray(at + 8, at + 8 + len).toString("utf8"));
    at += 8 + len;
  }
  return pieces;
}

// join generated tokens (which follow a BOS) into text the way llama2.c prints them:
// <0xNN> is a raw byte, ▁ is a space, and the space right after BOS (id 1) is dropped
export function decodePieces(pieces: string[], tokens: number[]): string {
  const out: number[] = [];
  tokens.forEach((t, i) => {
    let piece = pieces[t].replaceAll("\u2581", " ");
    if ((i === 0 ? 1 : tokens[i - 1]) === 1 && piece.startsWith(" ")) piece = piece.slice(1);
    const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
    if (byte) out.push(parseInt(byte[1], 16));
    else out.push(...Buffer.from(piece, "utf8"));
  });
  return Buffer.from(out).toString("utf8");
}
