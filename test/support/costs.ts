// fixed cost models for --spec auto in tests (never the machine's, so a test cannot depend on its speed)
import type { CostModel } from "../../src/decoding/cost-model.ts";
import { type SpecConfig, type SpecFlags, type SpecMode, specConfig } from "../../src/decoding/spec-mode.ts";

/** A memory-bound target: verifying a few dozen nodes costs about one step, a draft pass a tenth. */
export const EAGER_COSTS: CostModel = {
  target: { fixedUs: 1000, perTokenUs: 2, perTokenSlotUs: 0 },
  draft: { fixedUs: 60, perTokenUs: 2, perTokenSlotUs: 0 },
  roundUs: 5, buildUs: 5, passUs: 5,
};

/** A compute-bound target whose head costs a third of it, as stories260K on a CPU: no tree pays. */
export const STINGY_COSTS: CostModel = {
  target: { fixedUs: 20, perTokenUs: 12, perTokenSlotUs: 0.07 },
  draft: { fixedUs: 7, perTokenUs: 4.4, perTokenSlotUs: 0.012 },
  roundUs: 12, buildUs: 40, passUs: 40,
};

/** A target whose step is mostly a fixed cost and whose draft pass is dear: even a perfect draft pays alone (a
 * chain of 1 yields 2 tokens for ~4.6 ms against 3 ms a plain token), but not as one of 8 sharing a batch (the
 * fixed 2 ms split: 2 tokens for ~2.9 ms against 1.26 ms a token). */
export const PERFECT_PAYS_ALONE: CostModel = {
  target: { fixedUs: 2000, perTokenUs: 1000, perTokenSlotUs: 0 },
  draft: { fixedUs: 600, perTokenUs: 2, perTokenSlotUs: 0 },
  roundUs: 5, buildUs: 5, passUs: 5,
};

/** specConfig, with `costs` for auto (EAGER_COSTS unless given). */
export function testSpec(mode: SpecMode, flags: SpecFlags = {}, costs: CostModel = EAGER_COSTS): SpecConfig {
  return { ...specConfig(mode, flags), costs: mode === "auto" ? costs : null };
}
