// What one sampled token costs the host: sampleToken (decoding's draw) against sampleFrom over
// targetDistribution's dense row (the law it keeps), on a fixed pseudo-random logits row of each vocabulary
// size, the two run in turn; the mean of R draws after a warm-up.
// usage: bun scripts/sampling-cost.ts [--vocab 512,32000,128256] [--runs 400]
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { sampleFrom, type SamplingParams, sampleToken, targetDistribution } from "../src/decoding/sampling.ts";

const a = yargs(hideBin(process.argv)).strict()
  .option("vocab", { type: "string", default: "512,32000,128256", describe: "vocabulary sizes, comma-separated" })
  .option("runs", { type: "number", default: 1000, describe: "timed draws per size and setting" })
  .parseSync();

const SETTINGS: [string, SamplingParams][] = [
  ["T 1, unfiltered", { temperature: 1, topK: 0, topP: 1 }],
  ["the CLI's defaults (T 0.8, top-k 40, top-p 0.95)", { temperature: 0.8, topK: 40, topP: 0.95 }],
];

function meanUs(draw: (u: number) => number, runs: number): number {
  for (let r = 0; r < 1000; r++) draw(r / 1000); // the JIT warmed up
  const t0 = performance.now();
  for (let r = 0; r < runs; r++) draw((r % 97) / 97);
  return ((performance.now() - t0) * 1000) / runs;
}

for (const vocab of a.vocab.split(",").map(Number)) {
  const logits = Float32Array.from({ length: vocab }, (_, i) => Math.sin(i * 12.9898) * 8);
  for (const [name, p] of SETTINGS) {
    const dense = meanUs((u) => sampleFrom(targetDistribution(logits, p), u), a.runs);
    const token = meanUs((u) => sampleToken(logits, p, u), a.runs);
    console.log(`vocab ${vocab}, ${name}: dense row ${dense.toFixed(1)} us, sampleToken ${token.toFixed(1)} us`);
  }
}
