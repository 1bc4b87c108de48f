// common.ts — flags every model-running command shares, and applying them.
import { availableParallelism } from "node:os";
import type { Argv } from "yargs";
import { setThreads } from "../native/engine.ts";
import { EagleError, FlagError } from "../util/errors.ts";
import { AUTO_DEFAULTS } from "../decoding/auto-tree.ts";
import { EAGLE2_DEFAULTS } from "../decoding/eagle2.ts";
import { defaultParallel } from "../decoding/batch-width.ts";
import type { DeviceName, DTypeName, LoadedModel } from "../model/loader.ts";
import { SPEC_MODES, type SpecFlags } from "../decoding/spec-mode.ts";

export interface RuntimeArgs {
  device?: DeviceName;
  dtype?: DTypeName;
  threads?: number;
}

export function runtimeFlags<T>(y: Argv<T>) {
  return y
    .option("device", { choices: ["cpu", "cuda"] as const, describe: "where to run", defaultDescription: "$EAGLE_DEVICE, else cuda if available, else cpu" })
    .option("dtype", { choices: ["f32", "f16", "bf16"] as const, describe: "compute dtype", defaultDescription: "$EAGLE_DTYPE, else bf16 on cuda; on cpu bf16 for a bf16 checkpoint, else f32" })
    .option("threads", { alias: "t", type: "number", describe: "CPU threads for libtorch", defaultDescription: "1 below 20M parameters (batch, serve: all cores), else all cores" });
}

/** An explicit --threads; without one the loader picks a count from the model's size (autoThreads). */
export function applyThreads(threads: number | undefined): void {
  if (threads === undefined) return;
  // more than a few threads a core only thrashes, and a huge count makes OpenMP try to start them all
  const most = 4 * availableParallelism();
  if (!Number.isInteger(threads) || threads < 1 || threads > most) {
    throw new FlagError("threads", threads, `an integer in [1, ${most}] (4 x the ${availableParallelism()} cores)`);
  }
  setThreads(threads);
}

export interface SpecArgs extends SpecFlags {
  draft?: string;
}

export function specFlags<T>(y: Argv<T>) {
  return y
    .option("spec", { choices: SPEC_MODES, describe: "speculative decoding method (auto: EAGLE-2 sized by this machine's measured costs)", defaultDescription: "auto when a draft head is found, else none" })
    .option("draft", { type: "string", describe: "EAGLE draft head directory", defaultDescription: "<model>-eagle if it exists" })
    .option("draft-dtype", { choices: ["f32", "f16", "bf16", "int8"] as const, describe: "the head's weights (on the CPU kernels any, int8 with a scale per output: the output does not change)", defaultDescription: "int8 for a head of 16 MiB or more on the CPU kernels, else the model's --dtype" })
    .option("tree", { type: "string", describe: "EAGLE-1 tree: a JSON list of paths of child ranks, inline ([[0],[1],[0,0]]) or a file holding one", defaultDescription: "the official 25-node tree" })
    .option("spec-depth", { type: "number", describe: "EAGLE-2 expansion passes (auto: at most)", defaultDescription: `${EAGLE2_DEFAULTS.depth}; auto ${AUTO_DEFAULTS.maxDepth}` })
    .option("spec-topk", { type: "number", describe: "EAGLE-2 children per expanded node (auto: at most)", defaultDescription: `${EAGLE2_DEFAULTS.topK}; auto ${AUTO_DEFAULTS.topK}` })
    .option("spec-tokens", { type: "number", describe: "EAGLE-2 tree size verified per step (auto: at most)", defaultDescription: `${EAGLE2_DEFAULTS.totalTokens}; auto ${AUTO_DEFAULTS.maxNodes}` });
}

/** --parallel (-P): how many sequences decode at once, their target forwards batched. */
export function parallelFlag<T>(y: Argv<T>, what: string) {
  return y.option("parallel", {
    alias: "P", type: "number", defaultDescription: "measured: the fewest within 5% of this machine's best for the model",
    describe: `${what} decoded at once, their forwards batched (each one's output is what it gets alone)`,
  });
}

/** The --parallel value, checked (exit 2 outside 1..4096); undefined when not given. */
export function parallelCount(value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!(Number.isInteger(value) && value >= 1 && value <= 4096)) {
    throw new EagleError(`--parallel must be an integer from 1 to 4096, got ${value}`, 2);
  }
  return value;
}

/** How many sequences decode at once, and how that was chosen (for the run's summary). */
export interface Width {
  parallel: number;
  how: string;
}

/** The sequences to decode at once: --parallel, else what this machine measured best for the model (a
 * short measurement, once, cached: batch-width.ts). */
export function parallelFor(given: number | undefined, target: LoadedModel): Width {
  if (given !== undefined) return { parallel: given, how: `parallel ${given}` };
  const width = defaultParallel(target).parallel;
  return { parallel: width, how: `parallel ${width} (measured)` };
}

/** Lists a command's main flags first in its --help, before the runtime and speculation flags. */
export function helpFirst<T>(y: Argv<T>, keys: string[]): Argv<T> {
  return y.group(keys, "Options:");
}

/** --stop: every value given (an array flag, not last-wins), one string per --stop. */
export function stopFlag<T>(y: Argv<T>) {
  return y.option("stop", {
    type: "string", array: true, nargs: 1, describe: "end the text at this string, which is not printed (repeatable; \\n, \\t, \\\\ are escapes)",
  });
}

const ESCAPES: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\" };

/** The --stop values as stop strings: escapes read as llama.cpp reads them; an empty one is refused (exit 2). */
export function stopStrings(values: string[] | undefined): string[] {
  return (values ?? []).map((v) => {
    const s = String(v).replace(/\\([ntr\\])/g, (_, c: string) => ESCAPES[c]);
    if (s === "") throw new EagleError(`--stop "": must be a non-empty string`, 2);
    return s;
  });
}
