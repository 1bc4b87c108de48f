// calibration.ts — how often the target accepts a draft token, as a function of the draft's own
// conditional probability p for it (given that its parent was accepted), learned from verified rounds.
// EAGLE-2 takes the draft's confidence as the acceptance estimate; a real head is miscalibrated in a way
// one scale factor cannot fix: the grown stories pair's head had 52-57% of its tokens drafted at p 0.2-0.5
// accepted and all of those at 0.5-0.8, but 2-4% of those under 0.1. The error compounds along a path, so
// a tree valued by raw products keeps too many unlikely siblings and too few deep nodes.
// The map is a logistic curve in the draft's log-odds, acceptance = σ(a·logit(p) + b) (Platt scaling),
// fitted to the outcomes by maximum likelihood under a weak prior at a = 1, b = 0 (the draft trusted as it
// is, where nothing has been seen yet). Two parameters pool every outcome, so a few hundred suffice; a > 0
// keeps it rising with p, and it stays below 1, so a path's value (a product of maps) never rises from
// parent to child and a tree of the best values stays connected. Outcomes are kept by bins of log-odds.
// A greedy run starts from the outcomes its cost model measured for the pair (calibrate.ts), and each
// sequence goes on learning from its own rounds alone (never from another's: a sequence drafts the same
// trees in any batch).

const LOW = -10;    // log-odds of the first bin's lower edge; outside [LOW, -LOW] the end bins hold them
const WIDTH = 0.5;  // log-odds per bin
export const ACCEPTANCE_BINS = 40;
const PRIOR = 2;    // the prior's weight, in outcomes
const MOST = 4096;  // outcomes past which all counts are halved, so that the fit keeps following the run
const EDGE = 1e-6;  // p is held within [EDGE, 1 - EDGE] for its log-odds

/** Outcomes by bin of the draft's log-odds, as measured and cached with the cost model. */
export interface AcceptanceCounts {
  seen: number[];     // tokens drafted whose parent the target accepted
  accepted: number[]; // those the target accepted too
  sumX: number[];     // their log-odds, summed
}

/** The fitted curve: acceptance = σ(slope · logit(p) + shift). */
export interface AcceptanceCurve {
  slope: number;
  shift: number;
}

const logit = (p: number) => {
  const q = Math.min(1 - EDGE, Math.max(EDGE, p));
  return Math.log(q / (1 - q));
};
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

export class AcceptanceCalibration {
  readonly #seen = new Float64Array(ACCEPTANCE_BINS);
  readonly #accepted = new Float64Array(ACCEPTANCE_BINS);
  readonly #sumX = new Float64Array(ACCEPTANCE_BINS);
  #total = 0;
  #curve: AcceptanceCurve = { slope: 1, shift: 0 };
  #stale = false;

  /** Learning from `start` (copied), or from the prior alone; with `learns` false, it stays as it starts. */
  constructor(start?: AcceptanceCounts, private readonly learns = true) {
    if (!start) return;
    this.#seen.set(start.seen);
    this.#accepted.set(start.accepted);
    this.#sumX.set(start.sumX);
    this.#total = this.#seen.reduce((a, b) => a + b, 0);
    this.#stale = true;
  }

  /** The outcomes seen so far (the start's included). */
  counts(): AcceptanceCounts {
    return { seen: Array.from(this.#seen), accepted: Array.from(this.#accepted), sumX: Array.from(this.#sumX) };
  }

  /** One drafted token whose parent the target accepted: its draft probability, and whether the target
   * accepted it too. */
  observe(p: number, accepted: boolean): void {
    if (!this.learns || !(p >= 0 && p <= 1)) return;
    const x = logit(p);
    const bin = Math.min(ACCEPTANCE_BINS - 1, Math.max(0, Math.floor((x - LOW) / WIDTH)));
    this.#seen[bin] += 1;
    this.#accepted[bin] += accepted ? 1 : 0;
    this.#sumX[bin] += x;
    if (++this.#total > MOST) {
      for (const counts of [this.#seen, this.#accepted, this.#sumX]) for (let b = 0; b < ACCEPTANCE_BINS; b++) counts[b] /= 2;
      this.#total /= 2;
    }
    this.#stale = true;
  }

  /** The chance that the target accepts a token drafted at probability p, given its parent was accepted. */
  map(p: number): number {
    const c = this.curve;
    return p <= 0 ? 0 : sigmoid(c.slope * logit(p) + c.shift);
  }

  get curve(): AcceptanceCurve {
    if (this.#stale) {
      this.#curve = fitCurve(this.#seen, this.#accepted, this.#sumX, this.#curve);
      this.#stale = false;
    }
    return this.#curve;
  }
}

/** The curve of largest likelihood on the binned outcomes (each bin at its mean log-odds) under the prior,
 * by Newton's method from `from`. */
function fitCurve(seen: Float64Array, accepted: Float64Array, sumX: Float64Array, from: AcceptanceCurve): AcceptanceCurve {
  let a = from.slope;
  let b = from.shift;
  for (let iter = 0; iter < 20; iter++) {
    // gradient and (negated) Hessian of the log-likelihood plus the prior's -PRIOR/2 ((a - 1)^2 + b^2)
    let ga = -PRIOR * (a - 1), gb = -PRIOR * b;
    let haa = PRIOR, hab = 0, hbb = PRIOR;
    for (let k = 0; k < seen.length; k++) {
      const n = seen[k];
      if (n <= 0) continue;
      const x = sumX[k] / n;
      const s = sigmoid(a * x + b);
      const r = accepted[k] - n * s;
      const w = n * s * (1 - s);
      ga += r * x;
      gb += r;
      haa += w * x * x;
      hab += w * x;
      hbb += w;
    }
    const det = haa * hbb - hab * hab;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    a += da;
    b += db;
    if (Math.abs(da) + Math.abs(db) < 1e-9) break;
  }
  return { slope: Math.max(0.05, a), shift: b };
}
