import { expect, test } from "bun:test";
import { Rng, uniformAt } from "../src/util/rng.ts";

const draws = (seed: number, n: number) => Array.from({ length: n }, ((rng) => () => rng.next())(new Rng(seed)));

test("same seed, same stream; different seeds, different streams", () => {
  expect(draws(42, 100)).toEqual(draws(42, 100));
  expect(draws(42, 10)).not.toEqual(draws(43, 10));
  expect(draws(0, 10)).not.toEqual(draws(2 ** 32, 10)); // high bits of the seed count
  expect(new Set(draws(0, 1000)).size).toBe(1000);
});

test("draws lie in [0, 1)", () => {
  for (const u of draws(7, 10000)) {
    expect(u >= 0 && u < 1).toBe(true);
  }
});

test("roughly uniform: bucket counts pass a chi-square bound, mean and variance match", () => {
  const n = 100000, buckets = 20;
  const counts = new Array(buckets).fill(0);
  let sum = 0, sumSq = 0;
  for (const u of draws(2024, n)) {
    counts[Math.floor(u * buckets)]++;
    sum += u;
    sumSq += u * u;
  }
  const expected = n / buckets;
  const chi2 = counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
  expect(chi2).toBeLessThan(43.8); // 19 degrees of freedom, p = 0.001
  expect(sum / n).toBeCloseTo(0.5, 2);
  expect(sumSq / n - (sum / n) ** 2).toBeCloseTo(1 / 12, 2);
});

test("consecutive draws are uncorrelated", () => {
  const us = draws(99, 50000);
  let cov = 0;
  for (let i = 1; i < us.length; i++) cov += (us[i] - 0.5) * (us[i - 1] - 0.5);
  expect(Math.abs(cov / (us.length - 1))).toBeLessThan(0.002); // sd of the estimate is ~0.0004
});

test("normal draws have mean 0 and variance 1", () => {
  const rng = new Rng(5);
  const xs = Array.from({ length: 50000 }, () => rng.normal());
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length;
  expect(Math.abs(mean)).toBeLessThan(0.02);
  expect(Math.abs(variance - 1)).toBeLessThan(0.03);
});

test("uniformAt: a draw per (seed, index), in [0, 1), without state: the same whatever came before", () => {
  const at = (seed: number, n: number, from = 0) => Array.from({ length: n }, (_, i) => uniformAt(seed, from + i));
  expect(at(42, 100)).toEqual(at(42, 100));
  expect(at(42, 50, 50)).toEqual(at(42, 100).slice(50)); // index 50 is index 50, however it is reached
  expect(at(42, 10)).not.toEqual(at(43, 10));
  expect(at(0, 10)).not.toEqual(at(2 ** 32, 10)); // high bits of the seed count
  expect(uniformAt(7, 3)).not.toBe(uniformAt(7, 3 + 2 ** 32)); // and of the index
  const many = at(7, 20000);
  expect(new Set(many).size).toBe(many.length);
  for (const u of many) expect(u >= 0 && u < 1).toBe(true);
});

test("uniformAt: uniform along the indices of a seed and across seeds at an index, neighbours uncorrelated", () => {
  const n = 100000, buckets = 20;
  for (const us of [Array.from({ length: n }, (_, i) => uniformAt(2024, i)), Array.from({ length: n }, (_, s) => uniformAt(s, 17))]) {
    const counts = new Array(buckets).fill(0);
    let sum = 0, sumSq = 0, cov = 0;
    us.forEach((u, i) => {
      counts[Math.floor(u * buckets)]++;
      sum += u;
      sumSq += u * u;
      if (i > 0) cov += (u - 0.5) * (us[i - 1] - 0.5);
    });
    const expected = n / buckets;
    expect(counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0)).toBeLessThan(43.8); // 19 dof, p = 0.001
    expect(sum / n).toBeCloseTo(0.5, 2);
    expect(sumSq / n - (sum / n) ** 2).toBeCloseTo(1 / 12, 2);
    expect(Math.abs(cov / (n - 1))).toBeLessThan(0.0015); // sd of the estimate is ~0.0003
  }
});
