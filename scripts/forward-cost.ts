// What a target forward of n new tokens costs at a fixed context, through the shim as the decode loop calls
// it (forward + argmax of every row, a chain mask, the cache rolled back after each): the best of R runs for
// each n, after the context is prefilled once. With --batch B, each n is instead B sequences of one token (each
// its own cache, prefilled to the context) in one batched forward with their argmaxes, as the batch decoder
// steps them. With ET_LIB=OTHER/libet.so two shims can be compared, run after run.
// usage: bun scripts/forward-cost.ts [-m MODEL] [--context 64] [--sizes 1,2,4,8,16,26,60] [--runs 400]
//        [-t THREADS] [--batch]
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { loadModel, resolvePlacement } from "../src/model/loader.ts";
import { forward, KvCache, setThreads, StepOutput } from "../src/native/engine.ts";
import { benchModelDir } from "../src/bench/workload.ts";
import { chainTree, treeMask } from "../src/decoding/tree.ts";
import { forwardBatch } from "../src/native/batch-forward.ts";

const a = yargs(hideBin(process.argv)).strict()
  .option("model", { alias: "m", type: "string", default: "models/stories260K" })
  .option("context", { type: "number", default: 64, describe: "cached tokens before each forward" })
  .option("sizes", { type: "string", default: "1,2,4,8,16,26,60", describe: "new tokens per forward, comma-separated" })
  .option("runs", { type: "number", default: 400, describe: "timed forwards per size (the best one counts)" })
  .option("threads", { alias: "t", type: "number" })
  .option("batch", { type: "boolean", default: false, describe: "sizes are sequences of one token each, batched" })
  .parseSync();

if (a.threads !== undefined) setThreads(a.threads);
const dir = benchModelDir(a.model);
const m = loadModel(dir, resolvePlacement(undefined, undefined, dir));
const sizes = a.sizes.split(",").map(Number);
const kv = KvCache.create(m.model, a.context + Math.max(...sizes));
const out = StepOutput.create();
const vocab = m.config.vocabSize;
const ids = (n: number, salt: number) => Int32Array.from({ length: n }, (_, i) => 3 + ((i * 7919 + salt) % (vocab - 3)));
forward(m.model, kv, { tokens: ids(a.context, 1), positions: Int32Array.from({ length: a.context }, (_, i) => i) }, out);

// the best of the runs of `step`, in milliseconds, each followed by `reset` (untimed)
function best(step: () => void, reset: () => void): number {
  let least = Infinity;
  for (let r = 0; r < a.runs; r++) {
    const t = performance.now();
    step();
    least = Math.min(least, performance.now() - t);
    reset();
  }
  return least;
}

// a chain of n new tokens in one forward, with the argmax of every row
function chainCost(n: number): string {
  const chain = chainTree(Array.from(ids(n, n)));
  const batch = { tokens: chain.tokens, positions: chain.depth.map((d) => a.context + d), mask: treeMask(chain) };
  const ms = best(() => (forward(m.model, kv, batch, out), out.argmax()), () => kv.truncate(a.context));
  return `${n}: ${(ms * 1000).toFixed(1)} us`;
}

// --batch: n sequences, one token each, in one batched forward (every row's argmax read with it)
function batchCost(n: number): string {
  const seqs = Array.from({ length: n }, (_, b) => {
    const seqKv = KvCache.create(m.model, a.context + 1);
    forward(m.model, seqKv, { tokens: ids(a.context, b + 2), positions: Int32Array.from({ length: a.context }, (_, i) => i) }, out);
    return { kv: seqKv, out: StepOutput.create(), batch: { tokens: ids(1, b + 3), positions: Int32Array.of(a.context) }, argmax: new Int32Array(1) };
  });
  const ms = best(() => forwardBatch(m.model, seqs), () => seqs.forEach((s) => s.kv.truncate(a.context)));
  for (const s of seqs) s.kv.dispose(), s.out.dispose();
  return `${n} sequences: ${(ms * 1000).toFixed(1)} us (${((ms * 1000) / n).toFixed(2)} a row)`;
}

const row = sizes.map((n) => (a.batch ? batchCost(n) : chainCost(n)));
console.log(`${dir} at context ${a.context} (${process.env.ET_LIB ?? "build/libet.so"}): ${row.join(", ")}`);
out.dispose();
kv.dispose();
m.model.dispose();
