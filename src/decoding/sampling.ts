// token sampling as pure functions: the random draw u comes in as an argument (llama2.c's `coin`),
// so every result is reproducible and testable without an rng.
import { fail } from "../util/errors.ts";

export interface SamplingParams {
  temperature: number; // > 0 here; temperature 0 means greedy, which callers do with argmax
  topK: number; // keep the k highest logits; 0 = off
  topP: number; // keep the smallest set of tokens with mass >= p; 1 = off
}

// mass comparisons forgive this much float64 rounding, so p = 0.8 over probs {0.5, 0.3, ...} stops at two
const MASS_SLACK = 1e-12;

function checkParams(p: SamplingParams, vocab: number): void {
  if (!(p.temperature > 0) || !Number.isFinite(p.temperature))
    fail(`sampling: temperature ${p.temperature} must be a finite number > 0 (use argmax for 0)`);
  if (!Number.isInteger(p.topK) || p.topK < 0) fail(`sampling: topK ${p.topK} must be an integer >= 0`);
  if (!(p.topP > 0 && p.topP <= 1)) fail(`sampling: topP ${p.topP} must be in (0, 1]`);
  if (vocab === 0) fail("sampling: empty logits row");
}

// a ranks before b: higher logit first, lower id on ties
function before(logits: Float32Array, a: number, b: number): boolean {
  return logits[a] > logits[b] || (logits[a] === logits[b] && a < b);
}

function byRank(logits: Float32Array): (a: number, b: number) => number {
  return (a, b) => logits[b] - logits[a] || a - b;
}

function identity(n: number): Int32Array {
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = i;
  return ids;
}

// ids of the k best logits in rank order, by a size-k min-heap: O(n log k), no full sort
export function topKIds(logits: Float32Array, k: number): Int32Array {
  const n = logits.length;
  if (!(Number.isInteger(k) && k >= 1)) fail(`topKIds: k ${k} must be an integer >= 1`);
  if (k >= n) return identity(n).sort(byRank(logits));
  const heap = new Int32Array(k); // heap[0] is the worst of the kept ids
  for (let i = 0; i < k; i++) heap[i] = i;
  for (let i = (k >> 1) - 1; i >= 0; i--) siftDown(logits, heap, i);
  // every id after the first k is larger than any kept one, so it ranks before the worst kept exactly when its
  // logit is larger (a tie goes to the kept, lower id; NaN never enters)
  let worst = logits[heap[0]];
  for (let i = k; i < n; i++) {
    if (!(logits[i] > worst)) continue;
    heap[0] = i;
    siftDown(logits, heap, 0);
    worst = logits[heap[0]];
  }
  return heap.sort(byRank(logits));
}

// heap[at] moved down below every kept id it ranks before (a plain function over plain loops: a decode
// samples a few hundred times, too few for the JIT to optimise a closure that swaps by destructuring,
// which cost ~50 us a token in `generate`)
function siftDown(logits: Float32Array, heap: Int32Array, at: number): void {
  const k = heap.length;
  const id = heap[at];
  for (;;) {
    const l = 2 * at + 1;
    if (l >= k) break;
    const worse = l + 1 < k && before(logits, heap[l], heap[l + 1]) ? l + 1 : l;
    if (!before(logits, id, heap[worse])) break;
    heap[at] = heap[worse];
    at = worse;
  }
  heap[at] = id;
}

function checkLogits(logits: Float32Array): void {
  let finite = false;
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i];
    if (Number.isNaN(x) || x === Infinity) fail(`the model produced a logit of ${x} (token ${i}): its weights hold NaN or overflow in this dtype`);
    if (x !== -Infinity) finite = true;
  }
  if (!finite) fail("sampling: every logit is -Infinity");
}

// unnormalised softmax weights exp((logit - max) / T) of `ids`, in float64. index loops: a typed array's
// iterator (for-of, from with a map) costs several times the arithmetic here, and this runs per tree node
function weightsOf(logits: Float32Array, ids: Int32Array, temperature: number): Float64Array {
  let max = -Infinity;
  for (let j = 0; j < ids.length; j++) if (logits[ids[j]] > max) max = logits[ids[j]];
  const w = new Float64Array(ids.length);
  for (let j = 0; j < ids.length; j++) w[j] = Math.exp((logits[ids[j]] - max) / temperature);
  return w;
}

function sum(xs: Float64Array): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s;
}

// top-p: the smallest set of `ids` whose share of their total weight is >= p, taken in rank order.
// only candidates are sorted: the last token admitted has share > (1 - p) / n (the tail it starts
// outweighs 1 - p and has at most n members, none bigger), so anything under half that bound is
// dropped first, and with a peaked softmax few are left.
function nucleus(logits: Float32Array, ids: Int32Array, weights: Float64Array, p: number, ranked: boolean): Int32Array {
  const total = sum(weights);
  const floor = ((0.5 * (1 - p)) / ids.length) * total;
  const kept: number[] = []; // indices into ids
  for (let j = 0; j < ids.length; j++) if (weights[j] >= floor) kept.push(j);
  if (!ranked) kept.sort((a, b) => logits[ids[b]] - logits[ids[a]] || ids[a] - ids[b]); // rank order (top-k's ids come in it)
  let mass = 0;
  let count = kept.length;
  for (let m = 0; m < kept.length; m++) {
    mass += weights[kept[m]];
    if (mass >= (p - MASS_SLACK) * total) {
      count = m + 1;
      break;
    }
  }
  const out = new Int32Array(count);
  for (let m = 0; m < count; m++) out[m] = ids[kept[m]];
  return out;
}

// the row's largest logit, with checkLogits' checks riding on the pass (NaN fails `x <= max` and `x > max` both)
function checkedMax(logits: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i];
    if (x > max) max = x;
    else if (!(x <= max)) checkLogits(logits);
  }
  if (max === Infinity || max === -Infinity) checkLogits(logits);
  return max;
}

// softmax(logits / T) over the whole row, the common case, without the index arrays of the filtered one
function softmax(logits: Float32Array, temperature: number): Float32Array {
  const n = logits.length;
  const max = checkedMax(logits);
  const w = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) total += w[i] = Math.exp((logits[i] - max) / temperature);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = w[i] / total;
  return out;
}

// the distribution to sample from: softmax of logits/T restricted to top-k, then to top-p,
// renormalised; zero outside the kept set. float64 inside, float32 out.
export function targetDistribution(logits: Float32Array, p: SamplingParams): Float32Array {
  checkParams(p, logits.length);
  const n = logits.length;
  if (!(p.topK > 0 && p.topK < n) && p.topP >= 1) return softmax(logits, p.temperature);
  const { ids, weights } = keptWeights(logits, p);
  const total = sum(weights);
  const out = new Float32Array(n);
  for (let j = 0; j < ids.length; j++) out[ids[j]] = weights[j] / total;
  return out;
}

// the tokens top-k, then top-p, keep (top-k's in rank order), with their unnormalised float64 weights
function keptWeights(logits: Float32Array, p: SamplingParams): { ids: Int32Array; weights: Float64Array } {
  checkedMax(logits); // checkLogits' checks, in its fastest pass
  const n = logits.length;
  const ranked = p.topK > 0 && p.topK < n;
  let ids = ranked ? topKIds(logits, p.topK) : identity(n);
  let weights = weightsOf(logits, ids, p.temperature);
  if (p.topP < 1) {
    ids = nucleus(logits, ids, weights, p.topP, ranked);
    weights = weightsOf(logits, ids, p.temperature);
  }
  return { ids, weights };
}

// a float64 scratch row for sampleToken's softmax weights, grown to the largest vocabulary seen
let scratch = new Float64Array(0);

/**
 * One token drawn with uniform u from the distribution targetDistribution gives (the same law; the same token
 * but where u falls within float32 rounding of a boundary, as its probabilities are kept in float64 here),
 * without a row of the vocabulary's size: the top-k tokens' weights alone where top-k filters (one pass over
 * the row), and the unfiltered softmax's weights in a reused row. The inverse cdf runs over the kept tokens in
 * id order, as sampleFrom over the dense row. Decoding draws every token it emits here (decode.ts).
 */
export function sampleToken(logits: Float32Array, p: SamplingParams, u: number): number {
  checkParams(p, logits.length);
  if (!(u >= 0 && u < 1)) fail(`sampling: draw ${u} must be in [0, 1)`);
  const n = logits.length;
  if (!(p.topK > 0 && p.topK < n) && p.topP >= 1) return drawSoftmax(logits, p.temperature, u);
  const { ids, weights } = keptWeights(logits, p);
  // the kept tokens in id order, as the dense row holds them: id * 2^21 + index, sorted as numbers
  const order = new Float64Array(ids.length);
  for (let j = 0; j < ids.length; j++) order[j] = ids[j] * ORDER_SCALE + j;
  order.sort();
  const target = u * sum(weights);
  let mass = 0;
  for (let m = 0; m < order.length - 1; m++) {
    const j = order[m] % ORDER_SCALE;
    mass += weights[j];
    if (weights[j] > 0 && mass > target) return ids[j];
  }
  return ids[order[order.length - 1] % ORDER_SCALE];
}

const ORDER_SCALE = 2 ** 21; // above any count of kept tokens (a vocabulary's), and id * it stays exact in a double

// softmax(logits / T) over the whole row, drawn at u: the weights in float64 in the scratch row, then the
// first token whose cumulative weight exceeds u times their total (the last live one where rounding leaves it short)
function drawSoftmax(logits: Float32Array, temperature: number, u: number): number {
  const n = logits.length;
  const max = checkedMax(logits);
  if (scratch.length < n) scratch = new Float64Array(n);
  const w = scratch;
  let total = 0;
  let last = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp((logits[i] - max) / temperature);
    w[i] = e;
    total += e;
    if (e > 0) last = i;
  }
  return firstPast(w, last, u * total);
}

// the first live entry before `last` whose cumulative weight exceeds `target`, else `last`: rounding can leave
// the running sum a hair short of target, and the last live entry takes it
function firstPast(w: Float32Array | Float64Array, last: number, target: number): number {
  let mass = 0;
  for (let i = 0; i < last; i++) {
    mass += w[i];
    if (w[i] > 0 && mass > target) return i;
  }
  return last;
}

// inverse cdf: the first token whose cumulative mass exceeds u * total. u must be in [0, 1).
// scaling by the row's own total means a float32 row that sums to 1 - 1e-7 still works at u near 1,
// and a zero-probability token is never returned because it never moves the cumulative mass.
export function sampleFrom(probs: Float32Array | Float64Array, u: number): number {
  if (!(u >= 0 && u < 1)) fail(`sampling: draw ${u} must be in [0, 1)`);
  let total = 0;
  let last = -1;
  for (let i = 0; i < probs.length; i++) {
    const q = probs[i];
    if (!(q >= 0) || q === Infinity) fail(`sampling: probability ${i} is ${q}`);
    total += q;
    if (q > 0) last = i;
  }
  if (last < 0) fail("sampling: probabilities sum to zero");
  return firstPast(probs, last, u * total);
}

// up to k distinct tokens drawn one after another without replacement from `probs` (each from what is
// left, renormalised), one draw u each, in draw order; fewer when the support runs out.
export function drawDistinct(probs: Float32Array, k: number, draw: () => number): Int32Array {
  const n = probs.length;
  const left = probs.slice();
  let support = 0;
  let mass = 0; // of what is left, in float64
  for (let i = 0; i < n; i++) {
    if (!(left[i] >= 0) || left[i] === Infinity) fail(`sampling: probability ${i} is ${left[i]}`);
    if (left[i] > 0) (support++, (mass += left[i]));
  }
  const ids = new Int32Array(Math.min(k, support));
  for (let j = 0; j < ids.length; j++) {
    const u = draw();
    if (!(u >= 0 && u < 1)) fail(`sampling: draw ${u} must be in [0, 1)`);
    // inverse cdf as sampleFrom's, over what is left: the last live token takes what rounding leaves
    const target = u * mass;
    let x = -1;
    let acc = 0;
    for (let i = 0; i < n; i++) {
      if (!(left[i] > 0)) continue;
      x = i;
      acc += left[i];
      if (acc > target) break;
    }
    ids[j] = x;
    mass -= left[x];
    left[x] = 0;
  }
  return ids;
}

// index of the largest value, lowest index on ties; NaN never wins
export function argmax(x: Float32Array): number {
  if (x.length === 0) fail("argmax: empty row");
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best] || Number.isNaN(x[best])) best = i;
  return best;
}
