import { describe, expect, test } from "bun:test";
import { EagleError } from "../src/util/errors.ts";
import { argmax, sampleFrom, sampleToken, targetDistribution, topKIds, type SamplingParams } from "../src/decoding/sampling.ts";

const plain: SamplingParams = { temperature: 1, topK: 0, topP: 1 };
const f32 = (xs: number[]) => Float32Array.from(xs);
const ln = Math.log;

// compare a float32 row to float64 expectations
function expectClose(got: Float32Array, want: number[]): void {
  expect(got.length).toBe(want.length);
  want.forEach((w, i) => expect(got[i]).toBeCloseTo(w, 6));
}

describe("targetDistribution", () => {
  test("temperature 1 is the softmax", () => {
    // logits ln(1), ln(2), ln(3), ln(4): probs 1/10 .. 4/10
    expectClose(targetDistribution(f32([ln(1), ln(2), ln(3), ln(4)]), plain), [0.1, 0.2, 0.3, 0.4]);
  });

  test("temperature divides the logits", () => {
    // logits 2 ln(k) at T = 2 give back weights 1, 2, 3, 4; logits ln(k) at T = 0.5 give k^2
    const logits = f32([0, ln(2), ln(3), ln(4)]);
    expectClose(targetDistribution(f32([0, 2 * ln(2), 2 * ln(3), 2 * ln(4)]), { ...plain, temperature: 2 }), [0.1, 0.2, 0.3, 0.4]);
    expectClose(targetDistribution(logits, { ...plain, temperature: 0.5 }), [1, 4, 9, 16].map((w) => w / 30));
  });

  test("top-k keeps the k best and renormalises", () => {
    // weights 1, 4, 2, 3: top-2 keeps ids 1 (4) and 3 (3)
    const logits = f32([ln(1), ln(4), ln(2), ln(3)]);
    expectClose(targetDistribution(logits, { ...plain, topK: 2 }), [0, 4 / 7, 0, 3 / 7]);
    expectClose(targetDistribution(logits, { ...plain, topK: 1 }), [0, 1, 0, 0]);
    expectClose(targetDistribution(logits, { ...plain, topK: 9 }), [0.1, 0.4, 0.2, 0.3]);
  });

  test("top-k ties go to the lower id", () => {
    // ids 1, 2, 3 tie for best; top-2 keeps 1 and 2
    expectClose(targetDistribution(f32([0, 5, 5, 5, 1]), { ...plain, topK: 2 }), [0, 0.5, 0.5, 0, 0]);
  });

  test("top-p keeps the smallest set with mass >= p", () => {
    // probs 0.1, 0.4, 0.2, 0.3 ranked 0.4, 0.3, 0.2, 0.1
    const logits = f32([ln(1), ln(4), ln(2), ln(3)]);
    expectClose(targetDistribution(logits, { ...plain, topP: 0.39 }), [0, 1, 0, 0]);
    expectClose(targetDistribution(logits, { ...plain, topP: 0.41 }), [0, 4 / 7, 0, 3 / 7]);
    expectClose(targetDistribution(logits, { ...plain, topP: 0.69 }), [0, 4 / 7, 0, 3 / 7]);
    expectClose(targetDistribution(logits, { ...plain, topP: 0.71 }), [0, 4 / 9, 2 / 9, 3 / 9]);
    expectClose(targetDistribution(logits, { ...plain, topP: 0.95 }), [0.1, 0.4, 0.2, 0.3]);
  });

  test("top-p measures mass against the whole vocab, tiny tail included", () => {
    // id 0: 0.87, id 1: 0.085, 998 ids of 0.045 / 998 each. p = 0.9 needs ids 0 and 1:
    // 0.87 alone would pass if the tiny tail (below the prefilter bound) were left out of the total
    const shares = [0.87, 0.085, ...new Array(998).fill(0.045 / 998)];
    const probs = targetDistribution(f32(shares.map(ln)), { ...plain, topP: 0.9 });
    expect(probs[0]).toBeCloseTo(0.87 / 0.955, 6);
    expect(probs[1]).toBeCloseTo(0.085 / 0.955, 6);
    expect(probs.subarray(2).every((q) => q === 0)).toBe(true);
  });

  test("top-p boundary ties are cut by id", () => {
    // four equal tokens (exactly 0.25 each), p = 0.5: two reach it exactly, the two lowest ids win
    expectClose(targetDistribution(f32([1, 1, 1, 1]), { ...plain, topP: 0.5 }), [0.5, 0.5, 0, 0]);
    expectClose(targetDistribution(f32([1, 1, 1, 1]), { ...plain, topP: 0.51 }), [1 / 3, 1 / 3, 1 / 3, 0]);
    expectClose(targetDistribution(f32([0, 2, 2, 2]), { ...plain, topP: 0.3 }), [0, 1, 0, 0]);
  });

  test("top-k applies before top-p", () => {
    // weights 1, 4, 2, 3; top-3 leaves 4, 3, 2 (/9); p = 0.5 needs 4/9 + 3/9
    const logits = f32([ln(1), ln(4), ln(2), ln(3)]);
    expectClose(targetDistribution(logits, { temperature: 1, topK: 3, topP: 0.5 }), [0, 4 / 7, 0, 3 / 7]);
  });

  test("-Infinity logits get zero mass; bad input throws EagleError", () => {
    expectClose(targetDistribution(f32([-Infinity, 0, 0]), plain), [0, 0.5, 0.5]);
    expect(() => targetDistribution(f32([0, 1]), { ...plain, temperature: 0 })).toThrow(EagleError);
    expect(() => targetDistribution(f32([0, NaN]), plain)).toThrow(EagleError);
    expect(() => targetDistribution(f32([-Infinity]), plain)).toThrow(EagleError);
    expect(() => targetDistribution(f32([0, 1]), { ...plain, topP: 0 })).toThrow(EagleError);
    expect(() => targetDistribution(f32([0, 1]), { ...plain, topK: -1 })).toThrow(EagleError);
  });

  test("large vocab: top-k and top-p agree with a plain sort, and stay fast", () => {
    const n = 128 * 1024;
    const logits = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 8);
    const ranked = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
    expect(Array.from(topKIds(logits, 50))).toEqual(ranked.slice(0, 50));
    const start = performance.now();
    const probs = targetDistribution(logits, { temperature: 0.7, topK: 0, topP: 0.9 });
    targetDistribution(logits, { temperature: 0.7, topK: 40, topP: 1 });
    expect(performance.now() - start).toBeLessThan(500);
    // the nucleus is a prefix of the ranking
    let kept = 0;
    while (probs[ranked[kept]] > 0) kept++;
    expect(ranked.slice(kept).every((id) => probs[id] === 0)).toBe(true);
    expect(kept).toBeGreaterThan(1);
  });
});

describe("sampleFrom", () => {
  // cumulative mass: id 0 -> 0.25, id 1 -> 0.25 (zero), id 2 -> 0.75, id 3 -> 1
  const probs = f32([0.25, 0, 0.5, 0.25]);

  test("inverse cdf at chosen draws", () => {
    expect(sampleFrom(probs, 0)).toBe(0);
    expect(sampleFrom(probs, 0.2499)).toBe(0);
    expect(sampleFrom(probs, 0.25)).toBe(2); // the zero-mass id 1 is skipped
    expect(sampleFrom(probs, 0.7499)).toBe(2);
    expect(sampleFrom(probs, 0.75)).toBe(3);
    expect(sampleFrom(probs, 1 - Number.EPSILON)).toBe(3);
  });

  test("edges never land on zero-probability tokens", () => {
    const edges = f32([0, 0.5, 0.5, 0]);
    expect(sampleFrom(edges, 0)).toBe(1);
    expect(sampleFrom(edges, 1 - Number.EPSILON)).toBe(2);
    // a float32 row that sums a hair under 1 still maps u near 1 to the last live token
    const short = f32([0.3333333, 0.3333333, 0.3333333, 0]);
    expect(sampleFrom(short, 0.9999999999)).toBe(2);
  });

  test("rejects draws outside [0, 1) and empty rows", () => {
    expect(() => sampleFrom(probs, 1)).toThrow(EagleError);
    expect(() => sampleFrom(probs, -0.1)).toThrow(EagleError);
    expect(() => sampleFrom(f32([0, 0]), 0.5)).toThrow(EagleError);
  });
});

describe("argmax", () => {
  test("largest value, lowest index on ties", () => {
    expect(argmax(f32([1, 3, 2]))).toBe(1);
    expect(argmax(f32([5, 1, 5]))).toBe(0);
    expect(argmax(f32([-Infinity, -2, -2]))).toBe(1);
    expect(argmax(f32([NaN, 0, 1]))).toBe(2);
    expect(() => argmax(f32([]))).toThrow(EagleError);
  });
});

describe("sampleToken", () => {
  // the dense row's inverse cdf boundaries (float64 sums of its float32 probabilities), as sampleFrom sees them
  const boundaries = (probs: Float32Array): number[] => {
    let total = 0;
    for (const q of probs) total += q;
    const out: number[] = [];
    let mass = 0;
    for (const q of probs) out.push((mass += q) / total);
    return out;
  };

  test("draws what sampleFrom draws from targetDistribution, but within rounding of a boundary", () => {
    const settings: SamplingParams[] = [
      { temperature: 1, topK: 0, topP: 1 }, { temperature: 0.7, topK: 40, topP: 0.95 }, { temperature: 1.3, topK: 0, topP: 0.8 },
      { temperature: 0.5, topK: 5, topP: 1 }, { temperature: 1, topK: 1, topP: 1 }, { temperature: 2, topK: 600, topP: 0.99 },
    ];
    let compared = 0;
    for (const [seed, n] of [[1, 512], [2, 37], [3, 5000]]) {
      const logits = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 6 + (i % 7 === 0 ? -Infinity : 0));
      for (const p of settings) {
        const probs = targetDistribution(logits, p);
        const edges = boundaries(probs);
        for (let k = 0; k < 997; k++) {
          const u = (k + 0.5) / 997;
          if (edges.some((e) => Math.abs(e - u) < 1e-6)) continue; // where float32 rounding may decide
          expect(sampleToken(logits, p, u)).toBe(sampleFrom(probs, u));
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(17000);
  });

  test("never a token the filters drop, nor a -Infinity one; bad input throws EagleError", () => {
    const logits = f32([-Infinity, 0, 3, 2, -Infinity]);
    for (let k = 0; k < 100; k++) {
      const u = k / 100;
      expect([1, 2, 3]).toContain(sampleToken(logits, plain, u));
      expect(sampleToken(logits, { ...plain, topK: 1 }, u)).toBe(2);
      expect([2, 3]).toContain(sampleToken(logits, { ...plain, topK: 2 }, u));
    }
    for (const p of [plain, { ...plain, topK: 2 }, { ...plain, topP: 0.5 }]) {
      expect(() => sampleToken(f32([0, NaN, 1]), p, 0.5)).toThrow(EagleError);
      expect(() => sampleToken(f32([0, Infinity, 1]), p, 0.5)).toThrow(EagleError);
      expect(() => sampleToken(f32([-Infinity, -Infinity, -Infinity]), p, 0.5)).toThrow(EagleError);
      expect(() => sampleToken(f32([0, 1]), p, 1)).toThrow(EagleError);
    }
    expect(() => sampleToken(f32([0, 1]), { ...plain, temperature: 0 }, 0.5)).toThrow(EagleError);
  });
});
