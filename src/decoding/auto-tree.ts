// auto-tree.ts — `--spec auto`: EAGLE-2's dynamic tree, grown and trimmed each round by what it is
// expected to earn on this machine. A candidate's value estimates the chance that the target accepts it:
// the product along its path of each token's chance of acceptance given its parent's, which EAGLE-2 takes
// to be the draft's confidence and which here is that confidence mapped through the acceptance measured at
// it for this pair and seen in this sequence's rounds (calibration.ts). A tree of candidates with values v
// is expected to yield 1 + α·Σv tokens, α correcting what calibration leaves over. Its cost comes from the
// measured cost model: the draft passes, the target's verification of its nodes, the draft's catch-up and
// the host's own time. Each round:
//   - after each draft pass, the best tree is the top-m candidates by value for the m that maximises
//     tokens per microsecond (value never rises from parent to child, so that is a connected tree);
//   - another pass is fed (its width chosen too) if its predicted children, the frontier's values times the
//     typical calibrated conditional value of a child of each rank, would raise that rate;
//   - when no tree beats a plain step twice in a row, the drafter rests for a while (plain rounds, no
//     draft work at all), then looks again, resting twice as long each time it finds nothing.
// The tree depends only on draft scores, costs and the rounds already decided, never on the target's
// verdict for this round, so verification stays exactly lossless.
import { type CostModel, sharedTargetCost, stepUs } from "./cost-model.ts";
import { AcceptanceCalibration } from "./calibration.ts";
import { chainRates, chainTokens } from "./chain-acceptance.ts";
import { RoundClock } from "./cost-review.ts";
import { ancestorsOf, type Candidate, rerank } from "./dynamic-tree.ts";
import type { DraftSource, TreeBuilder } from "./eagle.ts";
import type { Drafting, PlainRun, RunDraws } from "./proposer.ts";
import { EagleError } from "../util/errors.ts";
import { chainTree, type DraftTree } from "./tree.ts";

export interface AutoTreeParams {
  topK: number;     // children ranked per fed node, and the widest pass
  maxDepth: number; // draft passes per round at most
  maxNodes: number; // tree size verified at most, root included
}

export const AUTO_DEFAULTS: AutoTreeParams = { topK: 8, maxDepth: 8, maxNodes: 64 };

export function checkAutoParams(p: AutoTreeParams): void {
  const bad = (flag: string, v: number, want: string) => {
    throw new EagleError(`--${flag} ${v}: must be ${want}`, 2);
  };
  if (!Number.isInteger(p.topK) || p.topK < 1 || p.topK > 64) bad("spec-topk", p.topK, "an integer in [1, 64]");
  if (!Number.isInteger(p.maxDepth) || p.maxDepth < 0 || p.maxDepth > 32) bad("spec-depth", p.maxDepth, "an integer in [0, 32]");
  if (!Number.isInteger(p.maxNodes) || p.maxNodes < 1 || p.maxNodes > 1024) bad("spec-tokens", p.maxNodes, "an integer in [1, 1024]");
}

/** What the rounds chose and expected, for statistics (bench: predicted vs measured tokens/s). */
export interface AutoTreeStats {
  rounds: number;          // rounds proposed (resting ones included)
  restingRounds: number;   // plain rounds while the drafter rested
  treeNodes: number;       // nodes verified over all rounds, roots included
  minNodes: number;
  maxNodes: number;
  predictedTokens: number; // sum over rounds of the expected tokens
  predictedUs: number;     // sum over rounds of the predicted cost
  plainUs: number;         // sum over rounds of a plain step's predicted cost at the round's context
}

interface Plan {
  m: number;      // candidates kept (the tree has m + 1 nodes)
  tokens: number; // expected tokens from the round
  drafted: number; // the kept candidates' summed values: the draft's own count of the tokens it expects accepted
  us: number;     // predicted cost of the round
}

const rate = (p: Plan) => p.tokens / p.us;
// drafting at all must beat a plain round by this much (the model is rough, and a plain round costs nothing to
// get wrong); a pass is fed whenever it raises the expected rate (with this margin on passes too, the grown
// stories pair kept trees of 3.4-4.5 nodes where 4-5 ran 8-12% faster)
const PAY_MARGIN = 1.05;
const EMA = 0.1;        // weight of the newest round in the running estimates
const MISSES_TO_REST = 2; // rounds in a row where no tree paid, before the first rest (after a rest: 1)
const FIRST_REST = 16;    // rounds
const LONGEST_REST = 1024;

export class CostAwareTreeBuilder implements TreeBuilder {
  readonly maxTreeNodes: number;
  readonly maxFedNodes: number;
  readonly stats: AutoTreeStats = {
    rounds: 0, restingRounds: 0, treeNodes: 0, minNodes: Infinity, maxNodes: 0, predictedTokens: 0, predictedUs: 0,
    plainUs: 0,
  };
  #accepted = 1;  // running means of accepted draft tokens and of their predicted count: α = their ratio
  #expected = 1;
  #rho: Float64Array | null = null; // running mean calibrated conditional value of a fed node's child, by rank
  #calibration: AcceptanceCalibration | null = null; // made at the first round (see #calibrationFor)
  #drafted: Float64Array | null = null; // the last built tree's draft probabilities, per node (given the parent's)
  #lastExpected = 0;
  #most = 0;       // this round's cap on candidates kept, and its prices (#priceRound)
  #verifyUs = new Float64Array(1);
  #ctx = 0;
  #missed = false;
  #misses = 0;
  #rested = false;        // whether the drafter has rested since a round last paid
  #nextRest = FIRST_REST;
  #restLeft = 0;
  #sampled = false; // whether the run samples (T > 0): set by startsResting and build from the run's draws
  readonly #chain: { greedy: number[] | null; sampled: number[] | null }; // its first choices' acceptance by depth, measured
  #c: CostModel;  // the costs as this round sees them: the measured ones, the target's shared in a batch
  #shared = new Map<number, CostModel>();
  readonly #clock: RoundClock | null; // this run's rounds against their predictions (a cached model's review)

  constructor(readonly params: AutoTreeParams, readonly costs: CostModel) {
    checkAutoParams(params);
    this.maxTreeNodes = params.maxNodes;
    this.maxFedNodes = params.topK * params.maxDepth;
    this.#c = costs;
    this.#clock = costs.review ? new RoundClock(costs.review) : null;
    this.#chain = { greedy: costs.chain ? chainRates(costs.chain, false) : null, sampled: costs.chain ? chainRates(costs.chain, true) : null };
  }

  /** What this builder's rounds (and the cost model's measurement before them) taught it of acceptance. */
  get calibration(): AcceptanceCalibration {
    return this.#calibrationFor();
  }

  // Calibration is greedy verification's: there a token is accepted exactly when the target would pick it,
  // which the measured outcomes describe. Sampled verification accepts by another law (a token the target
  // would pick 60% of the time, about 60% of the time), and on the grown stories pair at T 1 calibrating
  // lowered τ (1.73 -> 1.66 from the greedy outcomes, 1.54 learning from the sequence's own rounds alone,
  // under the residual rule of the time), so a sampled sequence trusts the draft as it is. Under matched
  // verification its own outcomes are the target's probabilities of the children (at T 0.8 with the CLI's
  // filters a child drafted at 0.55 was accepted 0.72 of the time, at 0.04 0.02), but learning from them
  // changed nothing measurable: bench's grown pair, -n 64, τ 2.03 -> 2.00 at T 1, 2.27 -> 2.26 at T 0.8.
  #calibrationFor(draws?: RunDraws): AcceptanceCalibration {
    const sampled = this.#samples(draws);
    this.#calibration ??= sampled ? new AcceptanceCalibration(undefined, false) : new AcceptanceCalibration(this.costs.acceptance);
    return this.#calibration;
  }

  // the costs seen by one of `sharing` sequences whose forwards run together: its share of the batched
  // target forward (sharedTargetCost); its draft passes at their whole cost (the others may not be drafting
  // this round, so a pass may be its alone) and the host's time are its own
  #share(sharing: number): void {
    if (!(sharing > 1)) {
      this.#c = this.costs;
      return;
    }
    let c = this.#shared.get(sharing);
    if (!c) {
      c = { ...this.costs, target: sharedTargetCost(this.costs, sharing) };
      this.#shared.set(sharing, c);
    }
    this.#c = c;
  }

  #samples(draws: RunDraws | undefined): boolean {
    if (draws) this.#sampled = draws.sampling.temperature > 0;
    return this.#sampled;
  }

  get alpha(): number {
    return Math.min(2, Math.max(0.25, this.#accepted / this.#expected));
  }

  *build(draft: DraftSource, root: number, maxNodes: number, draws?: RunDraws): Drafting<DraftTree> {
    const calibration = this.#calibrationFor(draws);
    this.stats.rounds++;
    this.#share(draft.sharing ?? 1);
    const most = Math.min(this.params.maxNodes, maxNodes) - 1; // candidates the tree may keep
    const ctx = draft.contextLength;
    if (most <= 0) {
      this.#lastExpected = 0;
      this.#drafted = null;
      return this.#record(chainTree([root]), { m: 0, tokens: 1, drafted: 0, us: 1 / this.#plainRate(ctx) }, ctx);
    }
    const K = this.params.topK;
    const first = draft.rootTopK(K);
    const raw = Array.from(first.logp, (l) => Math.exp(Math.min(l, 0))); // per candidate: its draft probability
    const candidates: Candidate[] = Array.from(first.ids, (token, j) => ({ token, parent: -1, logp: Math.log(calibration.map(raw[j])), depth: 1 }));
    const value = candidates.map((c) => Math.exp(c.logp)); // per candidate: its path's calibrated value
    this.#rho ??= Float64Array.from(value);
    this.#priceRound(ctx, most);
    let best = topDescending(value, 0, most); // the values a tree can keep, descending
    let newest = candidates.map((_, j) => j);
    const rowOf = new Map<number, number>(newest.map((c) => [c, draft.rootRow])); // parent's row in the last output
    const slot = new Map<number, number>();
    let sunkUs = 0;
    let plan = this.#bestPlan(best, null, sunkUs);
    for (let pass = 1; pass <= this.params.maxDepth; pass++) {
      const next = this.#nextPass(value, newest, best, sunkUs, ctx, plan);
      if (!next) break;
      const frontier = next.frontier;
      const fed = yield* draft.feed({
        tokens: frontier.map((c) => candidates[c].token),
        featureRows: frontier.map((c) => rowOf.get(c)!),
        depth: pass,
        ancestorSlots: frontier.map((c) => ancestorsOf(candidates, c).map((a) => slot.get(a)!)),
      }, K);
      sunkUs += next.passUs;
      const base = candidates.length;
      const accepting = new Float64Array(frontier.length * K); // each child's calibrated chance given its parent
      frontier.forEach((c, j) => {
        slot.set(c, fed.slots[j]);
        for (let r = 0; r < K; r++) {
          const p = Math.exp(Math.min(fed.top.logp[j * K + r], 0));
          accepting[j * K + r] = calibration.map(p);
          const logp = candidates[c].logp + Math.log(accepting[j * K + r]);
          candidates.push({ token: fed.top.ids[j * K + r], parent: c, logp, depth: pass + 1 });
          raw.push(p);
          value.push(Math.exp(logp));
          rowOf.set(base + j * K + r, j); // children read their parent's row of this pass
        }
      });
      this.#learnRanks(accepting, frontier.length);
      newest = Array.from({ length: candidates.length - base }, (_, i) => base + i);
      best = mergeDescending(best, topDescending(value, base, most), most);
      plan = this.#bestPlan(best, null, sunkUs);
    }
    // drafting at all also costs the builder's own round: only a tree that beats that and a plain round pays
    this.#missed = plan.tokens / (plan.us + this.#c.buildUs) <= PAY_MARGIN * this.#plainRate(ctx);
    this.#lastExpected = plan.drafted;
    const { tree, kept } = rerank(root, candidates, plan.m);
    const drafted = new Float64Array(kept.length + 1); // node 0, the root, was not drafted
    for (let i = 0; i < kept.length; i++) drafted[i + 1] = raw[kept[i]];
    this.#drafted = drafted;
    return this.#record(tree, plan, ctx);
  }

  /** The next pass that pays best (1, 2, 4 .. of the newest level's best candidates), or null if none raises the rate. */
  #nextPass(value: number[], newest: number[], best: Float64Array, sunkUs: number, ctx: number,
    current: Plan): { frontier: number[]; passUs: number } | null {
    const K = this.params.topK;
    const rho = this.#rho!;
    const order = newest.slice().sort((a, b) => value[b] - value[a] || a - b);
    let choice: { frontier: number[]; passUs: number; rate: number } | null = null;
    for (let w = 1; w <= Math.min(K, order.length); w *= 2) {
      const predicted = new Float64Array(w * K);
      for (let f = 0; f < w; f++) for (let r = 0; r < K; r++) predicted[f * K + r] = value[order[f]] * rho[r];
      predicted.sort(); // ascending: read from the end
      const passUs = stepUs(this.#c.draft, w, ctx) + this.#c.passUs;
      const plan = this.#bestPlan(best, predicted, sunkUs + passUs);
      if (rate(plan) > (choice?.rate ?? rate(current))) choice = { frontier: order.slice(0, w), passUs, rate: rate(plan) };
    }
    return choice;
  }

  /**
   * The best m over the candidate values (`kept` descending, `extra` ascending: merged on the fly, at
   * most maxNodes - 1 of them), given the draft time already spent this round.
   */
  #bestPlan(kept: Float64Array, extra: Float64Array | null, sunkUs: number): Plan {
    const alpha = this.alpha;
    const verifyUs = this.#verifyUs;
    // next round's catch-up feeds the draft the accepted tokens and the bonus
    const draft = this.#c.draft;
    const ctx = this.#ctx;
    let sum = 0;
    let bestM = 0;
    let bestSum = 0;
    let bestRate = 1 / (sunkUs + verifyUs[0] + stepUs(draft, 1, ctx));
    let i = 0;
    let j = extra ? extra.length - 1 : -1;
    for (let m = 1; m <= this.#most && (i < kept.length || j >= 0); m++) {
      sum += j < 0 || (i < kept.length && kept[i] >= extra![j]) ? kept[i++] : extra![j--];
      const tokens = 1 + alpha * sum;
      const r = tokens / (sunkUs + verifyUs[m] + stepUs(draft, tokens, ctx));
      if (r > bestRate) {
        bestM = m;
        bestSum = sum;
        bestRate = r;
      }
    }
    const tokens = 1 + alpha * bestSum;
    return { m: bestM, tokens, drafted: bestSum, us: tokens / bestRate };
  }

  /** This round's costs at its context: verifying m + 1 nodes (host time included), the next catch-up. */
  #priceRound(ctx: number, most: number): void {
    const c = this.#c;
    this.#most = most;
    if (this.#verifyUs.length !== most + 1) this.#verifyUs = new Float64Array(most + 1);
    for (let m = 0; m <= most; m++) this.#verifyUs[m] = c.roundUs + stepUs(c.target, m + 1, ctx);
    this.#ctx = ctx;
  }

  #plainRate(ctx: number): number {
    return 1 / (this.#c.roundUs + stepUs(this.#c.target, 1, ctx));
  }

  // `accepting`: a pass's children, K per fed node, each its calibrated chance given its parent
  #learnRanks(accepting: Float64Array, fedNodes: number): void {
    const K = this.params.topK;
    for (let r = 0; r < K; r++) {
      let mean = 0;
      for (let j = 0; j < fedNodes; j++) mean += accepting[j * K + r] / fedNodes;
      this.#rho![r] += EMA * (mean - this.#rho![r]);
    }
  }

  #record(tree: DraftTree, plan: Plan, ctx: number): DraftTree {
    const n = tree.tokens.length;
    const s = this.stats;
    s.treeNodes += n;
    s.minNodes = Math.min(s.minNodes, n);
    s.maxNodes = Math.max(s.maxNodes, n);
    s.predictedTokens += plan.tokens;
    s.predictedUs += plan.us;
    s.plainUs += 1 / this.#plainRate(ctx);
    this.#tick(plan.us);
    return tree;
  }

  /** After verification: the accepted draft tokens against the expected count correct α. */
  observe(tree: DraftTree, path: number[]): void {
    this.#calibrate(tree, path);
    if (this.#lastExpected <= 0) return;
    this.#accepted += EMA * (path.length - 1 - this.#accepted);
    this.#expected += EMA * (this.#lastExpected - this.#expected);
  }

  // every drafted node whose parent the target accepted: accepted too, or not, at its draft probability
  #calibrate(tree: DraftTree, path: number[]): void {
    const drafted = this.#drafted;
    if (!drafted || drafted.length !== tree.tokens.length) return;
    const onPath = new Uint8Array(tree.tokens.length);
    for (const node of path) onPath[node] = 1;
    for (let i = 1; i < tree.tokens.length; i++) {
      if (onPath[tree.parents[i]]) this.calibration.observe(drafted[i], onPath[i] === 1);
    }
  }

  /** Asked after a drafted round: whether the drafter should rest (stop catching up) from now on. */
  rests(): boolean {
    if (!this.#missed) {
      this.#misses = 0;
      this.#rested = false;
      this.#nextRest = FIRST_REST;
      return false;
    }
    if (++this.#misses < (this.#rested ? 1 : MISSES_TO_REST)) return false;
    this.#misses = 0;
    this.#rested = true;
    this.#restLeft = this.#nextRest;
    this.#nextRest = Math.min(2 * this.#nextRest, LONGEST_REST);
    return true;
  }

  restLeft(): number {
    return this.#restLeft;
  }

  /** Asked before each round while resting (`context`: cached slots; `sharing`: the sequences sharing the
   * round's forwards): whether to catch up and draft again. Not while no draft as good as this pair's could pay at
   * this context: then it rests on without looking. */
  wakes(context: number, sharing = 1): boolean {
    this.#share(sharing);
    if (--this.#restLeft > 0 || !this.#couldPay(context)) {
      if (this.#restLeft <= 0) this.#restLeft = LONGEST_REST; // looked again: still hopeless at this context
      this.#recordResting(context);
      return false;
    }
    return true;
  }

  #recordResting(context: number): void {
    this.#tick(this.#countPlain(context));
  }

  // a plain round at this context, in the stats; returns its predicted microseconds
  #countPlain(context: number): number {
    const s = this.stats;
    s.rounds++;
    s.restingRounds++;
    s.treeNodes++;
    s.minNodes = Math.min(s.minNodes, 1);
    s.maxNodes = Math.max(s.maxNodes, 1);
    s.predictedTokens++;
    const plainUs = 1 / this.#plainRate(context);
    s.predictedUs += plainUs;
    s.plainUs += plainUs;
    return plainUs;
  }

  // a round's prediction to the review; a round whose costs are shared in a batch is not comparable
  #tick(predictedUs: number): void {
    if (this.#c === this.costs) this.#clock?.round(predictedUs);
    else this.#clock?.skip();
  }

  /** Before the first round (`context`: the prompt's length; `sharing` as for wakes; `draws`: the run's):
   * whether to rest from the start, because no draft as good as this pair's could pay here (#couldPay; then the
   * prompt is not fed to the draft either: in a wide batch, where a sequence's share of a step is small, that
   * prefill was all its head cost). */
  startsResting(context: number, sharing = 1, draws?: RunDraws): boolean {
    this.#samples(draws);
    this.#share(sharing);
    if (this.#couldPay(context)) return false;
    this.#rested = true;
    this.#restLeft = LONGEST_REST;
    return true;
  }

  /** When no draft as good as this pair's could pay, even alone, at any context from `from` (the prompt's
   * length) to `to` (every 32nd, and `to`), a PlainRun: the run decodes plainly, and at its end its rounds are
   * counted as resting ones (the root of round r at context from + r), priced as plain steps alone, and, when
   * it ran alone, set against its wall time in the cost model's review. Else null. */
  plainRun(from: number, to: number, draws?: RunDraws): PlainRun | null {
    this.#samples(draws);
    this.#share(1);
    for (let ctx = from; ; ctx = Math.min(to, ctx + 32)) {
      if (this.#couldPay(ctx)) return null;
      if (ctx >= to) break;
    }
    return {
      finish: (rounds, decodeMs, alone) => {
        this.#share(1);
        let us = 0;
        for (let r = 0; r < rounds; r++) us += this.#countPlain(from + r);
        if (alone && rounds > 0) this.costs.review?.add(decodeMs * 1000, us, rounds);
        const s = this.stats;
        return { tokens: s.predictedTokens, us: s.predictedUs, rounds: s.rounds, plainUs: s.plainUs };
      },
    };
  }

  /** Whether a draft as good as this pair's could beat a plain round at this context: a chain of its first
   * choices, m nodes, yields the tokens their measured acceptance gives (chain-acceptance.ts: greedy, or
   * sampled at temperature 1 for a sampled run; without that measurement m + 1, a draft that is always right)
   * for m - 1 passes of one node, its verification and its catch-up of the tokens it yields. */
  #couldPay(ctx: number): boolean {
    const c = this.#c;
    const rates = this.#sampled ? this.#chain.sampled : this.#chain.greedy;
    let best = 0;
    for (let m = 1; m < this.params.maxNodes && m <= this.params.maxDepth + 1; m++) {
      const tokens = rates ? chainTokens(rates, m) : m + 1;
      const us = c.roundUs + c.buildUs + stepUs(c.draft, tokens, ctx) + stepUs(c.target, m + 1, ctx) +
        (m - 1) * (stepUs(c.draft, 1, ctx) + c.passUs);
      best = Math.max(best, tokens / us);
    }
    return best > PAY_MARGIN * this.#plainRate(ctx);
  }
}

/** The `most` largest of values[from..], descending. */
function topDescending(values: number[], from: number, most: number): Float64Array {
  const sorted = new Float64Array(values.length - from);
  for (let i = from; i < values.length; i++) sorted[i - from] = values[i];
  sorted.sort(); // ascending, numerically
  return sorted.slice(Math.max(0, sorted.length - most)).reverse();
}

/** The `most` largest of two descending lists, descending. */
function mergeDescending(a: Float64Array, b: Float64Array, most: number): Float64Array {
  const out = new Float64Array(Math.min(most, a.length + b.length));
  let i = 0;
  let j = 0;
  for (let k = 0; k < out.length; k++) out[k] = j >= b.length || (i < a.length && a[i] >= b[j]) ? a[i++] : b[j++];
  return out;
}
