// train-draft on CPU: training on text a tiny random target generates improves the head; a run is
// reproducible from its seed; the saved head reloads bit for bit, matches the inference forward and decodes
// losslessly; bad input is refused with one clear error; Ctrl-C saves a checkpoint that --resume continues.
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decode, type DecodeOptions } from "../src/decoding/decode.ts";
import { loadDraft } from "../src/model/draft.ts";
import { draftForward, forward, KvCache, setThreads, StepOutput } from "../src/native/engine.ts";
import { loadModel, type LoadedModel } from "../src/model/loader.ts";
import { DEFAULT_MODEL_DIR, REPO_ROOT } from "../src/util/paths.ts";
import { makeTempDir, type RandomModelSpec, writeRandomModel } from "../src/model/random-model.ts";
import { makeProposer, type SpecMode, specConfig } from "../src/decoding/spec-mode.ts";
import { corpusTexts, generatedSequences, splitSequences } from "../src/train/data.ts";
import { loadHeadParams } from "../src/train/head-io.ts";
import { learningRate } from "../src/train/loop.ts";
import { type TrainDraftOptions, type TrainDraftResult, trainDraft } from "../src/train/run.ts";
import { HeadTrainer } from "../src/train/trainer.ts";
import { TEST_PLACEMENT } from "./support/device.ts";

const root = makeTempDir("eagle-train-");
afterAll(() => rmSync(root, { recursive: true, force: true }));
setThreads(2);

// layerScale 0.5: context matters, but not so much that a 1-layer head cannot follow
const SPEC: RandomModelSpec = { name: "train-tiny", hiddenSize: 64, intermediateSize: 128, layers: 2, heads: 4, kvHeads: 2, vocabSize: 512, maxPositions: 128, layerScale: 0.5 };
const TARGET = join(root, "target");
mkdirSync(TARGET);
writeRandomModel(TARGET, SPEC, 7);
for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(DEFAULT_MODEL_DIR, f), join(TARGET, f)); // same vocab

const quiet = { write: () => {}, tty: false };

function options(out: string, o: Partial<TrainDraftOptions> = {}): TrainDraftOptions {
  return {
    target: TARGET, out, steps: 200, warmup: 20, lr: 3e-3, batch: 8, maxLen: 64, window: 64, noise: 0.1, gradClip: 1, seed: 3,
    evalEvery: 0, saveEvery: 0, logEvery: 1000, validFrac: 0.1, genSeqs: 48, genTemp: [1], fcBias: true, resume: false,
    force: false, placement: TEST_PLACEMENT, command: ["train-draft", "(test)"], sink: quiet, ...o,
  };
}

const OUT = join(root, "head");
const trained: TrainDraftResult = await trainDraft(options(OUT));
const before = JSON.parse(readFileSync(join(OUT, "training.json"), "utf8"));

describe("a short run on a tiny random target", () => {
  test("lowers validation loss by >= 25% and raises accuracy by >= 0.15", async () => {
    const untrained = await trainDraft(options(join(root, "untrained"), { steps: 1, lr: 1e-9, warmup: 0 }));
    expect(trained.valid.loss).toBeLessThan(0.75 * untrained.valid.loss);
    expect(trained.valid.acc).toBeGreaterThan(untrained.valid.acc + 0.15);
    expect(before.validation.accuracy).toBeCloseTo(trained.valid.acc, 6);
    expect(before.completed_steps).toBe(200);
  });

  test("the same seed gives bit-identical weights", async () => {
    const again = join(root, "again");
    await trainDraft(options(again));
    expect(Buffer.compare(readFileSync(join(again, "model.safetensors")), readFileSync(join(OUT, "model.safetensors")))).toBe(0);
  });

  test("the saved head reloads bit for bit", () => {
    const target = loadModel(TARGET, TEST_PLACEMENT);
    const a = HeadTrainer.create(target, { ...target.config, nLayers: 1 }, true, 99);
    const b = HeadTrainer.create(target, { ...target.config, nLayers: 1 }, true, 100);
    loadHeadParams(OUT, a);
    for (const p of a.params) b.setParam(p.name, a.getParam(p.name));
    for (const p of a.params) expect(Buffer.from(b.getParam(p.name).buffer)).toEqual(Buffer.from(a.getParam(p.name).buffer));
    a.dispose();
    b.dispose();
    target.model.dispose();
  });
});

/** Top-1 agreement of the loaded head with the target, teacher-forced through the inference forward. */
function inferenceAccuracy(target: LoadedModel, headDir: string, seqs: number[][]): number {
  const head = loadDraft(headDir, target);
  let [hits, total] = [0, 0];
  for (const seq of seqs) {
    const n = seq.length;
    const [kv, dkv, out, dout] = [KvCache.create(target.model, n), KvCache.create(head.model, n), StepOutput.create(), StepOutput.create()];
    forward(target.model, kv, { tokens: Int32Array.from(seq), positions: Int32Array.from(seq, (_, i) => i) }, out);
    const rows = Int32Array.from({ length: n - 1 }, (_, i) => i);
    draftForward(head.model, dkv, { tokens: Int32Array.from(seq.slice(1)), positions: rows }, out, rows, dout);
    const want = out.argmax(Int32Array.from({ length: n - 1 }, (_, i) => i + 1));
    dout.argmax().forEach((id, i) => (hits += id === want[i] ? 1 : 0));
    total += n - 1;
    for (const h of [kv, dkv, out, dout]) h.dispose();
  }
  head.model.dispose();
  return hits / total;
}

describe("the saved head in the inference engine", () => {
  const target = loadModel(TARGET, TEST_PLACEMENT);
  afterAll(() => target.model.dispose());

  test("its validation accuracy is the engine's teacher-forced accuracy", () => {
    // the run's validation split, regenerated as trainDraft made it
    const o = options(OUT);
    const seqs = generatedSequences(target, { count: o.genSeqs, length: o.maxLen, temperatures: o.genTemp, seed: o.seed * 1_000_003 });
    const { valid } = splitSequences(seqs, o.validFrac, o.seed);
    expect(Math.abs(inferenceAccuracy(target, OUT, valid) - trained.valid.acc)).toBeLessThan(1e-3);
  });

  test("EAGLE-2 and EAGLE-1 greedy decode it losslessly over 100 tokens, with accepted drafts", () => {
    const head = loadDraft(OUT, target);
    const greedy: DecodeOptions = { maxNewTokens: 100, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stopIds: [] };
    const run = (mode: SpecMode) => {
      const gen = decode(target, [1, 17, 300, 42], greedy, makeProposer(specConfig(mode, {}), mode === "none" ? null : head));
      const tokens: number[] = [];
      let s = gen.next();
      for (; !s.done; s = gen.next()) tokens.push(s.value);
      return { tokens, stats: s.value };
    };
    const plain = run("none");
    for (const mode of ["eagle2", "eagle1"] as const) {
      const r = run(mode);
      expect(r.tokens).toEqual(plain.tokens);
      expect(r.stats.targetForwards).toBeLessThan(plain.stats.targetForwards);
    }
    head.model.dispose();
  });
});

describe("bad input", () => {
  test("an --out that holds a head is refused without --force", async () => {
    const out = join(root, "twice");
    await trainDraft(options(out, { steps: 1, genSeqs: 8 }));
    await expect(trainDraft(options(out, { steps: 1, genSeqs: 8 }))).rejects.toThrow(/already holds a head: pass --force/);
    expect((await trainDraft(options(out, { force: true, steps: 2, genSeqs: 8 }))).step).toBe(2);
  });

  test("an empty or unreadable corpus", async () => {
    const empty = join(root, "empty.txt");
    writeFileSync(empty, "\n  \n\n");
    await expect(trainDraft(options(join(root, "e1"), { data: empty }))).rejects.toThrow(/no text to train on/);
    await expect(trainDraft(options(join(root, "e2"), { data: join(root, "missing.txt") }))).rejects.toThrow(/missing\.txt: cannot open --data corpus: no such file$/);
    const badJson = join(root, "bad.jsonl");
    writeFileSync(badJson, '{"text": "a story"}\n{"text": \n');
    await expect(trainDraft(options(join(root, "e3"), { data: badJson }))).rejects.toThrow(/bad\.jsonl:2: not valid JSON/);
  });

  test("--resume with a head made for another hidden size", async () => {
    const other = join(root, "other-target");
    mkdirSync(other);
    writeRandomModel(other, { ...SPEC, hiddenSize: 32, intermediateSize: 64 }, 1);
    const otherHead = join(root, "other-head");
    await trainDraft(options(otherHead, { target: other, steps: 2, genSeqs: 4, maxLen: 16, window: 16 }));
    await expect(trainDraft(options(otherHead, { resume: true, steps: 4 }))).rejects.toThrow(/hidden_size 32 does not match the target's 64/);
  });
});

describe("data and schedule", () => {
  test("corpus formats: paragraphs, lines, jsonl text / prompt+response / messages", () => {
    const txt = join(root, "c.txt");
    writeFileSync(txt, "one\ntwo lines\n\nthree\n");
    expect(corpusTexts(txt)).toEqual(["one\ntwo lines", "three"]);
    writeFileSync(txt, "a\nb\n");
    expect(corpusTexts(txt)).toEqual(["a", "b"]);
    const jsonl = join(root, "c.jsonl");
    writeFileSync(jsonl, ['{"text":"t"}', '{"prompt":"p","response":"r"}', '{"messages":[{"role":"user","content":"u"},{"role":"assistant","content":"a"}]}'].join("\n"));
    expect(corpusTexts(jsonl)).toEqual(["t", "p\nr", "u\na"]);
  });

  test("a corpus trains through the target's tokenizer", async () => {
    const txt = join(root, "stories.txt");
    writeFileSync(txt, readFileSync(join(REPO_ROOT, "test/prompts/stories.txt"), "utf8"));
    const r = await trainDraft(options(join(root, "corpus-head"), { data: txt, steps: 5 }));
    expect(r.data.train.seqs + r.data.valid.seqs).toBe(8);
  });

  test("warmup rises linearly, the cosine ends at a tenth of the peak", () => {
    const o = { steps: 100, warmup: 10, lr: 1 };
    expect(learningRate(5, o)).toBeCloseTo(0.5);
    expect(learningRate(10, o)).toBeCloseTo(1);
    expect(learningRate(55, o)).toBeCloseTo(0.55);
    expect(learningRate(100, o)).toBeCloseTo(0.1);
  });
});

test("Ctrl-C saves a checkpoint; --resume continues it to --steps", async () => {
  const out = join(root, "interrupted");
  const args = ["train-draft", "--target", TARGET, "--out", out, "--gen-seqs", "8", "--max-len", "32", "--batch", "4", "--log-every", "1"];
  const p = Bun.spawn([process.execPath, join(REPO_ROOT, "src/cli.ts"), ...args, "--steps", "1000000"], { stderr: "pipe", stdout: "ignore" });
  const reader = p.stderr.getReader();
  let err = "";
  while (!/step 3\//.test(err)) {
    const { value, done } = await reader.read();
    if (done) break;
    err += new TextDecoder().decode(value);
  }
  p.kill("SIGINT");
  expect(await p.exited).toBe(130);
  const state = JSON.parse(readFileSync(join(out, "trainer_state.json"), "utf8"));
  expect(state.step).toBeGreaterThanOrEqual(3);
  expect(JSON.parse(readFileSync(join(out, "training.json"), "utf8")).interrupted).toBe(true);
  const r = await trainDraft(options(out, { resume: true, steps: state.step + 5, genSeqs: 8, maxLen: 32, window: 32, batch: 4 }));
  expect(r.step).toBe(state.step + 5);
  expect(JSON.parse(readFileSync(join(out, "trainer_state.json"), "utf8")).step).toBe(state.step + 5);
});
