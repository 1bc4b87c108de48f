// grow.ts — a Llama-family model made larger without changing the function it computes (Net2Net-style
// growth, Chen et al. 2016), so a small real model predicts what it always did at the cost of a big one:
//   wider residual: every hidden unit copied `width` times; products that read the residual divide
//     their columns by width, products that write it copy their rows; RMSNorm is unchanged by copying;
//   more heads: each query head copied `headCopies` times, each key/value head copied to give `kvHeads`,
//     every query copy sitting in the group of a copy of its own key/value head; o_proj's columns / copies;
//   larger head_dim (x headDimScale = s): rotate-half pair (i, i + D/2) moves to (s i, s i + D'/2), which
//     RoPE turns at the same frequency; q scaled by sqrt(s) so 1/sqrt(D') gives the old logits; the other
//     dimensions are zero in q and k, and values use their first D dimensions;
//   wider MLP: intermediate units copied `mlpCopies` times, down_proj's columns / copies;
//   deeper: blocks after the real ones whose o_proj and down_proj are zero (identity blocks that cost a
//     real block's time).
// A tied LM head becomes untied (the embedding is copied, the LM head divided). A draft head grows by the
// same maps, its fc reading two residual vectors. Each grown weight is the sum over the original weights'
// images: an image is a (grown index, scale) pair of a row and of a column.
import { EagleError } from "../util/errors.ts";

export interface GrowFactors {
  width: number;        // residual copies: hidden x width
  headCopies: number;   // copies of each query head: heads x headCopies
  kvHeads: number;      // key/value heads of the grown model (each original copied kvHeads / original)
  headDimScale: number; // head_dim x headDimScale
  mlpCopies: number;    // intermediate x mlpCopies
  layers: number;       // total layers; those past the original are identity blocks
}

/** The shape a Llama config has (the fields growth changes). */
export interface GrowShape {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
}

/** Factors that turn stories260K (dim 64, 8 x 8 heads, 4 kv heads, MLP 172, 5 layers) into named shapes. */
export const GROW_SHAPES: Record<string, GrowFactors> = {
  // Llama-2-7B: dim 4096, 32 heads of 128, 32 kv heads, MLP 11008, 32 layers (vocabulary aside)
  "llama2-7b": { width: 64, headCopies: 4, kvHeads: 32, headDimScale: 16, mlpCopies: 64, layers: 32 },
  // a CPU-sized memory-bound shape, ~140M parameters: dim 1024, 16 heads of 64, 8 kv heads, MLP 2752, 12 layers
  "stories-140m": { width: 16, headCopies: 2, kvHeads: 8, headDimScale: 8, mlpCopies: 16, layers: 12 },
};

export function grownShape(s: GrowShape, f: GrowFactors): GrowShape {
  return {
    hidden: s.hidden * f.width, intermediate: s.intermediate * f.mlpCopies, layers: f.layers,
    heads: s.heads * f.headCopies, kvHeads: f.kvHeads, headDim: s.headDim * f.headDimScale, vocab: s.vocab,
  };
}

export function checkFactors(s: GrowShape, f: GrowFactors, minLayers = s.layers): void {
  const bad = (flag: string, v: number, want: string) => {
    throw new EagleError(`--${flag} ${v}: must be ${want}`, 2);
  };
  for (const [flag, v] of [["width", f.width], ["head-copies", f.headCopies], ["head-dim-scale", f.headDimScale],
    ["mlp-copies", f.mlpCopies]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 4096) bad(flag, v, "an integer in [1, 4096]");
  }
  if (!Number.isInteger(f.layers) || f.layers < minLayers || f.layers > 1024) bad("layers", f.layers, `an integer in [${minLayers}, 1024]`);
  const heads = s.heads * f.headCopies;
  if (!Number.isInteger(f.kvHeads) || f.kvHeads % s.kvHeads !== 0 || heads % f.kvHeads !== 0) {
    bad("kv-heads", f.kvHeads, `a multiple of ${s.kvHeads} that divides the ${heads} grown query heads`);
  }
  const perGroup = (s.heads / s.kvHeads) * f.headCopies; // query copies of one original group
  if (perGroup % (f.kvHeads / s.kvHeads) !== 0) {
    bad("kv-heads", f.kvHeads, `such that each original group's ${perGroup} query copies split evenly over its key/value copies`);
  }
}

/** One index's images in the grown tensor: (index, scale) pairs. */
type Images = (i: number) => [number, number][];

export class Growth {
  readonly to: GrowShape;
  constructor(readonly from: GrowShape, readonly f: GrowFactors) {
    this.to = grownShape(from, f);
  }

  // ---- index maps

  /** A residual unit as written (copies) and as read (copies / width). */
  readonly residualOut: Images = (i) => this.#copies(i, this.f.width, 1);
  readonly residualIn: Images = (i) => this.#copies(i, this.f.width, 1 / this.f.width);
  readonly mlpOut: Images = (i) => this.#copies(i, this.f.mlpCopies, 1);
  readonly mlpIn: Images = (i) => this.#copies(i, this.f.mlpCopies, 1 / this.f.mlpCopies);
  readonly same: Images = (i) => [[i, 1]];

  #copies(i: number, n: number, scale: number): [number, number][] {
    return Array.from({ length: n }, (_, j) => [i * n + j, scale]);
  }

  /** Where a head dimension goes in a grown q or k head: rotate-half pairs keep their frequency. */
  #ropeDim(d: number): number {
    const half = this.from.headDim / 2;
    return d < half ? this.f.headDimScale * d : this.f.headDimScale * (d - half) + this.to.headDim / 2;
  }

  /** The grown query heads copying original head h (each in a group of a copy of h's key/value head). */
  queryHeads(h: number): number[] {
    const G = this.from.heads / this.from.kvHeads;
    const kvCopies = this.to.kvHeads / this.from.kvHeads;
    const G2 = this.to.heads / this.to.kvHeads;
    const g = Math.floor(h / G);
    return Array.from({ length: this.f.headCopies }, (_, u) => {
      const e = u * G + (h % G); // this copy's place among its original group's query copies
      return (g * kvCopies + Math.floor(e / G2)) * G2 + (e % G2);
    });
  }

  /** The grown key/value heads copying original key/value head g. */
  kvHeadsOf(g: number): number[] {
    const copies = this.to.kvHeads / this.from.kvHeads;
    return Array.from({ length: copies }, (_, j) => g * copies + j);
  }

  readonly qRow: Images = (r) => {
    const D = this.from.headDim;
    const [h, d] = [Math.floor(r / D), r % D];
    return this.queryHeads(h).map((h2) => [h2 * this.to.headDim + this.#ropeDim(d), Math.sqrt(this.f.headDimScale)]);
  };
  readonly kRow: Images = (r) => {
    const D = this.from.headDim;
    return this.kvHeadsOf(Math.floor(r / D)).map((g2) => [g2 * this.to.headDim + this.#ropeDim(r % D), 1]);
  };
  readonly vRow: Images = (r) => {
    const D = this.from.headDim;
    return this.kvHeadsOf(Math.floor(r / D)).map((g2) => [g2 * this.to.headDim + (r % D), 1]);
  };
  readonly oCol: Images = (c) => {
    const D = this.from.headDim;
    return this.queryHeads(Math.floor(c / D)).map((h2) => [h2 * this.to.headDim + (c % D), 1 / this.f.headCopies]);
  };
  /** fc's input: the embedding then the feature, each a residual vector read. */
  readonly fcCol: Images = (c) => {
    const d = this.from.hidden;
    return c < d ? this.residualIn(c) : this.residualIn(c - d).map(([i, s]) => [this.to.hidden + i, s]);
  };

  // ---- tensors

  /** The grown matrix (rows x cols grown) of an original (rows x cols) one under row and column images. */
  matrix(w: Float32Array, rows: number, cols: number, rowImages: Images, colImages: Images, toRows: number, toCols: number): Float32Array {
    if (w.length !== rows * cols) throw new EagleError(`grow: a ${rows} x ${cols} weight has ${w.length} values`);
    const out = new Float32Array(toRows * toCols);
    // the column images flattened once: column c's images are at [start[c], start[c + 1])
    const maps = Array.from({ length: cols }, (_, c) => colImages(c));
    const start = new Int32Array(cols + 1);
    maps.forEach((m, c) => (start[c + 1] = start[c] + m.length));
    const to = new Int32Array(start[cols]);
    const scale = new Float64Array(start[cols]);
    maps.forEach((m, c) => m.forEach(([c2, cs], j) => ([to[start[c] + j], scale[start[c] + j]] = [c2, cs])));
    for (let r = 0; r < rows; r++) {
      for (const [r2, rs] of rowImages(r)) {
        const base = r2 * toCols;
        for (let c = 0; c < cols; c++) {
          const v = w[r * cols + c] * rs;
          if (v === 0) continue;
          for (let j = start[c]; j < start[c + 1]; j++) out[base + to[j]] += v * scale[j];
        }
      }
    }
    return out;
  }

  vector(w: Float32Array, images: Images, size: number): Float32Array {
    const out = new Float32Array(size);
    w.forEach((v, i) => {
      for (const [i2, s] of images(i)) out[i2] += v * s;
    });
    return out;
  }
}

/** A per-layer or global weight: how its rows and columns grow (vectors have rows only). */
interface WeightRule {
  rows: (g: Growth) => [Images, number, number]; // images, original count, grown count
  cols?: (g: Growth) => [Images, number, number];
}

const residualOut = (g: Growth): [Images, number, number] => [g.residualOut, g.from.hidden, g.to.hidden];
const residualIn = (g: Growth): [Images, number, number] => [g.residualIn, g.from.hidden, g.to.hidden];
const vocab = (g: Growth): [Images, number, number] => [g.same, g.from.vocab, g.to.vocab];
const qWidth = (g: Growth) => [g.from.heads * g.from.headDim, g.to.heads * g.to.headDim] as const;
const kvWidth = (g: Growth) => [g.from.kvHeads * g.from.headDim, g.to.kvHeads * g.to.headDim] as const;

/** Rules by the weight's name after its layer prefix (HF Llama names; the draft head's fc too). */
export const RULES: Record<string, WeightRule> = {
  "embed_tokens.weight": { rows: vocab, cols: residualOut },
  "norm.weight": { rows: residualOut },
  "lm_head.weight": { rows: vocab, cols: residualIn },
  "input_layernorm.weight": { rows: residualOut },
  "post_attention_layernorm.weight": { rows: residualOut },
  "self_attn.q_proj.weight": { rows: (g) => [g.qRow, ...qWidth(g)], cols: residualIn },
  "self_attn.k_proj.weight": { rows: (g) => [g.kRow, ...kvWidth(g)], cols: residualIn },
  "self_attn.v_proj.weight": { rows: (g) => [g.vRow, ...kvWidth(g)], cols: residualIn },
  "self_attn.q_proj.bias": { rows: (g) => [g.qRow, ...qWidth(g)] },
  "self_attn.k_proj.bias": { rows: (g) => [g.kRow, ...kvWidth(g)] },
  "self_attn.v_proj.bias": { rows: (g) => [g.vRow, ...kvWidth(g)] },
  "self_attn.o_proj.weight": { rows: residualOut, cols: (g) => [g.oCol, ...qWidth(g)] },
  "mlp.gate_proj.weight": { rows: (g) => [g.mlpOut, g.from.intermediate, g.to.intermediate], cols: residualIn },
  "mlp.up_proj.weight": { rows: (g) => [g.mlpOut, g.from.intermediate, g.to.intermediate], cols: residualIn },
  "mlp.down_proj.weight": { rows: residualOut, cols: (g) => [g.mlpIn, g.from.intermediate, g.to.intermediate] },
  "fc.weight": { rows: residualOut, cols: (g) => [g.fcCol, 2 * g.from.hidden, 2 * g.to.hidden] },
  "fc.bias": { rows: residualOut },
};

// the weights an identity block zeroes: its writes into the residual
export const IDENTITY_ZEROED = new Set(["self_attn.o_proj.weight", "mlp.down_proj.weight"]);

/** The grown tensor `name` (a RULES key) from its original values, and its grown shape. */
export function growTensor(g: Growth, name: string, w: Float32Array): { shape: number[]; values: Float32Array } {
  const rule = RULES[name];
  if (!rule) throw new EagleError(`grow: no rule for weight ${name}`);
  const [rowImages, rows, toRows] = rule.rows(g);
  if (!rule.cols) return { shape: [toRows], values: g.vector(w, rowImages, toRows) };
  const [colImages, cols, toCols] = rule.cols(g);
  return { shape: [toRows, toCols], values: g.matrix(w, rows, cols, rowImages, colImages, toRows, toCols) };
}
