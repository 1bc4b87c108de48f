// device-memory.ts — what a synthetic benchmark needs in memory, what the device has free, and a refusal
// with both numbers when it does not fit (checked before anything is allocated).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import type { ModelConfig } from "./config.ts";
import { EagleError } from "./errors.ts";
import type { DeviceName, DTypeName } from "./loader.ts";
import { parameterCount } from "./synthetic.ts";

export const DTYPE_BYTES: Record<DTypeName, number> = { f32: 4, f16: 2, bf16: 2 };

export interface MemoryNeed {
  weights: number;     // target + draft head, bytes
  cache: number;       // target and draft K/V caches
  activations: number; // a prefill of `tokens`: logits in float32, MLP and attention intermediates
  total: number;
}

/** K/V cache bytes of `tokens` positions for a model of config `c`. */
export function kvBytes(c: ModelConfig, tokens: number, dtype: DTypeName): number {
  return 2 * c.nLayers * c.nKvHeads * c.headDim * tokens * DTYPE_BYTES[dtype];
}

export function memoryNeed(c: ModelConfig, dtype: DTypeName, tokens: number): MemoryNeed {
  const b = DTYPE_BYTES[dtype];
  const weights = (parameterCount(c, false) + parameterCount(c, true)) * b;
  const cache = kvBytes(c, tokens, dtype) + kvBytes({ ...c, nLayers: 1 }, tokens, dtype);
  // logits (float32, plus a softmax-sized copy), the MLP's three intermediates, a few residual-width
  // tensors, and float32 attention scores with their softmax
  const activations = tokens * (8 * c.vocabSize + 3 * b * c.intermediateSize + 8 * b * c.hiddenSize) +
    8 * c.nHeads * tokens * tokens;
  return { weights, cache, activations, total: weights + cache + activations };
}

export interface FreeMemory {
  bytes: number;
  source: string; // where the number comes from
}

/** Free memory of the device: MemAvailable on CPU, nvidia-smi's free memory of GPU `index` on CUDA;
 * null when it cannot be read. */
export function freeMemory(device: DeviceName, index = 0): FreeMemory | null {
  if (device === "cpu") {
    if (!existsSync("/proc/meminfo")) return null;
    const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"));
    return m ? { bytes: Number(m[1]) * 1024, source: "MemAvailable in /proc/meminfo" } : null;
  }
  const p = spawnSync("nvidia-smi", ["--query-gpu=memory.free", "--format=csv,noheader,nounits", "-i", String(index)],
    { encoding: "utf8" });
  const mib = p.status === 0 ? Number.parseInt(p.stdout.trim(), 10) : NaN;
  return Number.isFinite(mib) ? { bytes: mib * 2 ** 20, source: `nvidia-smi free memory of GPU ${index}` } : null;
}

const gb = (n: number) => `${(n / 1e9).toFixed(1)} GB`;

/** Throws, with both numbers, when `need` exceeds what the device has free. */
export function checkFits(what: string, need: MemoryNeed, free: FreeMemory | null): void {
  if (!free || need.total <= free.bytes) return;
  throw new EagleError(`${what} needs ${gb(need.total)} (weights ${gb(need.weights)} + caches ${gb(need.cache)} + ` +
    `activations ${gb(need.activations)}) but ${gb(free.bytes)} is free (${free.source})`);
}
