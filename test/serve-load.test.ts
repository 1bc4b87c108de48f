// `eagle serve` under load on the loopback interface: 32 clients at once, 20 requests each (greedy and
// seeded sampling, whole and streamed), through the continuous-batching scheduler with speculation on.
// Every answer is complete; every greedy one is `eagle generate`'s text; every sampled one is what the
// same request gets alone on an idle server; the server stays up and exits 0.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { answerKey, ask, loadPlan, type LoadRequest, runLoad } from "../src/bench/serve-load.ts";
import { startServe, type ServeProcess } from "../src/bench/serve-process.ts";
import { REPO_ROOT } from "../src/util/paths.ts";

const CLI = join(REPO_ROOT, "src/cli.ts");
const ENV = { ...process.env, NO_COLOR: "1" };
const PROMPTS = readFileSync(join(REPO_ROOT, "test/prompts/stories.txt"), "utf8").split("\n").filter((l) => l !== "");
const MAX_TOKENS = 24;

let server: ServeProcess;
beforeAll(async () => {
  server = await startServe(["-t", "1", "--spec", "eagle2", "--parallel", "16"], ENV);
});
afterAll(() => {
  if (server.proc.exitCode === null) server.proc.kill("SIGKILL");
});

function generateGreedy(prompt: string, n: number): string {
  const p = Bun.spawnSync([process.execPath, CLI, "generate", "-t", "1", "-p", prompt, "-n", String(n), "--temp", "0", "--no-stats"], { env: ENV });
  expect(p.exitCode).toBe(0);
  return p.stdout.toString().replace(/\n$/, "");
}

test("32 clients x 20 requests: all complete, greedy = generate, sampled = alone; the server stays up", async () => {
  const plan = loadPlan(PROMPTS, 32, 20, MAX_TOKENS);
  const requests = plan.flat();
  expect(requests.length).toBe(640);
  // the references: greedy from `generate`, sampled from the same request alone on the idle server
  const expected = new Map<string, string>();
  for (const r of requests) {
    const key = answerKey(r);
    if (expected.has(key)) continue;
    const alone: LoadRequest = { ...r, stream: false };
    expected.set(key, r.temperature === 0 ? generateGreedy(r.prompt, MAX_TOKENS) : (await ask(server.base, alone)).text);
  }
  expect([...expected.keys()].length).toBe(PROMPTS.length * 3); // each prompt greedy and with two seeds

  const load = await runLoad(server.base, plan);
  expect(load.answers.length).toBe(640);
  load.answers.forEach((a, i) => {
    expect(a.request).toBe(requests[i]);
    expect(a.text).toBe(expected.get(answerKey(a.request))!);
  });
  expect(load.answers.filter((a) => a.request.stream).length).toBe(320);

  const metrics = await (await fetch(`${server.base}/metrics`)).text();
  expect(metrics).toContain("eagle_requests_in_flight 0");
  expect(metrics).toContain("eagle_queue_length 0");
  const counter = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(metrics)![1]);
  expect(counter("eagle_target_forward_requests_total")).toBeGreaterThanOrEqual(counter("eagle_target_forwards_total"));
  expect(counter("eagle_target_forwards_total")).toBeGreaterThan(0);
  expect(counter("eagle_draft_forward_requests_total")).toBeGreaterThanOrEqual(counter("eagle_draft_forwards_total"));
  expect(await server.stop()).toBe(0);
  expect(server.stderr()).not.toContain("internal error");
});
