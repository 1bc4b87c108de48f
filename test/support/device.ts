// where in-process tests put their models: $EAGLE_DEVICE (cpu unless set, so CI stays on CPU; a GPU
// machine sets cuda), always float32 so logits compare with the reference and greedy outputs must match.
import type { Placement } from "../../src/model/loader.ts";

export const TEST_PLACEMENT: Placement = { device: process.env.EAGLE_DEVICE === "cuda" ? "cuda" : "cpu", dtype: "f32" };
