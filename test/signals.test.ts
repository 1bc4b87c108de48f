// Ctrl-C: generate stops after the current token with its text flushed and its statistics printed (exit
// 130); batch keeps the results it finished (on stdout, or in --output, which is then written) and drops
// the item it was in the middle of. (Training's Ctrl-C checkpoint is tested in train.test.ts, EPIPE in
// cli.test.ts and batch.test.ts.)
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_MODEL_DIR } from "../src/util/paths.ts";
import { makeTempDir, RANDOM_SPECS, writeRandomModel } from "../src/model/random-model.ts";

const CLI = join(import.meta.dir, "..", "src", "cli.ts");
const root = makeTempDir("eagle-sig-");
const model = join(root, "long");

beforeAll(() => {
  // a context long enough that a run cannot finish before it is interrupted
  mkdirSync(model);
  writeRandomModel(model, { ...RANDOM_SPECS[0], maxPositions: 1_000_000 }, 2);
  copyFileSync(join(DEFAULT_MODEL_DIR, "tokenizer.json"), join(model, "tokenizer.json"));
  // no end-of-sequence token: a run goes on until it is stopped
  const { eos_token: _, ...config } = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, "tokenizer_config.json"), "utf8"));
  writeFileSync(join(model, "tokenizer_config.json"), JSON.stringify(config));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function spawn(args: string[], stdin?: string) {
  return Bun.spawn([process.execPath, CLI, ...args], { stdin: stdin === undefined ? "ignore" : new Blob([stdin]), stdout: "pipe", stderr: "pipe" });
}

async function readUntil(stream: ReadableStream<Uint8Array>, done: (text: string) => boolean): Promise<{ text: string; rest: () => Promise<string> }> {
  const reader = stream.getReader();
  let text = "";
  while (!done(text)) {
    const { value, done: end } = await reader.read();
    if (end) break;
    text += new TextDecoder().decode(value);
  }
  const rest = async () => {
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) return text;
      text += new TextDecoder().decode(value);
    }
  };
  return { text, rest };
}

async function waitFor(cond: () => boolean, what: string, ms = 60000): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

describe("Ctrl-C", () => {
  test("generate: stops within a moment, flushes its text, prints its stats, exits 130", async () => {
    const p = spawn(["generate", "-m", model, "-p", "Once upon a time", "-n", "20000", "--temp", "0.8", "--seed", "1"]);
    const out = await readUntil(p.stdout, (t) => t.length > 200);
    p.kill("SIGINT");
    const t0 = performance.now();
    const code = await p.exited;
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(code).toBe(130);
    const stdout = await out.rest();
    const stderr = await new Response(p.stderr).text();
    expect(stdout.endsWith("\n")).toBe(true);
    expect(stderr).toMatch(/decode: \d+ tokens .* stop: interrupted/);
    expect(stderr).not.toMatch(/error|at .*\.ts:\d+/i);
  });

  test("batch to stdout: the finished lines are out, the summary says where it stopped", async () => {
    const prompts = Array.from({ length: 50 }, (_, i) => `Tom said ${i}`).join("\n");
    // two at a time, long ones: the first lines come out long before the run could end by itself (as wide
    // as the default may be on a fast machine, all 50 would finish together)
    const p = spawn(["batch", "-m", model, "-n", "2000", "--temp", "0", "--parallel", "2"], prompts);
    const out = await readUntil(p.stdout, (t) => t.split("\n").length > 2);
    p.kill("SIGINT");
    expect(await p.exited).toBe(130);
    const lines = (await out.rest()).trim().split("\n");
    const stderr = await new Response(p.stderr).text();
    expect(stderr).toMatch(new RegExp(`batch: interrupted after ${lines.length} of 50 items \\(${lines.length} ok, 0 failed\\)`));
    for (const line of lines) expect(JSON.parse(line).finish_reason).toBe("length");
  });

  test("batch --output: the file is written with the finished results", async () => {
    const dir = join(root, "out");
    mkdirSync(dir);
    const file = join(dir, "results.jsonl");
    const prompts = Array.from({ length: 50 }, (_, i) => JSON.stringify({ id: `p${i}`, prompt: `Lily saw ${i}` })).join("\n");
    const p = spawn(["batch", "-m", model, "-n", "2000", "--temp", "0", "--parallel", "2", "-o", file], prompts);
    // the results go to a temporary file beside the output until the run ends: wait for two there
    const tmp = () => readdirSync(dir).find((f) => f.startsWith("results.jsonl.tmp-"));
    await waitFor(() => tmp() !== undefined && readFileSync(join(dir, tmp()!), "utf8").split("\n").length > 2, "two results");
    p.kill("SIGINT");
    expect(await p.exited).toBe(130);
    const stderr = await new Response(p.stderr).text();
    expect(existsSync(file)).toBe(true);
    expect(readdirSync(dir)).toEqual(["results.jsonl"]);
    const lines = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.map((l) => l.id)).toEqual(lines.map((_, i) => `p${i}`));
    expect(stderr).toMatch(new RegExp(`interrupted after ${lines.length} of 50 items .*results are in ${file.replace(/[.]/g, "\\.")}`));
  });

  test("a second Ctrl-C quits at once", async () => {
    const p = spawn(["generate", "-m", model, "-p", "Once", "-n", "20000", "--temp", "0"]);
    await readUntil(p.stdout, (t) => t.length > 50);
    p.kill("SIGINT");
    p.kill("SIGINT");
    expect(await p.exited).toBe(130);
  });
});

describe("standard output that fails", () => {
  const sh = (cmd: string) => {
    const p = Bun.spawnSync(["bash", "-c", cmd], { stdout: "pipe", stderr: "pipe" });
    return { code: p.exitCode, stderr: p.stderr.toString() };
  };
  const eagle = `'${process.execPath}' '${CLI}'`;

  test("a closed pipe ends generate quietly with exit 0", () => {
    const r = sh(`${eagle} generate -m '${model}' -p Once -n 20000 --temp 0 | head -c 10 >/dev/null; exit \${PIPESTATUS[0]}`);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/EPIPE|error/i);
  });

  test("a full device is one line and exit 1, for every command that writes to stdout", () => {
    for (const args of [`generate -p Once -n 5`, `info`, `bench -n 2 --json --spec none`]) {
      const r = sh(`${eagle} ${args} >/dev/full`);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^eagle: cannot write to standard output: ENOSPC/m);
      expect(r.stderr).not.toMatch(/at .*\.ts:\d+|internal error/);
    }
  });
});
