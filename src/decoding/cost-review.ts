// cost-review.ts — whether a cached cost model still describes this machine. A calibration timed while the
// machine was busy prices every step high, and the cache would keep it for good: auto then misjudges what
// pays (it once drafted at 0.83x of plain, and once predicted 11.9K tok/s where its rounds ran at 18.9K).
// Runs report their rounds' real wall time beside what the model predicted for them; when rounds have run
// much faster than predicted over enough of them, the model is stale and `onStale` is told, once (the
// calibration then drops its cache file, so the next run measures again). Slower than predicted proves
// nothing: the machine may be busy now, or a batch's other sequences share the time.

/** Rounds counted before a verdict: enough that a burst of load or the JIT's warm-up cannot decide it. */
export const REVIEW_ROUNDS = 256;
/** Rounds this much faster than predicted (predicted / measured) make the model stale. An honest calibration
 * (the best of several timings) runs at 0.7-1.15x of its rounds' real speed. */
export const STALE_RATIO = 1.4;

export class CostReview {
  #rounds = 0;
  #measuredUs = 0;
  #predictedUs = 0;
  #told = false;

  constructor(private readonly onStale: () => void) {}

  /** One round (or `rounds` of them: a plain run's, at its end): its real wall time and the model's prediction
   * for it, both in microseconds. */
  add(measuredUs: number, predictedUs: number, rounds = 1): void {
    if (this.#told || !(measuredUs > 0) || !(predictedUs > 0)) return;
    this.#rounds += rounds;
    this.#measuredUs += measuredUs;
    this.#predictedUs += predictedUs;
    if (this.#rounds >= REVIEW_ROUNDS && this.#predictedUs >= STALE_RATIO * this.#measuredUs) {
      this.#told = true;
      this.onStale();
    }
  }

  /** Whether the model was found stale. */
  get stale(): boolean {
    return this.#told;
  }
}

/**
 * One run's side of a review: each round's wall time is the time from one round's tree to the next one's (its
 * verification, the bookkeeping, the next round's drafting), set against the prediction for the earlier round.
 * `skip` marks a round whose prediction is not comparable (the costs shared in a batch): no interval counts
 * across it.
 */
export class RoundClock {
  #lastMs = -1;
  #pendingUs = 0;

  constructor(private readonly review: CostReview, private readonly now: () => number = () => performance.now()) {}

  round(predictedUs: number): void {
    const t = this.now();
    if (this.#lastMs >= 0) this.review.add((t - this.#lastMs) * 1000, this.#pendingUs);
    this.#lastMs = t;
    this.#pendingUs = predictedUs;
  }

  skip(): void {
    this.#lastMs = -1;
  }
}
