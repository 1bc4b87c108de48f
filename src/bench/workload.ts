// workload.ts — bench's fixed workload: the model (a directory, the shipped stories260K, or a random
// 134M-parameter Llama written once to build/) and the prompts as token ids.
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type RandomModelSpec, writeRandomModel } from "../model/random-model.ts";
import { TextTokenizer } from "../model/tokenizer.ts";
import { EagleError } from "../util/errors.ts";
import { readTextFile } from "../util/files.ts";
import { DEFAULT_MODEL_DIR, REPO_ROOT } from "../util/paths.ts";

// ~134M parameters: Llama shapes at GPT-2-small width, 32K vocabulary
export const BENCH_LARGE: RandomModelSpec = {
  name: "random-134m", hiddenSize: 768, intermediateSize: 2048, layers: 12, heads: 12, kvHeads: 12,
  vocabSize: 32000, maxPositions: 2048,
};

/** The directory a --model name stands for; the random model is written on first use. */
export function benchModelDir(name: string): string {
  if (name === "stories260K") return DEFAULT_MODEL_DIR;
  if (name !== BENCH_LARGE.name) return name;
  const dir = join(REPO_ROOT, "build", "bench-models", BENCH_LARGE.name);
  if (!existsSync(join(dir, "config.json"))) {
    process.stderr.write(`bench: writing ${dir} (once)...\n`);
    const tmp = `${dir}.tmp-${process.pid}`;
    mkdirSync(tmp, { recursive: true });
    writeRandomModel(tmp, BENCH_LARGE, 1234);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  }
  return dir;
}

/** Prompts as token ids: text through the model's tokenizer, or fixed ids for a model without one. */
export function promptIds(file: string, dir: string, vocab: number): number[][] {
  if (!existsSync(file)) throw new EagleError(`${file}: prompt file not found`);
  const lines = readTextFile(file, "prompt file").split("\n").filter((l) => l.trim() !== "");
  if (lines.length === 0) throw new EagleError(`${file}: no prompts`);
  if (existsSync(join(dir, "tokenizer.json"))) {
    const tok = TextTokenizer.load(dir);
    return lines.map((l) => tok.encode(l));
  }
  return lines.map((l, p) => [1, ...Array.from({ length: 16 }, (_, i) => 3 + ((p * 7919 + i * 104729) % (vocab - 3)))]);
}
