// auto's acceptance calibration in pure TypeScript: outcomes drawn (seeded) from known curves, the fit that
// comes back, and the properties the tree builder relies on (rising with p, below 1, a copy through counts).
import { expect, test } from "bun:test";
import { AcceptanceCalibration, type AcceptanceCurve } from "../src/decoding/calibration.ts";
import { Rng } from "../src/util/rng.ts";

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const logit = (p: number) => Math.log(p / (1 - p));

/** `n` drafted tokens, their log-odds uniform in [-6, 5], each accepted with the true curve's chance. */
function learnFrom(truth: AcceptanceCurve, n: number, seed: number, into = new AcceptanceCalibration()): AcceptanceCalibration {
  const rng = new Rng(seed);
  for (let i = 0; i < n; i++) {
    const p = sigmoid(-6 + 11 * rng.next());
    into.observe(p, rng.next() < sigmoid(truth.slope * logit(p) + truth.shift));
  }
  return into;
}

test("with nothing seen, the draft is trusted as it is", () => {
  const c = new AcceptanceCalibration();
  for (const p of [0.001, 0.05, 0.3, 0.5, 0.8, 0.99]) expect(c.map(p)).toBeCloseTo(p, 9);
  expect(c.map(0)).toBe(0);
});

test("the curve of an under-confident head (the grown stories pair's) and of an over-confident one is found", () => {
  for (const truth of [{ slope: 1.6, shift: 1.4 }, { slope: 0.7, shift: -1 }]) {
    const c = learnFrom(truth, 4000, 7);
    expect(Math.abs(c.curve.slope - truth.slope)).toBeLessThan(0.2);
    expect(Math.abs(c.curve.shift - truth.shift)).toBeLessThan(0.25);
    for (const p of [0.05, 0.2, 0.5, 0.8]) {
      expect(Math.abs(c.map(p) - sigmoid(truth.slope * logit(p) + truth.shift))).toBeLessThan(0.05);
    }
  }
});

test("the map rises with p and stays below 1, so a path's value never rises from parent to child", () => {
  const c = learnFrom({ slope: 3, shift: 2 }, 3000, 3);
  let last = 0;
  for (let i = 1; i <= 1000; i++) {
    const v = c.map(i / 1000);
    expect(v).toBeGreaterThanOrEqual(last);
    expect(v).toBeLessThanOrEqual(1);
    last = v;
  }
  // a head accepted whatever its confidence: still no more than 1
  const always = new AcceptanceCalibration();
  for (let i = 0; i < 500; i++) always.observe(0.05 + (i % 90) / 100, true);
  expect(always.map(0.05)).toBeLessThanOrEqual(1);
  expect(always.map(0.05)).toBeGreaterThan(0.5);
});

test("counts carry the outcomes: a copy fits the same curve and goes on learning from there", () => {
  const c = learnFrom({ slope: 1.6, shift: 1.4 }, 1500, 11);
  const copy = new AcceptanceCalibration(c.counts());
  expect(copy.curve.slope).toBeCloseTo(c.curve.slope, 9);
  expect(copy.curve.shift).toBeCloseTo(c.curve.shift, 9);
  // the copy learns on its own, the original is untouched
  learnFrom({ slope: 1, shift: -2 }, 4000, 12, copy);
  expect(copy.curve.shift).toBeLessThan(0);
  expect(c.curve.shift).toBeGreaterThan(1);
});

test("a long run keeps at most a few thousand outcomes, the older ones halved, and follows a change", () => {
  const c = learnFrom({ slope: 1, shift: 2 }, 20000, 5);
  learnFrom({ slope: 1, shift: -2 }, 20000, 6, c);
  const seen = c.counts().seen.reduce((a, b) => a + b, 0);
  expect(seen).toBeLessThanOrEqual(4096);
  expect(Math.abs(c.curve.shift + 2)).toBeLessThan(0.5);
});
