// generate — one prompt in, streamed text out on stdout, timing stats on stderr.
import type { Argv } from "yargs";
import { decode, type DecodeStats, meanAcceptance } from "../decoding/decode.ts";
import { FlagError } from "../util/errors.ts";
import { loadModel, resolvePlacement } from "../model/loader.ts";
import { makeProposer, type ResolvedSpec, resolveSpec, type SpecMode } from "../decoding/spec-mode.ts";
import { applyThreads, type RuntimeArgs, runtimeFlags, type SpecArgs, specFlags } from "./common.ts";
import { DEFAULT_MODEL_DIR } from "../util/paths.ts";
import { TextTokenizer } from "../model/tokenizer.ts";
import { readStdin, writeOut } from "../util/io.ts";
import { Interrupt } from "../util/interrupt.ts";
import { resolveSeed } from "../util/rng.ts";

export interface GenerateArgs extends RuntimeArgs, SpecArgs {
  model: string;
  prompt?: string;
  n: number;
  temp: number;
  topK: number;
  topP: number;
  seed: number;
  stats: boolean;
}

export function generateFlags<T>(y: Argv<T>) {
  return specFlags(runtimeFlags(y))
    .option("model", { alias: "m", type: "string", default: DEFAULT_MODEL_DIR, describe: "model directory (Hugging Face layout)", defaultDescription: "models/stories260K" })
    .option("prompt", { alias: "p", type: "string", describe: "prompt text; read from stdin when piped and not given" })
    .option("n", { alias: ["n-predict", "max-tokens"], type: "number", default: 256, describe: "tokens to generate at most" })
    .option("temp", { type: "number", default: 0.8, describe: "temperature; 0 = greedy" })
    .option("top-k", { type: "number", default: 40, describe: "keep the k most likely tokens; 0 = off" })
    .option("top-p", { type: "number", default: 0.95, describe: "keep the smallest set with this much mass; 1 = off" })
    .option("seed", { type: "number", default: -1, describe: "random seed; -1 = pick one" })
    .option("stats", { type: "boolean", default: true, describe: "print timing statistics to stderr" });
}

/** Every command that samples checks these the same way; -n 0 is refused, as chat's /set max 0 is. */
export function checkSamplingFlags(a: { n: number; temp: number; topK: number; topP: number; seed: number }): void {
  const bad = (flag: string, v: number, want: string) => {
    throw new FlagError(flag, v, want);
  };
  if (!Number.isInteger(a.n) || a.n < 1) bad("n", a.n, "an integer >= 1");
  if (!(a.temp >= 0) || !Number.isFinite(a.temp)) bad("temp", a.temp, "a number >= 0");
  if (!Number.isInteger(a.topK) || a.topK < 0) bad("top-k", a.topK, "an integer >= 0");
  if (!(a.topP > 0 && a.topP <= 1)) bad("top-p", a.topP, "in (0, 1]");
  if (!Number.isInteger(a.seed) || a.seed < -1) bad("seed", a.seed, "an integer >= -1");
}

export async function runGenerate(a: GenerateArgs): Promise<void> {
  checkSamplingFlags(a);
  applyThreads(a.threads);
  const prompt = a.prompt ?? (process.stdin.isTTY ? "" : await readStdin());
  const loaded = loadModel(a.model, resolvePlacement(a.device, a.dtype));
  let spec: ResolvedSpec | null = null;
  using interrupt = new Interrupt();
  try {
    spec = resolveSpec(a, a.model, loaded);
    const tokenizer = TextTokenizer.load(a.model);
    const ids = tokenizer.encode(prompt);
    const run = decode(loaded, ids, {
      maxNewTokens: a.n,
      sampling: { temperature: a.temp, topK: a.topK, topP: a.topP },
      seed: resolveSeed(a.seed),
      stopIds: tokenizer.eosIds,
      stop: () => interrupt.requested,
    }, makeProposer(spec.config, spec.head));
    const stream = tokenizer.streamDecoder(ids);
    let step = run.next();
    while (!step.done) {
      await writeOut(stream.push(step.value));
      await interrupt.poll();
      step = run.next();
    }
    await writeOut(`${stream.flush()}\n`);
    if (a.stats) process.stderr.write(formatStats(step.value, spec.config.mode));
    if (step.value.stopReason === "interrupted") process.exitCode = 130;
  } finally {
    spec?.head?.model.dispose();
    loaded.model.dispose();
  }
}

export function formatStats(s: DecodeStats, mode: SpecMode): string {
  const rate = (n: number, ms: number) => (ms > 0 ? ((n * 1000) / ms).toFixed(1) : "-");
  let line = `prompt: ${s.promptTokens} tokens in ${s.promptMs.toFixed(1)} ms (${rate(s.promptTokens, s.promptMs)} tok/s) | ` +
    `decode: ${s.newTokens} tokens in ${s.decodeMs.toFixed(1)} ms (${rate(s.newTokens, s.decodeMs)} tok/s) | stop: ${s.stopReason}\n`;
  if (mode !== "none") {
    const byDepth = s.proposedByDepth.map((p, d) => `${((s.acceptedByDepth[d] ?? 0) / p).toFixed(2)}`).join(" ");
    line += `${mode}: tau ${meanAcceptance(s).toFixed(2)} tokens/step over ${s.targetForwards} steps | ` +
      `acceptance by depth ${byDepth} | draft ${s.draftMs.toFixed(1)} ms, verify ${s.verifyMs.toFixed(1)} ms\n`;
    const t = s.treeNodes;
    if (s.predicted && s.targetForwards > 0) {
      line += `${mode}: trees of ${(t.total / s.targetForwards).toFixed(1)} nodes (${t.min}-${t.max}); its cost model expected ` +
        `${((s.predicted.tokens * 1e6) / s.predicted.us).toFixed(1)} tok/s for them\n`;
    }
  }
  return line;
}
