// rope.ts — RoPE inverse frequencies, with the config's rope scaling folded in, computed once per model.
import type { ModelConfig } from "./config.ts";

export function ropeInvFreq(c: ModelConfig): Float32Array {
  const half = c.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / c.ropeTheta ** ((2 * i) / c.headDim);
  const s = c.ropeScaling;
  if (s?.type === "linear") {
    // positions divided by factor == frequencies divided by factor
    for (let i = 0; i < half; i++) inv[i] /= s.factor;
  } else if (s?.type === "llama3") {
    // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, the band between interpolated
    const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositions / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) inv[i] /= s.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
      }
    }
  }
  return Float32Array.from(inv);
}
