// What a target forward of n new tokens costs at a fixed context, through the shim as the decode loop calls
// it (forward + argmax of every row, a chain mask, the cache rolled back after each): the best of R runs for
// each n, after the context is prefilled once. With ET_LIB=OTHER/libet.so two shims can be compared, run after
// run. usage: bun scripts/forward-cost.ts [-m MODEL] [--context 64] [--sizes 1,2,4,8,16,26,60] [--runs 400]
//             [-t THREADS]
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { loadModel, resolvePlacement } from "../src/model/loader.ts";
import { forward, KvCache, setThreads, StepOutput } from "../src/native/engine.ts";
import { benchModelDir } from "../src/bench/workload.ts";
import { chainTree, treeMask } from "../src/decoding/tree.ts";

const a = yargs(hideBin(process.argv)).strict()
  .option("model", { alias: "m", type: "string", default: "models/stories260K" })
  .option("context", { type: "number", default: 64, describe: "cached tokens before each forward" })
  .option("sizes", { type: "string", default: "1,2,4,8,16,26,60", describe: "new tokens per forward, comma-separated" })
  .option("runs", { type: "number", default: 400, describe: "timed forwards per size (the best one counts)" })
  .option("threads", { alias: "t", type: "number" })
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

const row: string[] = [];
for (const n of sizes) {
  const chain = chainTree(Array.from(ids(n, n)));
  const batch = { tokens: chain.tokens, positions: chain.depth.map((d) => a.context + d), mask: treeMask(chain) };
  let best = Infinity;
  for (let r = 0; r < a.runs; r++) {
    const t = performance.now();
    forward(m.model, kv, batch, out);
    out.argmax();
    best = Math.min(best, performance.now() - t);
    kv.truncate(a.context);
  }
  row.push(`${n}: ${(best * 1000).toFixed(1)} us`);
}
console.log(`${dir} at context ${a.context} (${process.env.ET_LIB ?? "build/libet.so"}): ${row.join(", ")}`);
out.dispose();
kv.dispose();
m.model.dispose();
