// eagle grow: stories260K and its shipped head made larger compute the same function (each map alone and
// all together, on prompts, tree-masked batches and after compaction); the grown head proposes what the
// original proposes; EAGLE on the grown pair is lossless and accepts as the small pair does.
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { growModel } from "../src/convert/grow.ts";
import { decode, meanAcceptance } from "../src/decoding/decode.ts";
import { makeProposer } from "../src/decoding/spec-mode.ts";
import { loadDraft, type LoadedDraft } from "../src/model/draft.ts";
import { GROW_SHAPES, type GrowFactors, grownShape } from "../src/model/grow.ts";
import { type LoadedModel, loadModel } from "../src/model/loader.ts";
import { makeTempDir } from "../src/model/random-model.ts";
import { draftForward, forward, KvCache, StepOutput } from "../src/native/engine.ts";
import { DEFAULT_MODEL_DIR } from "../src/util/paths.ts";
import { testSpec } from "./support/costs.ts";
import { TEST_PLACEMENT } from "./support/device.ts";

const root = makeTempDir("eagle-grow-");
const opened: { dispose(): void }[] = [];
afterAll(() => {
  for (const m of opened) m.dispose();
  rmSync(root, { recursive: true, force: true });
});

const HEAD_DIR = `${DEFAULT_MODEL_DIR}-eagle`;
const STORIES = { width: 1, headCopies: 1, kvHeads: 4, headDimScale: 1, mlpCopies: 1, layers: 5 };
const PROMPT = Int32Array.of(1, 403, 407, 261, 378, 20, 30, 40, 9);

interface Pair { target: LoadedModel; head: LoadedDraft }

function open(dir: string, headDir: string): Pair {
  const target = loadModel(dir, TEST_PLACEMENT);
  const head = loadDraft(headDir, target);
  opened.push(head.model, target.model);
  return { target, head };
}

function grow(name: string, f: Partial<GrowFactors>): Pair {
  const out = join(root, name);
  growModel({ model: DEFAULT_MODEL_DIR, draft: HEAD_DIR, out, factors: { ...STORIES, ...f }, shapeName: null, dtype: "F32", force: false });
  return open(out, `${out}-eagle`);
}

const original = open(DEFAULT_MODEL_DIR, HEAD_DIR);

/** Logits of a prompt, then of a tree batch on top of it, then after keeping one path. */
function trace(m: LoadedModel): Float32Array[] {
  const kv = KvCache.create(m.model, 64);
  const out = StepOutput.create();
  const rows: Float32Array[] = [];
  const read = (n: number) => {
    for (let r = 0; r < n; r++) rows.push(out.logitsRow(r, new Float32Array(m.config.vocabSize)));
  };
  forward(m.model, kv, { tokens: PROMPT, positions: Int32Array.from(PROMPT, (_, i) => i) }, out);
  read(PROMPT.length);
  // node: parent: 0 root, 1: 0, 2: 0, 3: 1
  const mask = Uint8Array.of(1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1);
  const base = PROMPT.length;
  forward(m.model, kv, { tokens: Int32Array.of(50, 60, 70, 80), positions: Int32Array.of(base, base + 1, base + 1, base + 2), mask }, out);
  read(4);
  kv.keep(base, Int32Array.of(base, base + 1, base + 3));
  forward(m.model, kv, { tokens: Int32Array.of(90), positions: Int32Array.of(base + 3) }, out);
  read(1);
  out.dispose();
  kv.dispose();
  return rows;
}

// f32 sums over `width` times more terms round differently: the tolerance scales with the logits' size
function expectClose(a: Float32Array[], b: Float32Array[]): void {
  expect(b.length).toBe(a.length);
  let scale = 1;
  for (const r of a) for (const v of r) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  a.forEach((r, i) => r.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - b[i][j])))));
  expect(worst).toBeLessThan(1e-4 * scale);
}

const reference = trace(original.target);

describe("each map alone, and all together, computes stories260K's logits", () => {
  const cases: [string, Partial<GrowFactors>][] = [
    ["wider residual", { width: 3 }],
    ["more query and key/value heads", { headCopies: 2, kvHeads: 8 }],
    ["grouped-query copies", { headCopies: 4, kvHeads: 8 }],
    ["larger head_dim", { headDimScale: 4 }],
    ["wider MLP", { mlpCopies: 3 }],
    ["identity blocks", { layers: 8 }],
    ["all together", { width: 2, headCopies: 2, kvHeads: 8, headDimScale: 2, mlpCopies: 2, layers: 7 }],
  ];
  for (const [name, f] of cases) {
    test(name, () => {
      const grown = grow(name.replace(/\W+/g, "-"), f);
      expectClose(reference, trace(grown.target));
    });
  }
});

/** The head's top-4 guesses for the prompt's last entry, after the draft reads the prompt's features. */
function headGuesses(p: Pair): { ids: number[]; logits: Float32Array } {
  const [kv, dkv, feats, out] = [KvCache.create(p.target.model, 32), KvCache.create(p.head.model, 32), StepOutput.create(), StepOutput.create()];
  const positions = Int32Array.from(PROMPT, (_, i) => i);
  forward(p.target.model, kv, { tokens: PROMPT, positions }, feats);
  const next = Int32Array.from(PROMPT, (_, i) => PROMPT[i + 1] ?? 5);
  draftForward(p.head.model, dkv, { tokens: next, positions }, feats, positions, out);
  const last = Int32Array.of(PROMPT.length - 1);
  const result = { ids: Array.from(out.topk(4, last).ids), logits: out.logitsRow(PROMPT.length - 1, new Float32Array(p.target.config.vocabSize)) };
  for (const h of [kv, dkv, feats, out]) h.dispose();
  return result;
}

function run(p: Pair, spec: ReturnType<typeof testSpec> | null): { tokens: number[]; tau: number } {
  const gen = decode(p.target, Array.from(PROMPT), { maxNewTokens: 64, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stopIds: [] },
    spec ? makeProposer(spec, p.head) : undefined);
  const tokens: number[] = [];
  let step = gen.next();
  for (; !step.done; step = gen.next()) tokens.push(step.value);
  return { tokens, tau: meanAcceptance(step.value) };
}

test("the grown head proposes what the shipped head proposes, and EAGLE on the grown pair is lossless", () => {
  const grown = grow("pair", { width: 2, headCopies: 2, kvHeads: 8, headDimScale: 2, mlpCopies: 2, layers: 7 });
  const a = headGuesses(original);
  const b = headGuesses(grown);
  expect(b.ids).toEqual(a.ids);
  expectClose([a.logits], [b.logits]);
  const plain = run(grown, null);
  for (const mode of ["eagle1", "eagle2", "auto"] as const) {
    const small = run(original, testSpec(mode));
    const big = run(grown, testSpec(mode));
    expect(big.tokens).toEqual(plain.tokens);
    expect(Math.abs(big.tau - small.tau)).toBeLessThan(0.25); // the same guesses, up to rounding near ties
    expect(big.tau).toBeGreaterThan(2);
  }
});

test("named shapes: stories260K grows into Llama-2-7B's shapes and a ~140M CPU shape", () => {
  const stories = { hidden: 64, intermediate: 172, layers: 5, heads: 8, kvHeads: 4, headDim: 8, vocab: 512 };
  expect(grownShape(stories, GROW_SHAPES["llama2-7b"])).toEqual({ hidden: 4096, intermediate: 11008, layers: 32, heads: 32, kvHeads: 32, headDim: 128, vocab: 512 });
  expect(grownShape(stories, GROW_SHAPES["stories-140m"])).toEqual({ hidden: 1024, intermediate: 2752, layers: 12, heads: 16, kvHeads: 8, headDim: 64, vocab: 512 });
});

test("bad factors and an occupied output are refused in one line", () => {
  const bad = (f: Partial<GrowFactors>, out = join(root, "bad")) =>
    () => growModel({ model: DEFAULT_MODEL_DIR, draft: null, out, factors: { ...STORIES, ...f }, shapeName: null, dtype: "F32", force: false });
  expect(bad({ kvHeads: 6 })).toThrow(/--kv-heads 6: must be a multiple of 4/);
  expect(bad({ headCopies: 1, kvHeads: 16 })).toThrow(/--kv-heads 16/);
  expect(bad({ width: 0 })).toThrow(/--width 0: must be an integer/);
  expect(bad({ layers: 3 })).toThrow(/--layers 3: must be an integer in \[5, 1024\]/);
  expect(bad({ width: 2 }, join(root, "pair"))).toThrow(/not empty \(pass --force to overwrite\)/);
});
