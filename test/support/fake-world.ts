// a target and a draft in pure TypeScript, for the tests of the law of whole rounds where no real forward
// is needed: logits are hash functions of the context, the draft is a DraftSource that the real tree
// builders (EAGLE-1's static plan, EAGLE-2's dynamic tree) drive, and `generate` is decode's round loop
// without the model: draft a tree under the root, verify it, emit the accepted path and the bonus.
import type { TopK } from "../../src/native/engine.ts";
import type { DraftLevel, DraftSource, TreeBuilder } from "../../src/decoding/eagle.ts";
import { sampleFrom, type SamplingParams, targetDistribution, topKIds } from "../../src/decoding/sampling.ts";
import { pathTo } from "../../src/decoding/tree.ts";
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
 * (it is accepted deep there) and guesses from its own hash elsewhere.
 */
export function hashWorld(vocab: number, opts: { scale?: number; copy?: number; zeroEvery?: number } = {}): World {
  const { scale = 1, copy = 0.6, zeroEvery = 11 } = opts;
  const grid = (seq: number[], salt: number, zeros: boolean) => {
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
  const target = memo((seq) => grid(seq, 1, true));
  const draft = memo((seq) => {
    if (hash(seq, 2) % 1000 < copy * 1000) return Float32Array.from(target(seq), (x) => (x === -Infinity ? -30 : x));
    return grid(seq, 3, false);
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
    const ids = new Int32Array(rows.length * k);
    const logp = new Float32Array(rows.length * k);
    rows.forEach((ctx, i) => {
      const logits = this.world.draft(ctx);
      const lp = logSoftmax(logits);
      topKIds(logits, Math.min(k, logits.length)).forEach((id, r) => ((ids[i * k + r] = id), (logp[i * k + r] = lp[id])));
    });
    return { ids, logp };
  }
  rootTopK(k: number): TopK {
    return this.#top([this.root], k);
  }
  feed(level: DraftLevel, k: number): { top: TopK; slots: number[] } {
    this.#rows = level.tokens.map((t, i) => [...this.#rows[level.featureRows[i]], t]);
    return { top: this.#top(this.#rows, k), slots: level.tokens.map(() => this.#slots++) };
  }
  logitsRow(row: number, into: Float32Array): Float32Array {
    into.set(this.world.draft(this.#rows[row]));
    return into;
  }
}

/**
 * `samples` sequences of `length` tokens after `prompt`, generated round by round as decode does (the
 * first token from the prompt's row, then one verified tree per round), seeds seed, seed + 1, ...
 * A top-k builder's tree depends on the context only, so it is built once per context.
 */
export function generate(world: World, build: TreeBuilder, verifier: RowVerifier, sampling: SamplingParams,
  prompt: number[], length: number, samples: number, seed: number): number[][] {
  const trees = new Map<string, ReturnType<TreeBuilder["build"]>>();
  const out: number[][] = [];
  for (let s = 0; s < samples; s++) {
    const rng = new Rng(seed + s);
    const draw = () => rng.next();
    const seq = [...prompt, sampleFrom(targetDistribution(world.target(prompt), sampling), draw())];
    while (seq.length < prompt.length + length) {
      const key = seq.join(",");
      let tree = trees.get(key);
      if (tree === undefined) trees.set(key, (tree = build.build(new FakeDraft(world, [...seq]), seq[seq.length - 1], 1024)));
      const t = tree;
      const contextOf = (node: number) => [...seq, ...pathTo(t, node).slice(1).map((n) => t.tokens[n])];
      const verdict = verifier(t, (node) => world.target(contextOf(node)), sampling, draw);
      seq.push(...verdict.path.slice(1).map((n) => t.tokens[n]), verdict.bonus);
    }
    out.push(seq.slice(prompt.length, prompt.length + length));
  }
  return out;
}
