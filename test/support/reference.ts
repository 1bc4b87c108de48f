// an independent, test-only Llama-family forward in plain typescript: float64 activations,
// one token row at a time, written like the math. slow and obviously correct is the point.
import { fail } from "../../src/util/errors.ts";

export type RopeStyle = "half" | "adjacent"; // hf rotate-half vs llama2.c adjacent pairs

export interface RefConfig {
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsEps: number;
  ropeStyle: RopeStyle;
  invFreq: Float64Array; // (headDim / 2) rotation speed per pair, scaling already applied
}

// matrices are (out, in) row-major; biases are optional
export interface RefLayer {
  attnNorm: Float32Array; // (hidden)
  wq: Float32Array; // (heads * headDim, hidden)
  wk: Float32Array; // (kvHeads * headDim, hidden)
  wv: Float32Array; // (kvHeads * headDim, hidden)
  wo: Float32Array; // (hidden, heads * headDim)
  bq?: Float32Array;
  bk?: Float32Array;
  bv?: Float32Array;
  bo?: Float32Array;
  ffnNorm: Float32Array; // (hidden)
  wGate: Float32Array; // (intermediate, hidden)
  wUp: Float32Array; // (intermediate, hidden)
  wDown: Float32Array; // (hidden, intermediate)
}

export interface RefModel {
  config: RefConfig;
  embed: Float32Array; // (vocab, hidden)
  layers: RefLayer[];
  finalNorm: Float32Array; // (hidden)
  lmHead: Float32Array; // (vocab, hidden); the embedding itself when tied
}

export interface RefOutput {
  hidden: Float32Array[]; // per new token: the final-norm row
  logits: Float32Array[]; // per new token: (vocab)
}

// per-layer key/value rows by slot; keys are stored with rope applied, so slots need no positions
export class RefCache {
  readonly keys: Float64Array[][]; // [layer][slot] (kvHeads * headDim)
  readonly values: Float64Array[][];

  constructor(layers: number) {
    this.keys = Array.from({ length: layers }, () => []);
    this.values = Array.from({ length: layers }, () => []);
  }

  get length(): number {
    return this.keys[0].length;
  }

  // drop every slot from n on
  truncate(n: number): void {
    if (!(Number.isInteger(n) && n >= 0 && n <= this.length)) fail(`RefCache.truncate: ${n} not in [0, ${this.length}]`);
    for (const rows of [...this.keys, ...this.values]) rows.length = n;
  }

  // move `slots` (in order) to base, base+1, ... and drop everything after them
  keep(base: number, slots: number[]): void {
    if (!(Number.isInteger(base) && base >= 0 && base <= this.length)) fail(`RefCache.keep: base ${base} not in [0, ${this.length}]`);
    for (const s of slots) if (!(Number.isInteger(s) && s >= 0 && s < this.length)) fail(`RefCache.keep: slot ${s} not in [0, ${this.length})`);
    for (const rows of [...this.keys, ...this.values]) {
      const kept = slots.map((s) => rows[s]); // gather first: targets and sources may overlap
      rows.length = base;
      rows.push(...kept);
    }
  }
}

// (rows, cols) row-major matrix times vector, float64 accumulation
function matvec(w: Float32Array, x: Float64Array, rows: number, bias?: Float32Array): Float64Array {
  const cols = x.length;
  if (w.length !== rows * cols) fail(`reference: matrix has ${w.length} values, expected ${rows}x${cols}`);
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = bias ? bias[r] : 0;
    const at = r * cols;
    for (let c = 0; c < cols; c++) sum += w[at + c] * x[c];
    out[r] = sum;
  }
  return out;
}

function rmsnorm(x: Float64Array, weight: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const scale = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * scale * weight[i]);
}

// rotate each head of `x` in place by angle pos * invFreq[i] for pair i
function rope(x: Float64Array, pos: number, c: RefConfig): Float64Array {
  const half = c.headDim / 2;
  for (let h = 0; h < x.length / c.headDim; h++) {
    const at = h * c.headDim;
    for (let i = 0; i < half; i++) {
      const angle = pos * c.invFreq[i];
      const cos = Math.cos(angle), sin = Math.sin(angle);
      // pair (a, b): hf pairs i with i + half, llama2.c pairs 2i with 2i + 1
      const a = c.ropeStyle === "half" ? at + i : at + 2 * i;
      const b = c.ropeStyle === "half" ? at + i + half : at + 2 * i + 1;
      const xa = x[a], xb = x[b];
      x[a] = xa * cos - xb * sin;
      x[b] = xb * cos + xa * sin;
    }
  }
  return x;
}

// softmax(q.k / sqrt(d)) v per query head over the visible slots; gqa: head h reads kv head h / group
function attendOne(q: Float64Array, keys: Float64Array[], values: Float64Array[], slots: number[], c: RefConfig): Float64Array {
  const d = c.headDim;
  const group = c.heads / c.kvHeads;
  const out = new Float64Array(c.heads * d);
  for (let h = 0; h < c.heads; h++) {
    const qAt = h * d, kvAt = Math.floor(h / group) * d;
    const scores = slots.map((s) => {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += q[qAt + i] * keys[s][kvAt + i];
      return dot / Math.sqrt(d);
    });
    const max = Math.max(...scores);
    const weights = scores.map((x) => Math.exp(x - max));
    const sum = weights.reduce((a, b) => a + b, 0);
    slots.forEach((s, j) => {
      for (let i = 0; i < d; i++) out[qAt + i] += (weights[j] / sum) * values[s][kvAt + i];
    });
  }
  return out;
}

// slots token t may attend to: every cached slot, then the new tokens its mask row allows
// mask rows of n columns see every cached slot; rows of base + n columns choose among the cached slots too
function visibleSlots(base: number, t: number, n: number, mask: boolean[][] | null): number[] {
  if (mask && mask[t].length === base + n) return mask[t].flatMap((on, s) => (on ? [s] : []));
  const slots = Array.from({ length: base }, (_, s) => s);
  for (let j = 0; j < n; j++) if (mask ? mask[t][j] : j <= t) slots.push(base + j);
  return slots;
}

function attentionBlock(m: RefModel, l: number, cache: RefCache, xs: Float64Array[], positions: number[], mask: boolean[][] | null): Float64Array[] {
  const c = m.config, w = m.layers[l];
  const base = cache.keys[l].length;
  const kvRows = c.kvHeads * c.headDim;
  const qs = xs.map((x, t) => {
    const h = rmsnorm(x, w.attnNorm, c.rmsEps);
    cache.keys[l].push(rope(matvec(w.wk, h, kvRows, w.bk), positions[t], c));
    cache.values[l].push(matvec(w.wv, h, kvRows, w.bv));
    return rope(matvec(w.wq, h, c.heads * c.headDim, w.bq), positions[t], c);
  });
  return xs.map((x, t) => {
    const slots = visibleSlots(base, t, xs.length, mask);
    const attn = attendOne(qs[t], cache.keys[l], cache.values[l], slots, c);
    const o = matvec(w.wo, attn, c.hiddenSize, w.bo);
    return x.map((v, i) => v + o[i]); // residual
  });
}

// swiglu: down(silu(gate h) * up h), h = norm(x)
function mlpBlock(m: RefModel, l: number, x: Float64Array): Float64Array {
  const c = m.config, w = m.layers[l];
  const h = rmsnorm(x, w.ffnNorm, c.rmsEps);
  const gate = matvec(w.wGate, h, c.intermediateSize);
  const up = matvec(w.wUp, h, c.intermediateSize);
  const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
  const down = matvec(w.wDown, act, c.hiddenSize);
  return x.map((v, i) => v + down[i]); // residual
}

function checkBatch(m: RefModel, cache: RefCache, tokens: number[], positions: number[], mask: boolean[][] | null): void {
  const n = tokens.length;
  if (n === 0) fail("reference: forward needs at least one token");
  if (positions.length !== n) fail(`reference: ${positions.length} positions for ${n} tokens`);
  for (const t of tokens) if (!(Number.isInteger(t) && t >= 0 && t < m.config.vocabSize)) fail(`reference: token ${t} out of vocab`);
  if (!mask) return;
  const base = cache.keys[0]?.length ?? 0, cols = mask[0]?.length;
  if (mask.length !== n || !(cols === n || cols === base + n) || mask.some((row) => row.length !== cols)) {
    fail(`reference: mask must be ${n}x${n} or ${n}x${base + n}`);
  }
  const self = cols === n ? 0 : base;
  for (let t = 0; t < n; t++) if (!mask[t][self + t]) fail(`reference: mask row ${t} hides the token from itself`);
}

// run new tokens at explicit positions, appending their k/v to the cache after the cached slots.
// mask[t][j]: new token t sees new token j, cached slots all visible; or with base + n columns, slot j of the
// cache then the new tokens (et_forward's two mask shapes); null = causal.
export function forward(m: RefModel, cache: RefCache, tokens: number[], positions: number[], mask: boolean[][] | null): RefOutput {
  checkBatch(m, cache, tokens, positions, mask);
  const c = m.config;
  let xs: Float64Array[] = tokens.map((t) => Float64Array.from(m.embed.subarray(t * c.hiddenSize, (t + 1) * c.hiddenSize)));
  for (let l = 0; l < c.layers; l++) {
    xs = attentionBlock(m, l, cache, xs, positions, mask);
    xs = xs.map((x) => mlpBlock(m, l, x));
  }
  const hidden = xs.map((x) => rmsnorm(x, m.finalNorm, c.rmsEps));
  return {
    hidden: hidden.map((h) => Float32Array.from(h)),
    logits: hidden.map((h) => Float32Array.from(matvec(m.lmHead, h, c.vocabSize))),
  };
}

export { loadRefModel, loadRefLlama2c, ropeInvFreq } from "./reference-load.ts";
