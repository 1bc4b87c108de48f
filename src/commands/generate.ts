// generate — one prompt in, streamed text out on stdout, timing stats on stderr.
import type { Argv } from "yargs";
import { acceptanceStats, decode, type DecodeStats, type StopReason } from "../decoding/decode.ts";
import { EagleError, FlagError } from "../util/errors.ts";
import { loadModel, resolvePlacement } from "../model/loader.ts";
import { makeProposer, type ResolvedSpec, resolveSpec, type SpecConfig, treeDepth } from "../decoding/spec-mode.ts";
import { expectedSpeedup } from "../decoding/proposer.ts";
import { applyThreads, helpFirst, type RuntimeArgs, runtimeFlags, type SpecArgs, specFlags, stopFlag, stopStrings } from "./common.ts";
import { DEFAULT_MODEL_DIR } from "../util/paths.ts";
import { TextTokenizer } from "../model/tokenizer.ts";
import { readTextFile } from "../util/files.ts";
import { readStdin, writeOut } from "../util/io.ts";
import { Interrupt } from "../util/interrupt.ts";
import { resolveSeed } from "../util/rng.ts";
import { StopStrings, withStopStrings } from "../util/stop-strings.ts";

export interface GenerateArgs extends RuntimeArgs, SpecArgs {
  model: string;
  prompt?: string;
  file?: string;
  n: number;
  temp: number;
  topK: number;
  topP: number;
  seed: number;
  stop?: string[];
  ignoreEos: boolean;
  stats: boolean;
}

export function generateFlags<T>(y: Argv<T>) {
  const own = helpFirst(y, ["model", "prompt", "file"])
    .option("model", { alias: "m", type: "string", default: DEFAULT_MODEL_DIR, describe: "model directory (Hugging Face layout)", defaultDescription: "models/stories260K" })
    .option("prompt", { alias: "p", type: "string", describe: "prompt text; read from stdin when piped and not given" })
    .option("file", { alias: "f", type: "string", describe: "read the prompt from this file (less one trailing newline)" })
    .option("n", { alias: ["n-predict", "max-tokens"], type: "number", default: 256, describe: "tokens to generate at most" })
    .option("temp", { type: "number", default: 0.8, describe: "temperature; 0 = greedy" })
    .option("top-k", { type: "number", default: 40, describe: "keep the k most likely tokens; 0 = off" })
    .option("top-p", { type: "number", default: 0.95, describe: "keep the smallest set with this much mass; 1 = off" })
    .option("seed", { type: "number", default: -1, describe: "random seed; -1 = pick one (printed after the statistics)" });
  return specFlags(runtimeFlags(stopFlag(own)
    .option("ignore-eos", { type: "boolean", default: false, describe: "keep generating past end-of-sequence tokens" })
    .option("stats", { type: "boolean", default: true, describe: "print timing statistics to stderr" })));
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

/** The prompt: -p, -f FILE, or stdin when piped; a file or stdin loses one trailing newline (the one `echo` adds). */
async function readPrompt(a: GenerateArgs): Promise<string> {
  if (a.prompt !== undefined && a.file !== undefined) throw new EagleError("-p and -f: give the prompt one way, not both", 2);
  if (a.file !== undefined) return dropTrailingNewline(readTextFile(a.file, "prompt file"));
  if (a.prompt !== undefined) return a.prompt;
  return process.stdin.isTTY ? "" : dropTrailingNewline(await readStdin());
}

function dropTrailingNewline(text: string): string {
  return text.replace(/\r?\n$/, "");
}

export async function runGenerate(a: GenerateArgs): Promise<void> {
  checkSamplingFlags(a);
  applyThreads(a.threads);
  const stops = new StopStrings(stopStrings(a.stop));
  const prompt = await readPrompt(a);
  const loaded = loadModel(a.model, resolvePlacement(a.device, a.dtype, a.model));
  let spec: ResolvedSpec | null = null;
  using interrupt = new Interrupt();
  try {
    spec = resolveSpec(a, a.model, loaded);
    const tokenizer = TextTokenizer.load(a.model);
    const ids = tokenizer.encode(prompt);
    const seed = resolveSeed(a.seed);
    const run = decode(loaded, ids, {
      maxNewTokens: a.n,
      sampling: { temperature: a.temp, topK: a.topK, topP: a.topP },
      seed,
      stopIds: a.ignoreEos ? [] : tokenizer.eosIds,
      stop: () => interrupt.requested || stops.stopped, // Ctrl-C, or a stop string in the text
    }, makeProposer(spec.config, spec.head));
    const stream = tokenizer.streamDecoder(ids);
    let step = run.next();
    while (!step.done) {
      await writeOut(stops.push(stream.push(step.value)));
      await interrupt.poll();
      step = run.next();
    }
    await writeOut(`${stops.finish(stream.flush())}\n`);
    const reason = withStopStrings(step.value.stopReason, stops);
    if (a.stats) {
      // decode's statistics name decode's reasons; a stop string is this command's own
      process.stderr.write(formatStats({ ...step.value, stopReason: reason as StopReason }, spec.config));
      if (a.seed === -1) process.stderr.write(`seed ${seed}\n`);
    }
    if (reason === "interrupted") process.exitCode = 130;
  } finally {
    spec?.head?.model.dispose();
    loaded.model.dispose();
  }
}

/** The statistics lines: speed, then with speculation the field's figures, one per position a tree of
 * the mode can reach (zeros where none did), so runs of a mode always print as many. */
export function formatStats(s: DecodeStats, spec: SpecConfig): string {
  const rate = (n: number, ms: number) => (ms > 0 ? ((n * 1000) / ms).toFixed(1) : "-");
  const mode = spec.mode;
  let line = `prompt: ${s.promptTokens} tokens in ${s.promptMs.toFixed(1)} ms (${rate(s.promptTokens, s.promptMs)} tok/s) | ` +
    `decode: ${s.newTokens} tokens in ${s.decodeMs.toFixed(1)} ms (${rate(s.newTokens, s.decodeMs)} tok/s) | stop: ${s.stopReason}\n`;
  if (mode === "none") return line;
  const a = acceptanceStats(s);
  const perPosition = Array.from({ length: treeDepth(spec) }, (_, d) => (a.perPositionAcceptanceRate[d] ?? 0).toFixed(2)).join(" ");
  line += `${mode}: tau ${a.meanAcceptanceLength.toFixed(2)} tokens/step over ${s.targetForwards} steps (mean acceptance length) | ` +
    `acceptance per position ${perPosition || "-"} (draft acceptance ${a.draftAcceptanceRate.toFixed(2)}) | ` +
    `draft ${s.draftMs.toFixed(1)} ms, verify ${s.verifyMs.toFixed(1)} ms\n`;
  const t = s.treeNodes;
  if (s.predicted && s.targetForwards > 0) {
    line += `${mode}: trees of ${(t.total / s.targetForwards).toFixed(1)} nodes (${t.min}-${t.max}); its cost model expected ` +
      `${((s.predicted.tokens * 1e6) / s.predicted.us).toFixed(1)} tok/s for them, ${expectedSpeedup(s.predicted).toFixed(2)}x plain decoding\n`;
  }
  return line;
}
