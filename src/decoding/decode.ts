// decode.ts — the one decode loop: plain decoding, EAGLE-1 and EAGLE-2 differ only in the proposer.
// Each round: the proposer drafts a tree under the root (the last chosen token), the target checks the
// whole tree in one forward, the verifier accepts a path and picks a bonus token, both caches keep the
// accepted path, and the accepted tokens stream out. A generator: yields token ids, returns statistics.
import type { SequenceForward } from "../native/batch-forward.ts";
import { draftForward, forward, KvCache, nativeMilliseconds, StepOutput } from "../native/engine.ts";
import { EagleError } from "../util/errors.ts";
import type { LoadedModel } from "../model/loader.ts";
import { type DraftCall, type PlainRun, type Prediction, PlainProposer, type Proposer } from "./proposer.ts";
import { Rng, uniformAt } from "../util/rng.ts";
import { type SamplingParams, sampleToken, targetDistribution } from "./sampling.ts";
import { type DraftTree, treeMask } from "./tree.ts";
import { offsetBy, range } from "../util/int32.ts";
import { type Verdict, verifyGreedy, verifyMatched, verifySampled } from "./verify.ts";

export interface DecodeOptions {
  maxNewTokens: number;
  sampling: SamplingParams; // temperature 0 = greedy
  seed: number;
  stopIds: number[];        // end of sequence ids; the stop token is yielded, then decoding ends
  stop?: () => boolean;     // asked after each token: true ends the run early (Ctrl-C), as "interrupted"
  /** Asked each round of a batched run: the sequences sharing its forwards (see Proposer.propose). */
  sharing?: () => number;
}

export type StopReason = "eos" | "max_tokens" | "context" | "interrupted";

export interface DecodeStats {
  promptTokens: number;
  newTokens: number;
  promptMs: number;
  decodeMs: number;          // from the first chosen token to the last
  targetForwards: number;    // verification forwards (one per round), prefill not counted
  nativeMs: number;          // decode time inside shim calls (libtorch + FFI crossing), target and draft
  verifyMs: number;          // decode time in target verification: forward, readers, acceptance, compaction
  draftMs: number;           // decode time the proposer spent drafting and catching up
  acceptedByDepth: number[]; // [d]: rounds whose accepted path reached depth d + 1
  proposedByDepth: number[]; // [d]: rounds whose tree had a node at depth d + 1
  treeNodes: TreeSizes;      // nodes verified per round, roots included
  predicted: Prediction | null; // what the proposer expected of its rounds (auto), else null
  stopReason: StopReason;
}

export interface TreeSizes {
  total: number;
  min: number;
  max: number;
}

/** The speculation figures by the field's definitions (vLLM's names), over every round the run verified;
 * a final round cut short by a stop token or the token limit counts everything it accepted. */
export interface AcceptanceStats {
  meanAcceptanceLength: number;        // τ: tokens per verification forward = 1 (the bonus) + draft tokens accepted
  perPositionAcceptanceRate: number[]; // [d]: rounds that accepted a draft token at depth d + 1, over all rounds (sums to τ - 1)
  conditionalAcceptance: number[];     // [d]: the same over the rounds whose tree reached depth d + 1
  draftAcceptanceRate: number;         // draft tokens accepted over draft tokens verified
}

export function acceptanceStats(s: DecodeStats): AcceptanceStats {
  const rounds = s.targetForwards;
  const accepted = s.acceptedByDepth.reduce((a, b) => a + b, 0);
  const drafted = s.treeNodes.total - rounds; // every node but the roots
  return {
    meanAcceptanceLength: rounds > 0 ? 1 + accepted / rounds : 0,
    perPositionAcceptanceRate: s.proposedByDepth.map((_, d) => (rounds > 0 ? (s.acceptedByDepth[d] ?? 0) / rounds : 0)),
    conditionalAcceptance: s.proposedByDepth.map((p, d) => (p > 0 ? (s.acceptedByDepth[d] ?? 0) / p : 0)),
    draftAcceptanceRate: drafted > 0 ? accepted / drafted : 0,
  };
}

/** τ (see AcceptanceStats.meanAcceptanceLength). */
export function meanAcceptance(s: DecodeStats): number {
  return acceptanceStats(s).meanAcceptanceLength;
}

/** Tokens a run may hold: prompt + generated <= the model's context. Throws when the prompt alone does not fit. */
export function contextCapacity(m: LoadedModel, promptTokens: number, maxNewTokens: number, treeNodes: number): number {
  const context = m.config.maxPositions;
  if (promptTokens === 0) throw new EagleError("the prompt is empty: nothing to condition on (no BOS token either)");
  if (promptTokens >= context) {
    throw new EagleError(`the prompt has ${promptTokens} tokens; the model's context is ${context} (max_position_embeddings)`);
  }
  return Math.min(context, promptTokens + maxNewTokens + treeNodes);
}

/** Verification, as the decode loop needs it; tests swap in deliberately wrong ones. `rng`: the run's stream
 * (a tree of drawn children is verified with its draws); `drawAt(depth)`: the uniform for the token chosen
 * after a node at that depth (the run's draw for that position, see positionDraws); `argmax`: the target's
 * argmax of every row, when the forward's driver read them already (else undefined). */
export type Verifier = (tree: DraftTree, target: StepOutput, sampling: SamplingParams, rng: Rng, vocab: number,
  drawAt: (depth: number) => number, argmax?: Int32Array) => Verdict;

export const verify: Verifier = (tree, target, sampling, rng, vocab, drawAt, argmax) => {
  if (sampling.temperature === 0) return verifyGreedy(tree, argmax ?? target.argmax(undefined, tree.tokens.length));
  const row = rowBuffer(vocab);
  // children drawn from the draft (EAGLE-1 at T > 0): speculative sampling's residuals; top-k children: the
  // target's own draws, matched, so the text is plain sampling's
  if (tree.proposal) return verifySampled(tree, (node) => targetDistribution(target.logitsRow(node, row), sampling), () => rng.next());
  return verifyMatched(tree, (node, u) => sampleToken(target.logitsRow(node, row), sampling, u), drawAt);
};

// a logits row to read the target's rows into, reused while the vocabulary stays the same
let logitsRow = new Float32Array(0);
function rowBuffer(vocab: number): Float32Array {
  if (logitsRow.length !== vocab) logitsRow = new Float32Array(vocab);
  return logitsRow;
}

/** A sampled run's draw for the token at each position of its sequence: a function of its seed and the
 * position alone, so that plain decoding and every speculation of top-k trees, alone or in any batch, sample
 * the same text from the same seed. */
function positionDraws(seed: number): (position: number) => number {
  return (position) => uniformAt(seed, position);
}

/** The first token after the prompt: the target's choice at the last prompt row (`u`: the draw for it). */
function firstToken(out: StepOutput, row: number, sampling: SamplingParams, u: number, vocab: number): number {
  if (sampling.temperature === 0) return out.argmax(Int32Array.of(row))[0];
  return sampleToken(out.logitsRow(row, rowBuffer(vocab)), sampling, u);
}

/** What the decode loop's steps yield: a token, or a forward for its driver to run before asking for the
 * next step — the target's verification (SequenceForward) or one of the drafter's passes (DraftCall) —
 * alone, or batched with other sequences' (forwardBatch, draftForwardBatch). */
export type DecodeEvent = number | SequenceForward | DraftCall;

/** A forward event that is one of the drafter's passes. */
export function isDraftCall(e: SequenceForward | DraftCall): e is DraftCall {
  return "head" in e;
}

/** The decode loop, one sequence: yields its tokens as they are accepted and returns its statistics. */
export function* decode(m: LoadedModel, prompt: number[], opts: DecodeOptions,
  proposer: Proposer = new PlainProposer(), verifier: Verifier = verify): Generator<number, DecodeStats> {
  const steps = decodeSteps(m, prompt, opts, proposer, verifier);
  try {
    for (;;) {
      const step = steps.next();
      if (step.done) return step.value;
      const e = step.value;
      if (typeof e === "number") yield e;
      else if (isDraftCall(e)) draftForward(e.head, e.kv, e.batch, e.features, e.featureRows, e.out);
      else forward(m.model, e.kv, e.batch, e.out);
    }
  } finally {
    steps.return(undefined as never); // a consumer that stops early still frees the run's caches
  }
}

/** The decode loop with its forwards (verification and drafting) left to the caller (see DecodeEvent). Everything else —
 * prefill, drafting, verification, compaction — runs here, so a sequence decoded in a batch makes exactly
 * the choices it makes alone. */
export function* decodeSteps(m: LoadedModel, prompt: number[], opts: DecodeOptions,
  proposer: Proposer = new PlainProposer(), verifier: Verifier = verify): Generator<DecodeEvent, DecodeStats> {
  const rng = new Rng(opts.seed);
  const draws = { sampling: opts.sampling, rng };
  let capacity: number;
  let plain: PlainRun | null = null;
  let drafter = proposer; // what the rounds ask: the proposer, or plain decoding where it finds no draft could pay
  try {
    plain = proposer.plainRun?.(prompt.length, opts.maxNewTokens, draws) ?? null;
    if (plain) drafter = new PlainProposer();
    capacity = contextCapacity(m, prompt.length, opts.maxNewTokens, drafter.maxTreeNodes);
  } catch (e) {
    proposer.dispose(); // the run owns its proposer, also when it never starts
    throw e;
  }
  const kv = KvCache.create(m.model, capacity);
  const out = StepOutput.create();
  const drawAt = positionDraws(opts.seed);
  const vocab = m.config.vocabSize;
  const stats: DecodeStats = {
    promptTokens: prompt.length, newTokens: 0, promptMs: 0, decodeMs: 0, targetForwards: 0, nativeMs: 0, verifyMs: 0, draftMs: 0,
    acceptedByDepth: [], proposedByDepth: [], treeNodes: { total: 0, min: 0, max: 0 }, predicted: null,
    stopReason: "max_tokens",
  };
  // true once the run must end after the token just counted
  const finished = (token: number): boolean => {
    stats.newTokens++;
    if (opts.stopIds.includes(token)) stats.stopReason = "eos";
    else if (prompt.length + stats.newTokens >= m.config.maxPositions) stats.stopReason = "context";
    else if (opts.stop?.()) stats.stopReason = "interrupted";
    else return stats.newTokens >= opts.maxNewTokens;
    return true;
  };
  let decodeStart = 0;
  let nativeStart = 0;
  try {
    // ---- prefill: the prompt through the target, the first token, the drafter's start
    const t0 = performance.now();
    yield { kv, out, batch: { tokens: Int32Array.from(prompt), positions: range(0, prompt.length) } };
    let root = firstToken(out, prompt.length - 1, opts.sampling, drawAt(prompt.length), vocab);
    stats.promptMs = performance.now() - t0;
    if (opts.maxNewTokens === 0) return stats;
    // the sequences whose forwards run with this one's: its text does not depend on them (greedy, or sampled
    // with top-k trees, which verifyMatched makes plain sampling's; an EAGLE-1 tree drawn at T > 0 is fixed)
    const sharing = () => opts.sharing?.() ?? 1;
    yield* drafter.start(prompt, out, root, capacity, draws, sharing()); // the draft's own prefill counts as prompt time
    const t1 = performance.now();
    stats.promptMs = t1 - t0;
    decodeStart = t1;
    nativeStart = nativeMilliseconds();
    yield root;
    if (finished(root)) return stats;

    // ---- rounds: draft a tree, verify it in one target forward, keep the accepted path
    // the cache's length, kept here (asking the cache is a call into the shim): the root goes to slot `base`,
    // at position `base`
    let base = prompt.length;
    // each round's forward, the same record each round (its driver is done with it when it resumes the loop)
    const verification: SequenceForward = { kv, out, batch: { tokens: new Int32Array(0), positions: new Int32Array(0) } };
    const rootPosition = new Int32Array(1), rootArgmax = new Int32Array(1);
    const greedy = opts.sampling.temperature === 0;
    for (;;) {
      const tree = yield* drafter.propose(root, capacity - base, sharing());
      const s0 = performance.now();
      const n = tree.tokens.length;
      const batch = verification.batch;
      batch.tokens = tree.tokens;
      rootPosition[0] = base;
      batch.positions = n === 1 ? rootPosition : offsetBy(tree.depth, base);
      batch.mask = n > 1 ? treeMask(tree) : undefined;
      // greedy: the driver may read the rows' argmax with the forward (with the other sequences' in a batch);
      // -1 marks a driver that did not, and verification then reads them itself
      const argmax = greedy ? (n === 1 ? rootArgmax : new Int32Array(n)) : undefined;
      argmax?.fill(-1);
      verification.argmax = argmax;
      yield verification;
      const read = argmax !== undefined && argmax[0] >= 0 ? argmax : undefined;
      const verdict = verifier(tree, out, opts.sampling, rng, vocab, (depth) => drawAt(base + depth + 1), read);
      if (!keepsAll(verdict.path, n)) kv.keep(base, offsetBy(verdict.path, base));
      stats.verifyMs += performance.now() - s0;
      stats.targetForwards++;
      countDepths(stats, tree, verdict);

      for (let i = 1; i <= verdict.path.length; i++) { // the accepted nodes' tokens after the root, then the bonus
        const token = i < verdict.path.length ? tree.tokens[verdict.path[i]] : verdict.bonus;
        yield token;
        if (finished(token)) return stats;
      }
      yield* drafter.commit(tree, verdict.path, verdict.bonus, out);
      root = verdict.bonus;
      base += verdict.path.length;
    }
  } finally {
    if (decodeStart > 0) {
      stats.decodeMs = performance.now() - decodeStart;
      stats.nativeMs = nativeMilliseconds() - nativeStart;
    }
    stats.draftMs = drafter.draftMs;
    stats.predicted = plain ? plain.finish(stats.targetForwards, stats.decodeMs, opts.sharing === undefined)
      : proposer.prediction ?? null;
    proposer.dispose();
    out.dispose();
    kv.dispose();
  }
}

/** Whether an accepted path keeps every one of a tree's n slots where it is (a chain accepted whole, a plain
 * step): then the cache needs no compaction. */
function keepsAll(path: number[], n: number): boolean {
  if (path.length !== n) return false;
  for (let i = 0; i < n; i++) if (path[i] !== i) return false;
  return true;
}

function countDepths(stats: DecodeStats, tree: DraftTree, verdict: Verdict): void {
  const n = tree.tokens.length;
  const sizes = stats.treeNodes;
  sizes.min = sizes.total === 0 ? n : Math.min(sizes.min, n);
  sizes.max = Math.max(sizes.max, n);
  sizes.total += n;
  let deepest = 0;
  for (let i = 1; i < n; i++) deepest = Math.max(deepest, tree.depth[i]);
  for (let d = 0; d < deepest; d++) stats.proposedByDepth[d] = (stats.proposedByDepth[d] ?? 0) + 1;
  for (let d = 0; d < verdict.path.length - 1; d++) stats.acceptedByDepth[d] = (stats.acceptedByDepth[d] ?? 0) + 1;
}
