import { expect, test } from "bun:test";
import { offsetBy, range } from "../src/util/int32.ts";

test("range counts n int32s up from base", () => {
  expect(Array.from(range(5, 4))).toEqual([5, 6, 7, 8]);
  expect(range(3, 0).length).toBe(0);
  expect(range(0, 2)).toBeInstanceOf(Int32Array);
});

test("offsetBy adds base to every value, from a plain or a typed array", () => {
  expect(Array.from(offsetBy([0, 2, 3], 10))).toEqual([10, 12, 13]);
  expect(Array.from(offsetBy(Int32Array.of(1, 1), -1))).toEqual([0, 0]);
  expect(offsetBy([], 7).length).toBe(0);
});
