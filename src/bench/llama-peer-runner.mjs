// llama-peer-runner.mjs — run by Node.js (node-llama-cpp is a Node addon), spawned by llama-peer.ts.
// Reads one job as JSON on stdin, decodes greedily through llama.cpp, and writes one JSON result as the
// last line of stdout. Per prompt: a fresh sequence state, the prompt's ids as given, `newTokens` greedy
// tokens with end-of-sequence ignored, the decode's wall time as JavaScript sees it (first generated token
// to the last, the prefill excluded, as eagle's bench measures), and llama.cpp's own perf counters, read
// from the lines llama_perf_context_print logs (which also resets them).
//
// job: { peerDir, gguf, threads, contextSize, kvCacheType, prompts: number[][], newTokens, warmupTokens }
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const PERF_PROMPT = /prompt eval time =\s*([\d.]+) ms \/\s*(\d+) tokens/;
const PERF_EVAL = /:\s+eval time =\s*([\d.]+) ms \/\s*(\d+) runs/;

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

// the counters since the last print (or context creation); printing resets them
async function takeCounters(context, logs) {
  logs.length = 0;
  await context.printTimings();
  await new Promise((r) => setImmediate(r)); // in case a log line is delivered late
  const text = logs.join("\n");
  const p = PERF_PROMPT.exec(text);
  const e = PERF_EVAL.exec(text);
  if (!p || !e) throw new Error(`no llama_perf_context_print timings in the log: ${JSON.stringify(text.slice(0, 300))}`);
  return { promptEvalMs: Number(p[1]), promptEvalTokens: Number(p[2]), evalMs: Number(e[1]), evalTokens: Number(e[2]) };
}

async function decodeOne(sequence, prompt, newTokens) {
  await sequence.clearHistory();
  const tokens = [];
  let first = 0;
  let last = 0;
  const t0 = performance.now();
  for await (const token of sequence.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
    last = performance.now();
    if (tokens.length === 0) first = last;
    tokens.push(token);
    if (tokens.length >= newTokens) break;
  }
  if (tokens.length !== newTokens) throw new Error(`llama.cpp stopped after ${tokens.length} of ${newTokens} tokens`);
  return { tokens, promptMs: first - t0, decodeMs: last - first };
}

async function main() {
  const job = await readStdin();
  const entry = pathToFileURL(join(job.peerDir, "node_modules", "node-llama-cpp", "dist", "index.js")).href;
  const { getLlama, LlamaLogLevel } = await import(entry);
  const logs = [];
  const llama = await getLlama({
    build: "never", gpu: false, skipDownload: true, progressLogs: false, maxThreads: job.threads,
    logLevel: LlamaLogLevel.info, logger: (_level, message) => logs.push(message),
  });
  const model = await llama.loadModel({ modelPath: job.gguf, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: job.contextSize, sequences: 1, threads: { ideal: job.threads, min: job.threads },
    flashAttention: false, performanceTracking: true,
    experimentalKvCacheKeyType: job.kvCacheType, experimentalKvCacheValueType: job.kvCacheType,
  });
  const sequence = context.getSequence();
  await decodeOne(sequence, job.prompts[0], job.warmupTokens); // warm-up, not reported
  const results = [];
  for (const prompt of job.prompts) {
    await takeCounters(context, logs); // reset
    const run = await decodeOne(sequence, prompt, job.newTokens);
    results.push({ ...run, counters: await takeCounters(context, logs) });
  }
  const report = {
    ok: true, llamaCppRelease: llama.llamaCppRelease.release, buildType: llama.buildType, gpu: llama.gpu, threads: context.currentThreads,
    contextSize: context.contextSize, results,
  };
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  process.stdout.write(`\n${JSON.stringify(report)}\n`);
}

main().catch((err) => {
  process.stdout.write(`\n${JSON.stringify({ ok: false, error: String(err?.message ?? err).split("\n")[0] })}\n`);
  process.exit(1);
});
