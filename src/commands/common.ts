// common.ts — flags every model-running command shares, and applying them.
import { availableParallelism } from "node:os";
import type { Argv } from "yargs";
import { setThreads } from "../engine.ts";
import { EagleError } from "../errors.ts";
import type { DeviceName, DTypeName } from "../loader.ts";

export interface RuntimeArgs {
  device?: DeviceName;
  dtype?: DTypeName;
  threads?: number;
}

export function runtimeFlags<T>(y: Argv<T>) {
  return y
    .option("device", { choices: ["cpu", "cuda"] as const, describe: "where to run", defaultDescription: "cuda if available, else cpu" })
    .option("dtype", { choices: ["f32", "f16", "bf16"] as const, describe: "compute dtype", defaultDescription: "bf16 on cuda, f32 on cpu" })
    .option("threads", { alias: "t", type: "number", describe: "CPU threads for libtorch", defaultDescription: "all cores" });
}

/** libtorch's own default can be one thread on some VMs; use every core unless told otherwise. */
export function applyThreads(threads: number | undefined): void {
  const n = threads ?? availableParallelism();
  if (!Number.isInteger(n) || n < 1) throw new EagleError(`--threads ${threads}: must be an integer >= 1`, 2);
  setThreads(n);
}
