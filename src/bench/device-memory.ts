// device-memory.ts — what a synthetic benchmark needs in memory, as the needs memory.ts checks against
// the device's free memory before anything is allocated.
import type { ModelConfig } from "../model/config.ts";
import { DTYPE_BYTES, type DTypeName } from "../model/loader.ts";
import type { MemoryNeed } from "../native/memory.ts";
import { parameterCount } from "../model/synthetic.ts";

/** K/V cache bytes of `tokens` positions for a model of config `c`. */
export function kvBytes(c: ModelConfig, tokens: number, dtype: DTypeName): number {
  return 2 * c.nLayers * c.nKvHeads * c.headDim * tokens * DTYPE_BYTES[dtype];
}

/** Weights (target + draft head), both caches, and the activations of a prefill of `tokens`. */
export function memoryNeeds(c: ModelConfig, dtype: DTypeName, tokens: number): MemoryNeed[] {
  const b = DTYPE_BYTES[dtype];
  const weights = (parameterCount(c, false) + parameterCount(c, true)) * b;
  const cache = kvBytes(c, tokens, dtype) + kvBytes({ ...c, nLayers: 1 }, tokens, dtype);
  // logits (float32, plus a softmax-sized copy), the MLP's three intermediates, a few residual-width
  // tensors, and float32 attention scores with their softmax
  const activations = tokens * (8 * c.vocabSize + 3 * b * c.intermediateSize + 8 * b * c.hiddenSize) +
    8 * c.nHeads * tokens * tokens;
  return [
    { what: `weights in ${dtype}`, bytes: weights },
    { what: "caches", bytes: cache },
    { what: "activations", bytes: activations },
  ];
}
