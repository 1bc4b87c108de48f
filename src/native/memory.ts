// memory.ts — refuse work that cannot fit in memory before starting it, with the numbers: what it needs
// against what the device has free. CPU: MemAvailable from /proc/meminfo, capped by a cgroup v2 limit;
// CUDA: the driver's free memory. EAGLE_NO_MEMORY_CHECK=1 turns the check off (swap, unusual systems).
import { readFileSync } from "node:fs";
import { EagleError } from "../util/errors.ts";
import { shim } from "./ffi.ts";

export type DeviceName = "cpu" | "cuda";

/** One thing that must fit, by name, for the message. */
export interface MemoryNeed {
  what: string;
  bytes: number;
}

export interface MemoryFree {
  bytes: number;
  source: string; // where the number came from, for the message
}

const GIB = 2 ** 30;

export function formatBytes(n: number): string {
  return n >= GIB ? `${(n / GIB).toFixed(1)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}

function readNumber(path: string): number | null {
  try {
    const text = readFileSync(path, "utf8").trim();
    return /^\d+$/.test(text) ? Number(text) : null; // "max" (no limit) reads as null
  } catch {
    return null;
  }
}

/** Memory a new allocation can take on this machine's CPU side; null where it cannot be told. */
export function cpuFreeMemory(): MemoryFree | null {
  let meminfo: string;
  try {
    meminfo = readFileSync("/proc/meminfo", "utf8");
  } catch {
    return null;
  }
  const m = /^MemAvailable:\s+(\d+) kB$/m.exec(meminfo);
  if (!m) return null;
  const available = Number(m[1]) * 1024;
  const limit = readNumber("/sys/fs/cgroup/memory.max");
  const used = readNumber("/sys/fs/cgroup/memory.current");
  if (limit !== null && used !== null && limit - used < available) {
    return { bytes: Math.max(0, limit - used), source: "the cgroup memory limit" };
  }
  return { bytes: available, source: "MemAvailable" };
}

/** Free and total bytes of a CUDA device, from the driver. */
export function cudaMemory(index: number): { free: number; total: number } {
  const free = new BigUint64Array(1);
  const total = new BigUint64Array(1);
  if (shim().et_cuda_memory(index, free, total) !== 0) {
    throw new EagleError(`memory of CUDA device ${index}: ${shim().et_last_error()}`);
  }
  return { free: Number(free[0]), total: Number(total[0]) };
}

export function freeMemory(device: DeviceName, index = 0): MemoryFree | null {
  if (device === "cpu") return cpuFreeMemory();
  return { bytes: cudaMemory(index).free, source: `cuda:${index} free memory` };
}

/** What does not fit in the device's free memory (so a caller may wait for memory to be freed). */
export class MemoryError extends EagleError {
  constructor(message: string) {
    super(message);
    this.name = "MemoryError";
  }
}

/** Throws a one-line MemoryError naming every need and the free memory when the needs do not fit;
 * `where` (may be empty) starts the message. */
export function checkFits(where: string, device: DeviceName, needs: MemoryNeed[], hint: string): void {
  if (process.env.EAGLE_NO_MEMORY_CHECK === "1") return;
  const free = freeMemory(device);
  if (free === null) return;
  const total = needs.reduce((n, x) => n + x.bytes, 0);
  if (total <= free.bytes) return;
  const parts = needs.map((x) => `${x.what} ${formatBytes(x.bytes)}`).join(" + ");
  throw new MemoryError(`${where ? `${where}: ` : ""}needs ${formatBytes(total)} on ${device} (${parts}) but only ${formatBytes(free.bytes)} ` +
    `is free (${free.source}); ${hint} (EAGLE_NO_MEMORY_CHECK=1 skips this check)`);
}
