// auto's calibration on the shipped pair, measured for real: every field a cost, and the host's own time
// for drafting (from real drafted rounds) above a plain round's. No bound here depends on this machine's speed.
import { afterAll, expect, test } from "bun:test";
import { measureCosts } from "../src/decoding/calibrate.ts";
import { stepUs } from "../src/decoding/cost-model.ts";
import { loadDraft } from "../src/model/draft.ts";
import { loadModel } from "../src/model/loader.ts";
import { DEFAULT_MODEL_DIR } from "../src/util/paths.ts";
import { TEST_PLACEMENT } from "./support/device.ts";

const target = loadModel(DEFAULT_MODEL_DIR, TEST_PLACEMENT);
const head = loadDraft(`${DEFAULT_MODEL_DIR}-eagle`, target);
afterAll(() => {
  head.model.dispose();
  target.model.dispose();
});

test("measureCosts: finite, non-negative costs; drafting costs the host a pass and a round's planning beyond a plain round", () => {
  const c = measureCosts(target, head);
  for (const step of [c.target, c.draft]) {
    for (const v of Object.values(step)) {
      expect(Number.isFinite(v)).toBe(true);
      expect(v).toBeGreaterThanOrEqual(0);
    }
    expect(stepUs(step, 1, 32)).toBeGreaterThan(0);
    expect(stepUs(step, 16, 32)).toBeGreaterThan(stepUs(step, 1, 32)); // more rows never cost less
  }
  for (const v of [c.roundUs, c.buildUs, c.passUs, c.batch!.oneUs, c.batch!.twoUs]) expect(Number.isFinite(v)).toBe(true);
  expect(c.roundUs).toBeGreaterThan(0);
  // a drafted round plans a tree (the root's candidates, the tree, the catch-up's bookkeeping) on top of a plain
  // round's work, and every pass builds a level: both are host time a plain round does not spend
  expect(c.buildUs).toBeGreaterThan(0);
  expect(c.passUs).toBeGreaterThan(0);
  expect(c.batch!.twoUs).toBeGreaterThan(0);
});
