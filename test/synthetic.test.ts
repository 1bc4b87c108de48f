// synthetic models (random weights made in the shim) and bench-device, on CPU: weights are deterministic
// in the seed, target and head run through the decode loop, bench-device reports sane numbers and refuses
// a shape that does not fit in memory before allocating anything.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { decode } from "../src/decoding/decode.ts";
import { memoryNeeds } from "../src/bench/device-memory.ts";
import { checkFits, cpuFreeMemory } from "../src/native/memory.ts";
import { eagle1Tree, eagle2Tree } from "../src/bench/device-bench.ts";
import { copyBandwidth, cudaAvailable, DeviceCode, deviceSync, draftForward, forward, KvCache, StepOutput } from "../src/native/engine.ts";
import { EagleError } from "../src/util/errors.ts";
import { type LoadedModel, loadModel } from "../src/model/loader.ts";
import { DEFAULT_MODEL_DIR, REPO_ROOT } from "../src/util/paths.ts";
import { rmSync } from "node:fs";
import { makeTempDir } from "../src/model/random-model.ts";
import { loadConfig } from "../src/model/config.ts";
import { loadDraft } from "../src/model/draft.ts";
import { measuredTau } from "../src/commands/bench-device.ts";
import { makeProposer, specConfig } from "../src/decoding/spec-mode.ts";
import { buildSynthetic, buildSyntheticDraft, parameterCount, parseShapes, syntheticShape } from "../src/model/synthetic.ts";
import { checkTree } from "../src/decoding/tree.ts";

const tiny = syntheticShape("tiny");
const cpu = { device: "cpu", dtype: "f32" } as const;
const PROMPT = [1, 17, 300, 42, 9, 511];
const models: LoadedModel[] = [];
afterAll(() => models.forEach((m) => m.model.dispose()));

function build(seed: number): LoadedModel {
  const m = buildSynthetic(tiny, cpu, seed);
  models.push(m);
  return m;
}

/** Logits of the last prompt row, as float32. */
function lastLogits(m: LoadedModel): Float32Array {
  const kv = KvCache.create(m.model, 32);
  const out = StepOutput.create();
  try {
    forward(m.model, kv, { tokens: Int32Array.from(PROMPT), positions: Int32Array.from(PROMPT, (_, i) => i) }, out);
    return out.logitsRow(PROMPT.length - 1, new Float32Array(m.config.vocabSize));
  } finally {
    out.dispose();
    kv.dispose();
  }
}

describe("random weights in the shim", () => {
  test("a finished model with finite logits, its size as counted", () => {
    const m = build(5);
    const logits = lastLogits(m);
    expect(logits.every(Number.isFinite)).toBe(true);
    expect(Math.max(...logits) - Math.min(...logits)).toBeGreaterThan(0);
    expect(m.model.weightBytes()).toBe(4 * parameterCount(tiny.config, false));
  });

  test("the same seed gives the same weights, another seed others", () => {
    const [a, b, c] = [lastLogits(build(5)), lastLogits(build(5)), lastLogits(build(6))];
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
  });

  test("a draft head shares the target's embedding and LM head and runs", () => {
    const target = build(5);
    const head = buildSyntheticDraft(target, 7);
    try {
      expect(head.model.weightBytes()).toBe(4 * parameterCount(tiny.config, true) + 2 * 4 * 4096 * 256);
      const [kv, feats, out] = [KvCache.create(head.model, 16), StepOutput.create(), StepOutput.create()];
      const tkv = KvCache.create(target.model, 16);
      forward(target.model, tkv, { tokens: Int32Array.of(1, 5, 9), positions: Int32Array.of(0, 1, 2) }, feats);
      draftForward(head.model, kv, { tokens: Int32Array.of(5, 9, 11), positions: Int32Array.of(0, 1, 2) }, feats, Int32Array.of(0, 1, 2), out);
      expect(out.logitsRow(2, new Float32Array(4096)).every(Number.isFinite)).toBe(true);
      for (const h of [tkv, out, feats, kv]) h.dispose();
    } finally {
      head.model.dispose();
    }
  });

  test("EAGLE-2 on a synthetic target and head is lossless against plain decoding", () => {
    const target = build(5);
    const head = buildSyntheticDraft(target, 7);
    const run = (mode: "none" | "eagle2") => {
      const gen = decode(target, PROMPT, { maxNewTokens: 12, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 1, stopIds: [] },
        makeProposer(specConfig(mode, {}), head));
      const tokens: number[] = [];
      for (let s = gen.next(); !s.done; s = gen.next()) tokens.push(s.value);
      return tokens;
    };
    try {
      expect(run("eagle2")).toEqual(run("none"));
    } finally {
      head.model.dispose();
    }
  });

  test("bad arguments are errors", () => {
    const m = build(5);
    expect(() => m.model.initRandom(1, 0)).toThrow(/std must be/);
    expect(() => m.model.initRandom(-1, 0.02)).toThrow(EagleError);
    expect(() => copyBandwidth(DeviceCode.CPU, 0, 1000, 1)).toThrow(/copy size/);
    expect(() => copyBandwidth(DeviceCode.CPU, 0, 2 ** 20, 0)).toThrow(/iterations/);
    expect(() => deviceSync(7 as DeviceCode)).toThrow(/unknown device/);
    if (!cudaAvailable()) expect(() => deviceSync(DeviceCode.CUDA)).toThrow(/CUDA is not available/);
  });
});

describe("device measurements", () => {
  test("copy bandwidth is a positive finite number; sync on CPU is a no-op", () => {
    const bw = copyBandwidth(DeviceCode.CPU, 0, 2 ** 24, 3);
    expect(Number.isFinite(bw) && bw > 1e8).toBe(true);
    deviceSync(DeviceCode.CPU);
  });

  test("the verified trees: EAGLE-1's 26 nodes, an EAGLE-2-shaped 60", () => {
    const [t26, t60] = [eagle1Tree(4096), eagle2Tree(60, 4096)];
    checkTree(t26);
    checkTree(t60);
    expect([t26.tokens.length, t60.tokens.length]).toEqual([26, 60]);
    expect(Math.max(...t60.depth)).toBeGreaterThan(3);
  });

  test("shape lists: repeated and comma-separated; unknown names refused", () => {
    expect(parseShapes(["tiny,llama2-7b", "llama3-8b"]).map((s) => s.name)).toEqual(["tiny", "llama2-7b", "llama3-8b"]);
    expect(() => parseShapes(["llama-70b"])).toThrow(/unknown/);
    // Llama-2-7B: 6.74B parameters, Llama-3-8B: 8.03B
    expect(parameterCount(syntheticShape("llama2-7b").config, false) / 1e9).toBeCloseTo(6.74, 2);
    expect(parameterCount(syntheticShape("llama3-8b").config, false) / 1e9).toBeCloseTo(8.03, 2);
  });
});

function cli(args: string[]) {
  const p = Bun.spawnSync([process.execPath, join(REPO_ROOT, "src/cli.ts"), ...args], { env: { ...process.env, NO_COLOR: "1" } });
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

describe("eagle bench-device", () => {
  test("tiny on CPU: JSON with positive times, ratios and a derived speedup", () => {
    const r = cli(["bench-device", "--shape", "tiny", "--device", "cpu", "--json", "--iters", "3", "--warmup", "1", "--context", "128"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.copy_bandwidth_bytes_per_s).toBeGreaterThan(0);
    const s = report.shapes[0];
    expect(s.shape).toBe("tiny");
    expect(s.decode.ms).toBeGreaterThan(0);
    expect(s.decode.fraction_of_limit).toBeGreaterThan(0);
    expect(s.decode.tokens_per_s).toBeCloseTo(1000 / s.decode.ms, 6);
    expect(s.verify.map((v: { nodes: number }) => v.nodes)).toEqual([26, 60]);
    expect(s.draft.map((d: { width: number }) => d.width)).toEqual([1, 10]);
    for (const x of [...s.verify, ...s.draft]) expect(x.ms > 0 && x.ratio > 0).toBe(true);
    expect(s.derived.label).toBe("derived");
    expect(s.derived.tau).toBe(4.46);
    expect(s.derived.speedup).toBeGreaterThan(0);
    expect(s.targets).toHaveLength(3);
    expect(s.bytes_per_token.total).toBe(s.bytes_per_token.weights + s.bytes_per_token.kv);
  });

  test("-m: a model directory and its head (a grown stories260K pair), with τ measured on the pair", () => {
    const root = makeTempDir("eagle-bd-");
    try {
      const grown = join(root, "grown");
      expect(cli(["grow", "-m", DEFAULT_MODEL_DIR, "--out", grown, "--layers", "6"]).code).toBe(0);
      const r = cli(["bench-device", "-m", grown, "--device", "cpu", "--json", "--iters", "2", "--warmup", "1", "--context", "64"]);
      expect(r.code).toBe(0);
      const s = JSON.parse(r.stdout).shapes[0];
      expect(s.shape).toBe("grown");
      expect(s.params).toBe(parameterCount(loadConfig(grown), false));
      expect(s.derived.tau_source).toMatch(/^measured: EAGLE-2 greedy with this head, 4 bench prompts x 64 tokens$/);
      // the grown pair predicts what the shipped pair predicts: the same τ, up to rounding at near ties
      const small = loadModel(DEFAULT_MODEL_DIR, cpu);
      const head = loadDraft(`${DEFAULT_MODEL_DIR}-eagle`, small);
      const expected = measuredTau(small, head).tau;
      head.model.dispose();
      small.model.dispose();
      expect(expected).toBeGreaterThan(2);
      expect(Math.abs(s.derived.tau - expected)).toBeLessThan(0.25);
      // a given --tau still wins; a folder without a head, and -m with --shape, are refused
      const given = cli(["bench-device", "-m", grown, "--device", "cpu", "--json", "--iters", "1", "--warmup", "0", "--context", "32", "--tau", "3"]);
      expect(JSON.parse(given.stdout).shapes[0].derived).toMatchObject({ tau: 3, tau_source: "--tau" });
      const bare = join(root, "bare");
      expect(cli(["grow", "-m", DEFAULT_MODEL_DIR, "--out", bare, "--layers", "6"]).code).toBe(0);
      rmSync(`${bare}-eagle`, { recursive: true });
      const none = cli(["bench-device", "-m", bare, "--device", "cpu"]);
      expect(none.code).toBe(2);
      expect(none.stderr.split("\n")[0]).toMatch(/^eagle: -m .*bare: no draft head \(give --draft DIR, or put one at .*bare-eagle\)$/);
      expect(cli(["bench-device", "-m", grown, "--shape", "tiny"]).stderr).toMatch(/give --shape or -m, not both/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  // refused up front only where it does not fit (on a machine with more than ~34 GB free it would run)
  const needs = memoryNeeds(syntheticShape("llama3-8b").config, "f32", 512 + 60);
  const free = cpuFreeMemory();
  const total = needs.reduce((n, x) => n + x.bytes, 0);
  test.skipIf(!free || free.bytes >= total)("llama3-8b in f32 on CPU is refused up front, with both numbers", () => {
    expect(() => checkFits("x", "cpu", needs, "")).toThrow(EagleError);
    const t0 = performance.now();
    const r = cli(["bench-device", "--shape", "llama3-8b", "--device", "cpu", "--dtype", "f32"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/--shape llama3-8b: needs \d+\.\d GiB on cpu \(weights in f32 .* \+ caches .* \+ activations .*\) but only \d+\.\d GiB is free \(MemAvailable/);
    expect(performance.now() - t0).toBeLessThan(5000); // nothing was allocated
  });
});
