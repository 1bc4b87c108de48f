// train-draft — trains an EAGLE-1/2 draft head for a target model: features and gradients in the shim
// (CPU or CUDA), data, schedule and files here. See src/train/.
import type { Argv } from "yargs";
import { FlagError } from "../util/errors.ts";
import { resolvePlacement } from "../model/loader.ts";
import { trainDraft } from "../train/run.ts";
import { applyThreads, type RuntimeArgs, runtimeFlags } from "./common.ts";

export interface TrainDraftArgs extends RuntimeArgs {
  target: string;
  out: string;
  data?: string;
  steps: number;
  lr: number;
  warmup: number;
  batch: number;
  maxLen: number;
  window?: number;
  noise: number;
  gradClip: number;
  seed: number;
  validFrac: number;
  genSeqs: number;
  genTemp: number[];
  fcBias: boolean;
  evalEvery: number;
  saveEvery: number;
  logEvery: number;
  resume: boolean;
  force: boolean;
}

export function trainDraftFlags<T>(y: Argv<T>) {
  return runtimeFlags(y)
    .option("target", { type: "string", demandOption: true, describe: "target model directory (Hugging Face layout)" })
    .option("out", { type: "string", demandOption: true, describe: "directory for the head (config.json + model.safetensors)" })
    .option("data", { type: "string", describe: "training text: .txt (paragraphs, else lines) or .jsonl (text | prompt+response | messages)", defaultDescription: "text sampled from the target" })
    .option("steps", { type: "number", default: 2000, describe: "optimizer steps (in all, when resuming)" })
    .option("lr", { type: "number", default: 3e-3, describe: "peak learning rate (AdamW)" })
    .option("warmup", { type: "number", default: 100, describe: "steps of linear warmup before the cosine decay" })
    .option("batch", { type: "number", default: 16, describe: "sequences per step" })
    .option("max-len", { type: "number", default: 256, describe: "tokens per training sequence" })
    .option("window", { type: "number", describe: "tokens per training window: a longer sequence gives a random window of it per draw", defaultDescription: "--max-len" })
    .option("noise", { type: "number", default: 0.1, describe: "uniform noise amplitude on the input features" })
    .option("grad-clip", { type: "number", default: 1, describe: "clip the gradient's global norm to this; 0 = off" })
    .option("seed", { type: "number", default: 0, describe: "seed of the initial weights, data, split and batches" })
    .option("valid-frac", { type: "number", default: 0.05, describe: "fraction of sequences held out for validation" })
    .option("gen-seqs", { type: "number", default: 256, describe: "without --data: sequences to sample from the target" })
    .option("gen-temp", { type: "number", array: true, default: [1], describe: "without --data: sampling temperature(s), used in turn" })
    .option("fc-bias", { type: "boolean", default: true, describe: "give fc a bias (as the EAGLE-1 Vicuna/LLaMA2 heads)" })
    .option("eval-every", { type: "number", default: 500, describe: "validate every this many steps; 0 = only at the end" })
    .option("save-every", { type: "number", default: 1000, describe: "checkpoint every this many steps; 0 = only at the end" })
    .option("log-every", { type: "number", default: 100, describe: "log line interval when stderr is not a terminal" })
    .option("resume", { type: "boolean", default: false, describe: "continue the head in --out up to --steps (optimizer state restarts)" })
    .option("force", { type: "boolean", default: false, describe: "overwrite a head already in --out" });
}

function checkArgs(a: TrainDraftArgs): void {
  const bad = (flag: string, v: unknown, want: string) => {
    throw new FlagError(flag, v, want);
  };
  const int = (flag: string, v: number, min: number) => {
    if (!Number.isSafeInteger(v) || v < min) bad(flag, v, `an integer >= ${min}`);
  };
  int("steps", a.steps, 1);
  int("warmup", a.warmup, 0);
  int("batch", a.batch, 1);
  int("max-len", a.maxLen, 2);
  if (a.window !== undefined) int("window", a.window, 2);
  int("gen-seqs", a.genSeqs, 2);
  int("eval-every", a.evalEvery, 0);
  int("save-every", a.saveEvery, 0);
  int("log-every", a.logEvery, 1);
  if (!Number.isSafeInteger(a.seed) || a.seed < 0 || a.seed >= 2 ** 31) bad("seed", a.seed, "an integer in [0, 2^31)");
  if (!(a.lr > 0 && Number.isFinite(a.lr))) bad("lr", a.lr, "a number > 0");
  if (!(a.noise >= 0 && Number.isFinite(a.noise))) bad("noise", a.noise, "a number >= 0");
  if (!(a.gradClip >= 0 && Number.isFinite(a.gradClip))) bad("grad-clip", a.gradClip, "a number >= 0");
  if (!(a.validFrac > 0 && a.validFrac < 1)) bad("valid-frac", a.validFrac, "in (0, 1)");
  if (a.genTemp.length === 0) bad("gen-temp", "", "one or more numbers > 0");
  for (const t of a.genTemp) if (!(t > 0 && Number.isFinite(t))) bad("gen-temp", t, "a number > 0");
}

export async function runTrainDraft(a: TrainDraftArgs, command: string[]): Promise<void> {
  checkArgs(a);
  applyThreads(a.threads);
  const result = await trainDraft({ ...a, window: a.window ?? a.maxLen, placement: resolvePlacement(a.device, a.dtype), command });
  if (result.interrupted) process.exit(130);
}
