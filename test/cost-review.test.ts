// cost-review.ts: a cost model whose rounds run much faster than it predicts is stale (measured on a busy
// machine); slower proves nothing. The clock is passed in, and the builder's test bounds come from the work.
import { expect, test } from "bun:test";
import { AUTO_DEFAULTS, CostAwareTreeBuilder } from "../src/decoding/auto-tree.ts";
import { CostReview, REVIEW_ROUNDS, RoundClock, STALE_RATIO } from "../src/decoding/cost-review.ts";
import { STINGY_COSTS } from "./support/costs.ts";

test("CostReview: stale once rounds ran STALE_RATIO faster than predicted over REVIEW_ROUNDS rounds, told once", () => {
  let told = 0;
  const review = new CostReview(() => told++);
  for (let r = 1; r < REVIEW_ROUNDS; r++) review.add(10, 10 * STALE_RATIO * 2);
  expect(told).toBe(0); // too few rounds for a verdict
  review.add(10, 10 * STALE_RATIO * 2);
  expect(told).toBe(1);
  expect(review.stale).toBe(true);
  for (let r = 0; r < REVIEW_ROUNDS; r++) review.add(10, 1000);
  expect(told).toBe(1);
});

test("CostReview: rounds a little faster than predicted, or slower, leave the model alone", () => {
  let told = 0;
  const near = new CostReview(() => told++);
  const slow = new CostReview(() => told++);
  for (let r = 0; r < 4 * REVIEW_ROUNDS; r++) {
    near.add(100, 100 * (STALE_RATIO - 0.1)); // an honest calibration's optimism
    slow.add(1000, 10); // a busy machine now, or a batch sharing the time
  }
  expect(told).toBe(0);
  // the verdict is over all rounds so far: a fast stretch after slow ones has to outweigh them
  for (let r = 0; r < REVIEW_ROUNDS; r++) slow.add(1, 10);
  expect(slow.stale).toBe(false);
});

test("RoundClock: each interval between rounds is set against the earlier round's prediction; a skipped round breaks it", () => {
  const seen: { measured: number; predicted: number }[] = [];
  const review = { add: (measured: number, predicted: number) => seen.push({ measured, predicted }) } as unknown as CostReview;
  let nowMs = 0;
  const clock = new RoundClock(review, () => nowMs);
  clock.round(100); // the first round: nothing to measure yet
  nowMs = 0.25;
  clock.round(200);
  nowMs = 0.75;
  clock.round(300);
  nowMs = 5;
  clock.skip(); // a batched round: its costs are shared, not comparable
  clock.round(400);
  nowMs = 5.5;
  clock.round(500);
  expect(seen).toEqual([{ measured: 250, predicted: 100 }, { measured: 500, predicted: 200 }, { measured: 500, predicted: 400 }]);
});

test("a resting builder's rounds feed its model's review: a model that prices a plain round at a second is stale", () => {
  // each wakes() call is a round that does almost nothing; its prediction is a whole (absurd) plain round
  // (and a draft pass at ten, so that even a perfect draft cannot pay: the builder rests from the start)
  const slowModel = { ...STINGY_COSTS, target: { ...STINGY_COSTS.target, fixedUs: 1e6 }, draft: { ...STINGY_COSTS.draft, fixedUs: 1e7 } };
  let told = 0;
  const builder = new CostAwareTreeBuilder(AUTO_DEFAULTS, { ...slowModel, review: new CostReview(() => told++) });
  expect(builder.startsResting(100)).toBe(true);
  for (let i = 0; i <= REVIEW_ROUNDS; i++) builder.wakes(100);
  expect(told).toBe(1);
  // the same rounds shared in a batch are not compared
  const shared = new CostAwareTreeBuilder(AUTO_DEFAULTS, { ...slowModel, review: new CostReview(() => told++) });
  shared.startsResting(100);
  for (let i = 0; i <= 2 * REVIEW_ROUNDS; i++) shared.wakes(100, 16);
  expect(told).toBe(1);
});
