// self-consistency of the test-only reference forward, and its agreement with llama2.c on stories260K
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { EagleError } from "../src/util/errors.ts";
import { argmax } from "../src/decoding/sampling.ts";
import { decodePieces, readLlama2cPieces } from "./support/llama2c-reader.ts";
import { RANDOM_SPECS, makeTempDir, writeRandomModel } from "../src/model/random-model.ts";
import { RefCache, forward, loadRefLlama2c, loadRefModel, ropeInvFreq, type RefModel } from "./support/reference.ts";
import { SHARED_STORIES } from "./support/paths.ts";

const STORIES = SHARED_STORIES;
const PROMPT = [1, 37, 400, 12, 299, 5, 88, 141];
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

let root = "";
const models = new Map<string, RefModel>();

beforeAll(() => {
  root = makeTempDir("eagle-ref-");
  for (const spec of RANDOM_SPECS) {
    const dir = join(root, spec.name);
    mkdirSync(dir);
    writeRandomModel(dir, spec, 1234);
    models.set(spec.name, loadRefModel(dir));
  }
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

function run(m: RefModel, tokens: number[], mask: boolean[][] | null = null) {
  const cache = new RefCache(m.config.layers);
  return { cache, out: forward(m, cache, tokens, range(0, tokens.length), mask) };
}

function greedy(m: RefModel, first: number, steps: number): number[] {
  const cache = new RefCache(m.config.layers);
  const tokens = [first];
  for (let pos = 0; pos < steps; pos++) tokens.push(argmax(forward(m, cache, [tokens[pos]], [pos], null).logits[0]));
  return tokens.slice(1);
}

describe.each(RANDOM_SPECS.map((s) => s.name))("random model %s", (name) => {
  test("whole prompt equals token-by-token with the cache", () => {
    const m = models.get(name)!;
    const whole = run(m, PROMPT).out;
    const cache = new RefCache(m.config.layers);
    PROMPT.forEach((t, pos) => {
      const step = forward(m, cache, [t], [pos], null);
      expect(step.logits[0]).toEqual(whole.logits[pos]);
      expect(step.hidden[0]).toEqual(whole.hidden[pos]);
    });
    expect(cache.length).toBe(PROMPT.length);
  });

  test("a chain mask equals the causal mask", () => {
    const m = models.get(name)!;
    const chain = PROMPT.map((_, t) => PROMPT.map((_, j) => j <= t));
    expect(run(m, PROMPT, chain).out.logits).toEqual(run(m, PROMPT).out.logits);
  });

  test("a tree batch then keep() equals a fresh forward over the kept path", () => {
    const m = models.get(name)!;
    const prefix = PROMPT.slice(0, 5);
    const { cache } = run(m, prefix);
    const base = prefix.length;
    // tree: node 0 (token 7, depth 0), node 1 (token 9, parent 0), node 2 (token 11, parent 0), node 3 (token 13, parent 2)
    const tokens = [7, 9, 11, 13];
    const positions = [base, base + 1, base + 1, base + 2];
    const T = true, F = false;
    const mask = [[T, F, F, F], [T, T, F, F], [T, F, T, F], [T, F, T, T]];
    const tree = forward(m, cache, tokens, positions, mask);
    // path 0 -> 2 -> 3 seen fresh: same logits at each node
    const fresh = run(m, [...prefix, 7, 11, 13, 21]).out;
    expect(tree.logits[0]).toEqual(fresh.logits[base]);
    expect(tree.logits[2]).toEqual(fresh.logits[base + 1]);
    expect(tree.logits[3]).toEqual(fresh.logits[base + 2]);
    cache.keep(base, [base, base + 2, base + 3]);
    expect(cache.length).toBe(base + 3);
    const next = forward(m, cache, [21], [base + 3], null);
    expect(next.logits[0]).toEqual(fresh.logits[base + 3]);
  });

  test("truncate then re-forward reproduces the logits", () => {
    const m = models.get(name)!;
    const { cache, out } = run(m, PROMPT);
    cache.truncate(3);
    const again = forward(m, cache, PROMPT.slice(3), range(3, PROMPT.length - 3), null);
    expect(again.logits).toEqual(out.logits.slice(3));
  });

  test("greedy output moves around", () => {
    const tokens = greedy(models.get(name)!, 1, 24);
    expect(new Set(tokens).size).toBeGreaterThanOrEqual(6);
  });
});

describe("loading", () => {
  test("config features reach the reference", () => {
    const headdim = models.get("llama3-headdim")!;
    expect(headdim.config.headDim).toBe(16);
    expect(headdim.config.hiddenSize).toBe(48);
    expect(models.get("qwen2-bias")!.layers[0].bq).toBeDefined();
    expect(models.get("llama-mha")!.layers[0].bq).toBeUndefined();
    const tied = models.get("llama-gqa-tied")!;
    expect(tied.lmHead).toBe(tied.embed);
    expect(models.get("llama-mha")!.lmHead).not.toBe(models.get("llama-mha")!.embed);
  });

  test("rope inverse frequencies: plain, linear, llama3", () => {
    // d = 8, theta 10000: 1, 0.1, 0.01, 0.001 (wavelengths 6.3, 63, 628, 6283)
    const base = [1, 0.1, 0.01, 0.001];
    const close = (got: Float64Array, want: number[]) => want.forEach((w, i) => expect(got[i]).toBeCloseTo(w, 12));
    close(ropeInvFreq(8, 10000, null), base);
    close(ropeInvFreq(8, 10000, { type: "linear", factor: 4 }), base.map((f) => f / 4));
    // llama3, original 1024: wavelengths under 1024/4 kept, over 1024/1 divided by 8,
    // 628 blends with smooth = (1024/628.3 - 1) / 3 = 0.20992
    const llama3 = { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 1024 };
    close(ropeInvFreq(8, 10000, llama3), [1, 0.1, 0.003086760967011275, 0.000125]);
    expect(() => ropeInvFreq(8, 10000, { rope_type: "yarn", factor: 2 })).toThrow(EagleError);
  });
});

describe("stories260K (llama2.c checkpoint)", () => {
  const model = loadRefLlama2c(join(STORIES, "stories260K.bin"));

  test("greedy from BOS tells the known story", () => {
    const start = performance.now();
    const tokens = greedy(model, 1, 200);
    const seconds = (performance.now() - start) / 1000;
    const text = decodePieces(readLlama2cPieces(join(STORIES, "tok512.bin")), tokens);
    expect(text.startsWith("Once upon a time, there was a little girl named Lily. She loved to play outside in the park.")).toBe(true);
    expect(seconds).toBeLessThan(10);
  });

  test("rotate-half rope with per-head permuted q/k rows equals adjacent-pair rope", () => {
    // adjacent pair (2i, 2i+1) becomes half pair (i, i + d/2): row 2i -> i, row 2i+1 -> i + d/2
    const c = model.config, d = c.headDim, H = c.hiddenSize;
    const permute = (w: Float32Array) => {
      const out = new Float32Array(w.length);
      for (let h = 0; h < w.length / (d * H); h++)
        for (let r = 0; r < d; r++) {
          const to = h * d + (r % 2 === 0 ? r / 2 : d / 2 + (r - 1) / 2);
          out.set(w.subarray((h * d + r) * H, (h * d + r + 1) * H), to * H);
        }
      return out;
    };
    const half: RefModel = {
      ...model,
      config: { ...c, ropeStyle: "half" },
      layers: model.layers.map((l) => ({ ...l, wq: permute(l.wq), wk: permute(l.wk) })),
    };
    const a = run(model, PROMPT).out.logits, b = run(half, PROMPT).out.logits;
    const worst = Math.max(...a.map((row, t) => Math.max(...row.map((x, i) => Math.abs(x - b[t][i])))));
    expect(worst).toBeLessThan(1e-4);
  });
});
