// bench's losslessness check: in float32 greedy outputs of every method are identical; in bf16 each first
// difference from plain decoding is located and measured (the gap between the two tokens under a fresh
// target forward), and only a near tie passes.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { decode } from "../src/decoding/decode.ts";
import { explainDivergence, firstDifference } from "../src/bench/divergence.ts";
import { formatPeer } from "../src/bench/bench-report.ts";
import { forward, KvCache, StepOutput } from "../src/native/engine.ts";
import { loadModel } from "../src/model/loader.ts";
import { DEFAULT_MODEL_DIR } from "../src/util/paths.ts";
import { makeProposer, specConfig } from "../src/decoding/spec-mode.ts";
import { TextTokenizer } from "../src/model/tokenizer.ts";
import { TEST_PLACEMENT } from "./support/device.ts";

const CLI = join(import.meta.dir, "..", "src", "cli.ts");

function bench(args: string[]) {
  const p = Bun.spawnSync([process.execPath, CLI, "bench", "--json", ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, report: p.exitCode === 0 || p.stdout.length > 0 ? JSON.parse(p.stdout.toString()) : null, stderr: p.stderr.toString() };
}

describe("bench's greedy identity check", () => {
  test("float32: identical, no divergences", () => {
    const r = bench(["-n", "24", "--methods", "none", "eagle2"]);
    expect(r.code).toBe(0);
    expect(r.report.identical_outputs).toBe(true);
    expect(r.report.divergences).toEqual([]);
  });

  test("sampled: every method but eagle1 (whose children are drawn) writes plain sampling's text for the same seeds", () => {
    const r = bench(["-n", "24", "--temp", "0.8", "--methods", "none", "eagle1", "eagle2", "auto"]);
    expect(r.code).toBe(0);
    expect(r.report.identical_methods).toEqual(["none", "eagle2", "auto"]);
    expect(r.report.identical_outputs).toBe(true);
    expect(r.report.methods.find((m: { name: string }) => m.name === "eagle2").mean_acceptance_length).toBeGreaterThan(1.5); // real trees
    const p = Bun.spawnSync([process.execPath, CLI, "bench", "-n", "8", "--temp", "1", "--methods", "none", "eagle2"], { stdout: "pipe", stderr: "pipe" });
    expect(p.stdout.toString()).toContain("sampled outputs identical across none, eagle2 (the same seeds): yes");
  });

  test("one method: no speedup without plain decoding and no identity claim", () => {
    const p = Bun.spawnSync([process.execPath, CLI, "bench", "-n", "8", "--methods", "eagle2"], { stdout: "pipe", stderr: "pipe" });
    expect(p.exitCode).toBe(0);
    const text = p.stdout.toString();
    expect(text).toMatch(/^eagle2 +[\d.]+ +- +[\d.]+/m);
    expect(text).not.toContain("NaN");
    expect(text).not.toContain("identical");
    expect(bench(["-n", "8", "--methods", "none"]).report.identical_outputs).toBeNull();
  });

  test("bf16: every first difference is located and is a near tie", () => {
    const r = bench(["-n", "64", "--dtype", "bf16", "--methods", "none", "eagle2"]);
    expect(r.code).toBe(0);
    for (const d of r.report.divergences) {
      expect(d.method).toBe("eagle2");
      expect(d.at).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(d.gap)).toBe(true);
      expect(d.near_tie).toBe(true);
    }
  });
});

describe("explainDivergence", () => {
  const m = loadModel(DEFAULT_MODEL_DIR, TEST_PLACEMENT);
  afterAll(() => m.model.dispose());
  const prompt = TextTokenizer.load(DEFAULT_MODEL_DIR).encode("Once upon a time");
  const plain = [...decode(m, prompt, { maxNewTokens: 20, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 1, stopIds: [] },
    makeProposer(specConfig("none", {}), null))];

  test("first differences", () => {
    expect(firstDifference([1, 2, 3], [1, 2, 3])).toBe(-1);
    expect(firstDifference([1, 2, 3], [1, 5, 3])).toBe(1);
    expect(firstDifference([1, 2], [1, 2, 3])).toBe(2);
  });

  test("a swap to the runner-up measures the top-2 gap; a swap to an unlikely token is no near tie", () => {
    const at = 7;
    const kv = KvCache.create(m.model, 64);
    const out = StepOutput.create();
    const context = [...prompt, ...plain.slice(0, at)];
    forward(m.model, kv, { tokens: Int32Array.from(context), positions: Int32Array.from(context, (_, i) => i) }, out);
    const top = out.topk(m.config.vocabSize, Int32Array.of(context.length - 1));
    kv.dispose();
    out.dispose();
    expect(top.ids[0]).toBe(plain[at]);
    const swapped = (token: number) => [...plain.slice(0, at), token, ...plain.slice(at + 1)];
    const runnerUp = explainDivergence(m, "x", 0, prompt, plain, swapped(top.ids[1]))!;
    expect(runnerUp).toMatchObject({ method: "x", prompt: 0, at, plain_token: plain[at], method_token: top.ids[1] });
    expect(runnerUp.gap).toBeCloseTo(top.logp[0] - top.logp[1], 4);
    const last = top.ids[top.ids.length - 1];
    const unlikely = explainDivergence(m, "x", 0, prompt, plain, swapped(last))!;
    expect(unlikely.gap).toBeGreaterThan(1);
    expect(unlikely.near_tie).toBe(false);
    expect(explainDivergence(m, "x", 0, prompt, plain, plain)).toBeNull();
  });
});

test("the llama.cpp peer's lines name its weights; in bf16 a difference is named as rounding, in f32 as a failure", () => {
  const base = {
    name: "llama.cpp" as const, release: "b1", version: "3.22.1", threads: 1, tokens_per_s: 30, engine_tokens_per_s: 31,
    plain_over_peer: 1.5, identical_to_plain: false,
    first_difference: { method: "llama.cpp", prompt: 0, at: 13, plain_token: 1, method_token: 2, gap: 0.117, near_tie: false },
  };
  const bf16 = formatPeer({ ...base, weights: "BF16" }).join("\n");
  expect(bf16).toContain("1 thread, BF16, flash attention off");
  expect(bf16).toContain("greedy tokens identical to eagle's plain decoding: they differ from prompt 0, new token 13 (bf16 rounding, gap 0.117 nats)");
  const f32 = formatPeer({ ...base, weights: "F32" }).join("\n");
  expect(f32).toContain("1 thread, F32, flash attention off");
  expect(f32).toContain("greedy tokens identical to eagle's plain decoding: NO (prompt 0, new token 13)");
  expect(formatPeer({ ...base, weights: "F32", identical_to_plain: true, first_difference: null }).join("\n")).toContain("decoding: yes");
});
