// The serving benchmark: `eagle serve` under a fixed load on loopback (src/bench/serve-load.ts: C clients at
// once, R requests each, a quarter sampled with fixed seeds, half of the clients streaming), for each
// --parallel value, the values interleaved over --repeat rounds. Prints requests/s, tokens/s and latency per
// run, and checks that every request got the same text in every run (batching never changes an answer).
// usage: bun scripts/serve-load.ts [--parallel 1,16] [--clients 32] [--requests 20] [-n 32] [--repeat 2]
//                                  [--spec MODE] [-m MODEL] [-t THREADS]
import { join, resolve } from "node:path";
import { readFileSync } from "node:fs";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { answerKey, loadPlan, runLoad } from "../src/bench/serve-load.ts";
import { startServe } from "../src/bench/serve-process.ts";

const root = resolve(import.meta.dir, "..");
const a = yargs(hideBin(process.argv)).strict()
  .option("parallel", { type: "string", default: "1,16", describe: "serve --parallel values, comma-separated" })
  .option("clients", { type: "number", default: 32 })
  .option("requests", { type: "number", default: 20, describe: "requests per client" })
  .option("n", { type: "number", default: 32, describe: "max_tokens of every request" })
  .option("repeat", { type: "number", default: 2 })
  .option("spec", { type: "string", describe: "serve --spec", defaultDescription: "serve's default" })
  .option("model", { alias: "m", type: "string", describe: "serve --model", defaultDescription: "the shipped model" })
  .option("threads", { alias: "t", type: "number", default: 1 })
  .option("prompts", { type: "string", default: join(root, "test/prompts/stories.txt") })
  .parseSync();

const prompts = readFileSync(a.prompts, "utf8").split("\n").filter((l) => l !== "");
const plan = loadPlan(prompts, a.clients, a.requests, a.n);
const parallels = a.parallel.split(",").map(Number);
const serveArgs = ["-t", String(a.threads), ...(a.spec ? ["--spec", a.spec] : []), ...(a.model ? ["-m", a.model] : [])];
const texts = new Map<string, string>();
let differ = 0;

console.log(`# ${a.clients} clients x ${a.requests} requests, max_tokens ${a.n}, serve ${serveArgs.join(" ")}`);
console.log("parallel\trequests/s\ttokens/s\tlatency p50 ms\tlatency p95 ms\ttokens");
for (let rep = 0; rep < a.repeat; rep++) {
  for (const p of parallels) {
    const server = await startServe([...serveArgs, "--parallel", String(p)], { ...process.env, NO_COLOR: "1" });
    try {
      await runLoad(server.base, [plan[0].slice(0, 2)]); // warm-up: first-request costs out of the timing
      const load = await runLoad(server.base, plan);
      for (const ans of load.answers) {
        const key = answerKey(ans.request);
        if (!texts.has(key)) texts.set(key, ans.text);
        else if (texts.get(key) !== ans.text) differ++;
      }
      const ms = load.answers.map((x) => x.ms).sort((x, y) => x - y);
      const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))].toFixed(0);
      console.log([p, (load.answers.length / load.seconds).toFixed(1), (load.tokens / load.seconds).toFixed(0),
        at(0.5), at(0.95), load.tokens].join("\t"));
    } finally {
      await server.stop();
    }
  }
}
console.log(differ === 0 ? "# every request got the same text in every run" : `# ${differ} answers differed from the first run's`);
process.exitCode = differ === 0 ? 0 : 1;
