// batch — many prompts in (stdin or --input, one per line: plain text or JSON), one JSON result line per
// prompt out (stdout or --output), in input order, each written as soon as it is ready. A bad line gets an
// error record and the run goes on; the exit code says whether every line succeeded.
// Three steps: parse items (batch/items.ts) -> run up to --parallel items at once, their draft passes and
// target forwards batched each round (decoding/batch-decode.ts, batch/run-item.ts) -> write results in input
// order (batch/sink.ts).
import { existsSync } from "node:fs";
import type { Argv } from "yargs";
import { type BadLine, type ItemOptions, type ParsedLine, parseItems } from "../batch/items.ts";
import { Progress } from "../batch/progress.ts";
import { PromptBuilder } from "../batch/prompt.ts";
import { type BatchEngine, type BatchResult, isError, itemSequence } from "../batch/run-item.ts";
import { BatchDecoder } from "../decoding/batch-decode.ts";
import { decodesBatches } from "../native/engine.ts";
import { fileOutput, type LineOutput, OrderedWriter, stdoutOutput } from "../batch/sink.ts";
import { EagleError } from "../util/errors.ts";
import { readTextFile } from "../util/files.ts";
import { Interrupt } from "../util/interrupt.ts";
import { readStdin } from "../util/io.ts";
import { loadModel, resolvePlacement } from "../model/loader.ts";
import { DEFAULT_MODEL_DIR, modelName } from "../util/paths.ts";
import { TextTokenizer } from "../model/tokenizer.ts";
import { type ResolvedSpec, resolveSpec } from "../decoding/spec-mode.ts";
import { applyThreads, helpFirst, parallelCount, parallelFlag, parallelFor, type Width, type RuntimeArgs, runtimeFlags, type SpecArgs, specFlags, stopFlag, stopStrings } from "./common.ts";
import { checkSamplingFlags } from "./generate.ts";

export interface BatchArgs extends RuntimeArgs, SpecArgs {
  model: string;
  input?: string;
  output?: string;
  force: boolean;
  n: number;
  temp: number;
  topK: number;
  topP: number;
  seed: number;
  stop?: string[];
  parallel?: number;
}

export function batchFlags<T>(y: Argv<T>) {
  const own = helpFirst(y, ["model", "input", "output"])
    .usage("$0 batch [options] < prompts\n\nEach input line is a prompt, or a JSON object (blank lines are skipped):\n" +
      '  {"prompt": "...", "id": 7, "max_tokens": 64, "temperature": 0, "top_p": 0.9, "top_k": 40, "seed": 1}\n' +
      '  {"messages": [{"role": "user", "content": "..."}]}   (rendered with the model\'s chat template)\n' +
      '  "stop": a string or a list of them; "model", where given, must be the model folder\'s name.\n' +
      "Each output line is {id, text, prompt_tokens, completion_tokens, finish_reason (stop or length), tau,\n" +
      "decode_tokens_per_s, prompt_ms, decode_ms}, or {id, error} for a bad line. Exit code 1 when any line failed.")
    .option("model", { alias: "m", type: "string", default: DEFAULT_MODEL_DIR, describe: "model directory (Hugging Face layout)", defaultDescription: "models/stories260K" })
    .option("input", { alias: "i", type: "string", describe: "prompt file", defaultDescription: "stdin" })
    .option("output", { alias: "o", type: "string", describe: "result file, written when the run completes", defaultDescription: "stdout, line by line" })
    .option("force", { alias: "f", type: "boolean", default: false, describe: "overwrite an existing --output file" })
    .option("n", { alias: ["n-predict", "max-tokens"], type: "number", default: 256, describe: "tokens to generate at most (item: max_tokens)" })
    .option("temp", { type: "number", default: 0.8, describe: "temperature; 0 = greedy (item: temperature)" })
    .option("top-k", { type: "number", default: 40, describe: "keep the k most likely tokens; 0 = off (item: top_k)" })
    .option("top-p", { type: "number", default: 0.95, describe: "keep the smallest set with this much mass; 1 = off (item: top_p)" })
    .option("seed", { type: "number", default: -1, describe: "random seed for every item; -1 = pick one per item (item: seed)" })
  return specFlags(runtimeFlags(stopFlag(parallelFlag(own, "items"))));
}

export async function runBatch(a: BatchArgs): Promise<void> {
  checkSamplingFlags(a);
  const given = parallelCount(a.parallel);
  applyThreads(a.threads);
  decodesBatches(); // without --threads, a small model gets every core too (see autoThreads)
  const defaults: ItemOptions = { maxTokens: a.n, temperature: a.temp, topK: a.topK, topP: a.topP, seed: a.seed, stop: stopStrings(a.stop) };
  const out = a.output !== undefined ? fileOutput(a.output, a.force) : stdoutOutput();
  const items = parseItems(await readInput(a.input), { defaults, model: modelName(a.model) });
  const { engine, width } = loadEngine(a, given);
  const progress = new Progress(items.length);
  // Ctrl-C: the items being generated are dropped, the finished ones are kept (and --output is written)
  using interrupt = new Interrupt(() => progress.message("interrupted: stopping after the results so far (Ctrl-C again quits at once)"));
  let counts: RunCounts | null = null;
  try {
    counts = await runBatched(items, engine, new OrderedWriter(out), progress, interrupt, width.parallel);
    out.close();
  } finally {
    progress.finish();
    if (counts === null) out.abort();
    engine.spec.head?.model.dispose();
    engine.target.model.dispose();
  }
  const rate = `${progress.tokensPerSecond.toFixed(1)} tok/s, ${width.how}`;
  if (counts.interrupted) {
    const where = a.output !== undefined ? `; their results are in ${a.output}` : "";
    process.stderr.write(`batch: interrupted after ${counts.ok + counts.failed} of ${items.length} items ` +
      `(${counts.ok} ok, ${counts.failed} failed)${where}, ${rate}\n`);
    process.exitCode = 130;
    return;
  }
  process.stderr.write(`batch: ${counts.ok} ok, ${counts.failed} failed, ${rate}\n`);
  process.exitCode = counts.failed > 0 ? 1 : 0;
}

async function readInput(path: string | undefined): Promise<string> {
  if (path !== undefined) {
    if (!existsSync(path)) throw new EagleError(`${path}: input file not found`);
    return readTextFile(path, "batch input");
  }
  if (process.stdin.isTTY) throw new EagleError("no input: pipe prompts on stdin or give --input FILE", 2);
  return await readStdin();
}

/** Target, draft head (if any), tokenizer: loaded once for the whole run; and how many items run at once. */
function loadEngine(a: BatchArgs, parallel: number | undefined): { engine: BatchEngine; width: Width } {
  const target = loadModel(a.model, resolvePlacement(a.device, a.dtype, a.model));
  let spec: ResolvedSpec | null = null;
  try {
    spec = resolveSpec(a, a.model, target);
    const tokenizer = TextTokenizer.load(a.model);
    const engine = { target, spec, tokenizer, prompts: PromptBuilder.load(a.model, tokenizer) };
    return { engine, width: parallelFor(parallel, target) };
  } catch (err) {
    spec?.head?.model.dispose();
    target.model.dispose();
    throw err;
  }
}

interface RunCounts {
  ok: number;
  failed: number;
  interrupted: boolean; // Ctrl-C: the items after the counted ones were not run
}

/** The scheduler: up to `parallel` items decode at once; a finished item leaves and the next one joins
 * at once (continuous batching). Results are written in input order as they become ready. */
async function runBatched(items: ParsedLine[], engine: BatchEngine, writer: OrderedWriter, progress: Progress,
  interrupt: Interrupt, parallel: number): Promise<RunCounts> {
  const counts: RunCounts = { ok: 0, failed: 0, interrupted: false };
  const decoder = new BatchDecoder(engine.target);
  const ready = new Map<number, BatchResult>(); // finished this round, to write
  const retry: number[] = []; // items whose caches did not fit beside the running ones: first to start again
  let next = 0;
  while (next < items.length || retry.length > 0 || decoder.size > 0) {
    while (decoder.admits && decoder.size < parallel && (retry.length > 0 || next < items.length)) {
      const slot = retry.shift() ?? next++;
      const item = items[slot];
      if (item.kind === "bad") ready.set(slot, errorRecord(item));
      else {
        const hooks = { onToken: () => progress.token(), sharing: () => decoder.size, onNoMemory: () => retry.unshift(slot) };
        const seq = itemSequence(engine, item, hooks, (r) => ready.set(slot, r));
        if (seq) decoder.add(seq);
      }
    }
    if (decoder.size > 0) decoder.round();
    for (const [slot, result] of ready) {
      if (isError(result)) counts.failed++;
      else counts.ok++;
      progress.itemDone();
      await writer.put(slot, result);
    }
    ready.clear();
    if (await interrupt.poll()) {
      counts.interrupted = true; // the items still decoding are dropped, the ones not started never run
      decoder.cancelAll();
      await writer.flush(); // finished items after a dropped one are kept too, still in input order
      break;
    }
  }
  return counts;
}

function errorRecord(bad: BadLine): BatchResult {
  return { id: bad.id, error: bad.error };
}
