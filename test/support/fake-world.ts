// a target and a draft in pure TypeScript, for the tests of the law of whole rounds where no real forward
// is needed: logits are hash functions of the context, the draft is a DraftSource that the real tree
// builders (EAGLE-1's static plan, EAGLE-2's dynamic tree) drive, and `generate` is decode's round loop
// without the model: draft a tree under the root, verify it, emit the accepted path and the bonus.
import type { TopK } from "../../src/native/engine.ts";
import type { DraftLevel, DraftSource, FedLevel, TreeBuilder } from "../../src/decoding/eagle.ts";
import { type Drafting, runDrafts } from "../../src/decoding/proposer.ts";
import { sampleFrom, type SamplingParams, targetDistribution, topKIds } from "../../src/decoding/sampling.ts";
import { type DraftTree, pathTo } from "../../src/decoding/tree.ts";
import { Rng } from "../../src/util/rng.ts";
import type { RowVerifier } from "./verifiers.ts";

// fnv-1a over the sequence, with a salt so target and draft differ
function hash(seq: number[], salt: number): number {
  let h = 0x811c9dc5 ^ salt;
  for (const x of seq) h = Math.imul(h ^ (x + 1), 0x01000193) >>> 0;
  return Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
}

export interface World {
  vocab: number;
  target: (context: number[]) => Float32Array; // raw logits after the context; some -Infinity (zeros)
  draft: (context: number[]) => Float32Array;  // raw logits, all finite
}

/**
 * Logits on a coarse grid (exact ties) plus tiny offsets (near-ties), about one in `zeroEvery` of the target's
 * -Infinity; `scale` sharpens them. The draft copies the target's logits at a `copy` share of the contexts
 * (it is accepted deep there) and guesses from its own hash elsewhere, at `draftScale` (default `scale`).
 */
export function hashWorld(vocab: number, opts: { scale?: number; draftScale?: number; copy?: number; zeroEvery?: number } = {}): World {
  const { scale = 1, copy = 0.6, zeroEvery = 11 } = opts;
  const draftScale = opts.draftScale ?? scale;
  const grid = (seq: number[], salt: number, zeros: boolean, scale: number) => {
    const out = new Float32Array(vocab);
    for (let v = 0; v < vocab; v++) {
      const h = hash([...seq, v], salt);
      out[v] = zeros && h % zeroEvery === 0 ? -Infinity : scale * ((h % 6) * 0.4 + ((h >>> 8) % 3) * 1e-3);
    }
    if (out.every((x) => x === -Infinity)) out[hash(seq, salt) % vocab] = 0;
    return out;
  };
  const memo = (f: (seq: number[]) => Float32Array) => {
    const cache = new Map<string, Float32Array>();
    return (seq: number[]) => {
      const key = seq.join(",");
      let r = cache.get(key);
      if (r === undefined) cache.set(key, (r = f(seq)));
      return r;
    };
  };
  const target = memo((seq) => grid(seq, 1, true, scale));
  const draft = memo((seq) => {
    if (hash(seq, 2) % 1000 < copy * 1000) return Float32Array.from(target(seq), (x) => (x === -Infinity ? -30 : x));
    return grid(seq, 3, false, draftScale);
  });
  return { vocab, target, draft };
}

function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  return Float64Array.from(logits, (x) => x - max - Math.log(sum));
}

/** A DraftSource over a World's draft: each output row is a context; a fed node's row is its parent's plus its token. */
export class FakeDraft implements DraftSource {
  readonly rootRow = 0;
  #rows: number[][]; // the context of each row of the latest output
  #slots = 0;
  constructor(readonly world: World, readonly root: number[]) {
    this.#rows = [root];
  }
  get contextLength(): number {
    return this.root.length;
  }
  #top(rows: number[][], k: number): TopK {
    k = Math.min(k, this.world.vocab);
    const ids = new Int32Array(rows.length * k);
    const logp = new Float32Array(rows.length * k);
    rows.forEach((ctx, i) => {
      const logits = this.world.draft(ctx);
      const lp = logSoftmax(logits);
      if (k > 0) topKIds(logits, k).forEach((id, r) => ((ids[i * k + r] = id), (logp[i * k + r] = lp[id])));
    });
    return { ids, logp };
  }
  rootTopK(k: number): TopK {
    return this.#top([this.root], k);
  }
  *feed(level: DraftLevel, k: number): Drafting<FedLevel> {
    this.#rows = level.tokens.map((t, i) => [...this.#rows[level.featureRows[i]], t]);
    return { top: this.#top(this.#rows, k), slots: level.tokens.map(() => this.#slots++) };
  }
  draftRow(row: number): Float32Array {
    return this.world.draft(this.#rows[row]).slice();
  }
}

export interface Generation {
  build: TreeBuilder;
  verifier: RowVerifier;
  sampling: SamplingParams;
  prompt: number[];
  length: number;  // tokens per sequence
  samples: number; // sequences, seeds seed, seed + 1, ...
  seed: number;
  sampled?: boolean; // hand the builder the run's draws, as decode does (EAGLE-1 then samples its tree)
}

/**
 * Sequences generated round by round as decode does: the first token from the prompt's row, then one
 * verified tree per round, drafting (when sampled) and verification drawing from the run's rng in turn.
 * A tree built without draws depends on the context only, so it is built once per context.
 */
export function generate(world: World, g: Generation): number[][] {
  const trees = new Map<string, DraftTree>();
  const out: number[][] = [];
  for (let s = 0; s < g.samples; s++) {
    const rng = new Rng(g.seed + s);
    const draw = () => rng.next();
    const seq = [...g.prompt, sampleFrom(targetDistribution(world.target(g.prompt), g.sampling), draw())];
    while (seq.length < g.prompt.length + g.length) {
      const key = seq.join(",");
      const root = seq[seq.length - 1];
      let tree = g.sampled ? undefined : trees.get(key);
      if (tree === undefined) {
        tree = runDrafts(g.build.build(new FakeDraft(world, [...seq]), root, 1024, g.sampled ? { sampling: g.sampling, rng } : undefined));
        if (!g.sampled) trees.set(key, tree);
      }
      const t = tree;
      const contextOf = (node: number) => [...seq, ...pathTo(t, node).slice(1).map((n) => t.tokens[n])];
      const verdict = g.verifier(t, (node) => world.target(contextOf(node)), g.sampling, draw);
      seq.push(...verdict.path.slice(1).map((n) => t.tokens[n]), verdict.bonus);
    }
    out.push(seq.slice(g.prompt.length, g.prompt.length + g.length));
  }
  return out;
}
