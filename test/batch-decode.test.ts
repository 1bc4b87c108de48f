// batched decoding: et_forward_batch gives every sequence what et_forward gives it alone (bit for bit on the
// CPU kernels in float32), refuses bad batches without touching any cache, and the batch decoder's
// sequences — greedy and sampled, plain and speculative, joining and leaving at different rounds — produce
// exactly the tokens each produces decoded alone with the same seed; `batch --parallel` keeps its output.
import { afterAll, describe, expect, spyOn, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runBatch } from "../src/commands/batch.ts";
import { makeTempDir } from "../src/model/random-model.ts";
import { MemoryError } from "../src/native/memory.ts";
import { BatchDecoder } from "../src/decoding/batch-decode.ts";
import { decode, type DecodeOptions, decodeSteps } from "../src/decoding/decode.ts";
import { makeProposer, type SpecMode } from "../src/decoding/spec-mode.ts";
import { loadDraft } from "../src/model/draft.ts";
import { loadModel } from "../src/model/loader.ts";
import { draftForwardBatch, forwardBatch } from "../src/native/batch-forward.ts";
import { cpuKernels, draftForward, forward, KvCache, setThreads, StepOutput, threadCount } from "../src/native/engine.ts";
import { shim } from "../src/native/ffi.ts";
import { DEFAULT_MODEL_DIR, REPO_ROOT } from "../src/util/paths.ts";
import { PERFECT_PAYS_ALONE, testSpec } from "./support/costs.ts";
import { TEST_PLACEMENT } from "./support/device.ts";

const target = loadModel(DEFAULT_MODEL_DIR, TEST_PLACEMENT);
const head = loadDraft(`${DEFAULT_MODEL_DIR}-eagle`, target);
afterAll(() => {
  head.model.dispose();
  target.model.dispose();
});
const vocab = target.config.vocabSize;
const exact = TEST_PLACEMENT.device === "cpu" && cpuKernels() !== "off" && target.placement.dtype === "f32";

function logits(out: StepOutput): number[][] {
  return Array.from({ length: out.rows }, (_, r) => Array.from(out.logitsRow(r, new Float32Array(vocab))));
}

function expectSame(a: number[][], b: number[][]): void {
  expect(a.length).toBe(b.length);
  if (exact) return expect(a).toEqual(b);
  a.forEach((row, r) => row.forEach((v, i) => expect(Math.abs(v - b[r][i])).toBeLessThan(1e-4)));
}

const ids = (n: number, salt: number) => Int32Array.from({ length: n }, (_, i) => 1 + ((i * 31 + salt * 17) % (vocab - 1)));
const positions = (from: number, n: number) => Int32Array.from({ length: n }, (_, i) => from + i);

// at 2 threads a small model's batch is split by sequence over the threads (each runs whole forwards for its
// sequences); a row's bits must not depend on which thread or group computed it
function atThreads(threads: number, body: () => void): void {
  const before = threadCount();
  setThreads(threads);
  try {
    body();
  } finally {
    setThreads(before);
  }
}

describe("et_forward_batch", () => {
  for (const threads of [1, 2]) test(`each sequence gets what it gets alone: different lengths, a tree mask, a mask over cached slots (${threads} thread${threads > 1 ? "s" : ""})`, () => atThreads(threads, () => {
    const prompts = [ids(5, 1), ids(40, 2), ids(17, 3)];
    const caches = prompts.map(() => KvCache.create(target.model, 96));
    const alone = prompts.map(() => KvCache.create(target.model, 96));
    const outs = prompts.map(() => StepOutput.create());
    const single = StepOutput.create();
    prompts.forEach((p, i) => {
      forward(target.model, caches[i], { tokens: p, positions: positions(0, p.length) }, single);
      forward(target.model, alone[i], { tokens: p, positions: positions(0, p.length) }, single);
    });
    // sequence 0: one token; 1: a 3-node tree (root, two children); 2: two tokens hiding cached slot 3
    const tree = Uint8Array.of(1, 0, 0, 1, 1, 0, 1, 0, 1);
    const L2 = prompts[2].length + 2;
    const wide = new Uint8Array(2 * L2).fill(1);
    wide[3] = 0;
    wide[L2 + 3] = 0;
    wide[prompts[2].length + 1] = 0; // row 0 does not see row 1
    const batches = [
      { tokens: Int32Array.of(7), positions: positions(5, 1) },
      { tokens: Int32Array.of(9, 11, 12), positions: Int32Array.of(40, 41, 41), mask: tree },
      { tokens: Int32Array.of(3, 4), positions: positions(17, 2), mask: wide, maskCols: L2 },
    ];
    forwardBatch(target.model, batches.map((batch, i) => ({ kv: caches[i], batch, out: outs[i] })));
    batches.forEach((batch, i) => {
      forward(target.model, alone[i], batch, single);
      expect(caches[i].length).toBe(alone[i].length);
      expectSame(logits(outs[i]), logits(single));
    });
    // and the caches carry on as the lone ones do
    forwardBatch(target.model, [0, 1, 2].map((i) => ({ kv: caches[i], batch: { tokens: Int32Array.of(5), positions: positions(caches[i].length, 1) }, out: outs[i] })));
    [0, 1, 2].forEach((i) => {
      forward(target.model, alone[i], { tokens: Int32Array.of(5), positions: positions(alone[i].length, 1) }, single);
      expectSame(logits(outs[i]), logits(single));
    });
    for (const h of [...caches, ...alone, ...outs, single]) h.dispose();
  }));

  test("the rows' argmax read with the forward: each sequence's, in one call, as et_out_argmax reads them", () => {
    const caches = [3, 7, 12].map(() => KvCache.create(target.model, 32));
    const outs = caches.map(() => StepOutput.create());
    const batches = [ids(3, 4), ids(1, 5), ids(6, 6)].map((tokens) => ({ tokens, positions: positions(0, tokens.length) }));
    const seqs = batches.map((batch, i) => ({ kv: caches[i], batch, out: outs[i], argmax: new Int32Array(batch.tokens.length).fill(-1) }));
    delete (seqs[1] as { argmax?: Int32Array }).argmax; // a sequence that does not ask
    forwardBatch(target.model, seqs);
    expect(Array.from(seqs[0].argmax)).toEqual(Array.from(outs[0].argmax()));
    expect(Array.from(seqs[2].argmax)).toEqual(Array.from(outs[2].argmax()));
    // the reader itself: the first counts[b] rows of each; counts outside [1, rows] are refused, ids untouched
    const raw = (counts: number[], ids: Int32Array) => shim().et_out_argmax_each(2,
      BigUint64Array.of(BigInt(StepOutput.ptrOf(outs[2])), BigInt(StepOutput.ptrOf(outs[0]))), Int32Array.from(counts), ids);
    const got = new Int32Array(6).fill(-7);
    expect(raw([4, 2], got)).toBe(0);
    expect(Array.from(got)).toEqual([...Array.from(outs[2].argmax()).slice(0, 4), ...Array.from(outs[0].argmax()).slice(0, 2)]);
    const untouched = new Int32Array(6).fill(-7);
    expect(raw([7, 2], untouched)).toBe(-1);
    expect(String(shim().et_last_error())).toMatch(/counts\[0\] is 7 but output 0 holds 6 rows/);
    expect(raw([0, 2], untouched)).toBe(-1);
    expect(String(shim().et_last_error())).toMatch(/counts\[0\] must be positive/);
    expect(Array.from(untouched)).toEqual(new Array(6).fill(-7));
    for (const h of [...caches, ...outs]) h.dispose();
  });

  test("a bad batch is refused and leaves every cache as it was", () => {
    const a = KvCache.create(target.model, 8), b = KvCache.create(target.model, 8);
    const oa = StepOutput.create(), ob = StepOutput.create();
    const one = (kv: KvCache, out: StepOutput, tokens = Int32Array.of(3)) => ({ kv, out, batch: { tokens, positions: positions(kv.length, tokens.length) } });
    expect(() => forwardBatch(target.model, [one(a, oa), one(a, ob)])).toThrow(/share a cache/);
    expect(() => forwardBatch(target.model, [one(a, oa), one(b, oa)])).toThrow(/share a results holder/);
    expect(() => forwardBatch(target.model, [one(a, oa), one(b, ob, ids(9, 1))])).toThrow(/cache full/);
    expect(() => forwardBatch(target.model, [one(a, oa), one(b, ob, Int32Array.of(vocab))])).toThrow(/outside the vocabulary/);
    expect(() => forwardBatch(target.model, [])).toThrow(/at least one sequence/);
    expect(() => forwardBatch(target.model, [one(a, oa), { ...one(b, ob), argmax: new Int32Array(2) }])).toThrow(/sequence 1: argmax buffer of 2 entries for 1 new tokens/);
    expect(() => forwardBatch(target.model, [{ ...one(a, oa), argmax: new Int32Array(0) }])).toThrow(/argmax buffer of 0 entries/);
    expect([a.length, b.length]).toEqual([0, 0]);
    forwardBatch(target.model, [one(a, oa), one(b, ob)]);
    expect([a.length, b.length]).toEqual([1, 1]);
    for (const h of [a, b, oa, ob]) h.dispose();
  });
});

describe("et_draft_forward_batch", () => {
  for (const threads of [1, 2]) test(`each sequence's draft pass is what it gets alone: prefill features, a tree level over its own output (${threads} thread${threads > 1 ? "s" : ""})`, () => atThreads(threads, () => {
    const prompts = [ids(6, 1), ids(30, 2), ids(11, 3)];
    const targetOut = prompts.map(() => StepOutput.create());
    prompts.forEach((p, i) => {
      const kv = KvCache.create(target.model, 64);
      forward(target.model, kv, { tokens: p, positions: positions(0, p.length) }, targetOut[i]);
      kv.dispose();
    });
    const caches = prompts.map(() => KvCache.create(head.model, 64));
    const alone = prompts.map(() => KvCache.create(head.model, 64));
    const outs = prompts.map(() => StepOutput.create());
    const single = prompts.map(() => StepOutput.create());
    // the prefill: entry t pairs feature t with token t + 1 (the last with a new root)
    const entries = prompts.map((p) => Int32Array.from([...p.slice(1), 7]));
    const rows = prompts.map((p) => Int32Array.from(p, (_, t) => t));
    draftForwardBatch(head.model, prompts.map((p, i) => ({
      kv: caches[i], out: outs[i], batch: { tokens: entries[i], positions: positions(0, p.length) }, features: targetOut[i], featureRows: rows[i],
    })));
    prompts.forEach((p, i) => {
      draftForward(head.model, alone[i], { tokens: entries[i], positions: positions(0, p.length) }, targetOut[i], rows[i], single[i]);
      expect(caches[i].length).toBe(alone[i].length);
      expectSame(logits(outs[i]), logits(single[i]));
    });
    // a level of two nodes, each reading the root entry's row of the sequence's own latest output (which
    // it also overwrites), masked to the committed prefix and itself
    const level = (i: number) => {
      const len = prompts[i].length, cols = len + 2, mask = new Uint8Array(2 * cols);
      for (let r = 0; r < 2; r++) {
        mask.fill(1, r * cols, r * cols + len);
        mask[r * cols + len + r] = 1;
      }
      return { tokens: Int32Array.of(9 + i, 20 + i), positions: new Int32Array(2).fill(len), mask, maskCols: cols };
    };
    const root = (i: number) => new Int32Array(2).fill(prompts[i].length - 1);
    draftForwardBatch(head.model, prompts.map((_, i) => ({ kv: caches[i], out: outs[i], batch: level(i), features: outs[i], featureRows: root(i) })));
    prompts.forEach((_, i) => {
      draftForward(head.model, alone[i], level(i), single[i], root(i), single[i]);
      expectSame(logits(outs[i]), logits(single[i]));
    });
    for (const h of [...targetOut, ...caches, ...alone, ...outs, ...single]) h.dispose();
  }));

  // features may be the pass's own output, also where a lone sequence's results are written in place (the
  // same shape as its last ones): a chain of one-entry passes each reading row 0 of its own last output
  // (EAGLE's chain) matches the same passes reading each from another holder, which keeps its results
  test("a chain of one-entry draft passes over its own output matches one over separate outputs", () => {
    const prompt = ids(12, 4);
    const feats = StepOutput.create();
    const tkv = KvCache.create(target.model, 32);
    forward(target.model, tkv, { tokens: prompt, positions: positions(0, prompt.length) }, feats);
    const own = KvCache.create(head.model, 32), apart = KvCache.create(head.model, 32);
    const self = StepOutput.create(), outs = [StepOutput.create(), StepOutput.create()];
    const first = { tokens: Int32Array.of(5), positions: Int32Array.of(prompt.length - 1) };
    draftForward(head.model, own, first, feats, Int32Array.of(prompt.length - 1), self);
    draftForward(head.model, apart, first, feats, Int32Array.of(prompt.length - 1), outs[0]);
    for (let k = 1; k <= 6; k++) {
      const before = logits(self);
      const pass = { tokens: Int32Array.of(10 + k), positions: Int32Array.of(prompt.length - 1 + k) };
      draftForward(head.model, own, pass, self, Int32Array.of(0), self);
      draftForward(head.model, apart, pass, outs[(k - 1) % 2], Int32Array.of(0), outs[k % 2]);
      expectSame(logits(self), logits(outs[k % 2]));
      expect(logits(outs[(k - 1) % 2])).toEqual(before);
    }
    for (const h of [feats, tkv, own, apart, self, ...outs]) h.dispose();
  });

  test("a bad draft batch is refused and leaves every cache as it was", () => {
    const a = KvCache.create(head.model, 8), b = KvCache.create(head.model, 8);
    const oa = StepOutput.create(), ob = StepOutput.create(), feats = StepOutput.create(), empty = StepOutput.create();
    const tkv = KvCache.create(target.model, 8);
    forward(target.model, tkv, { tokens: Int32Array.of(1, 5), positions: positions(0, 2) }, feats);
    const one = (kv: KvCache, out: StepOutput, row = 0) =>
      ({ kv, out, batch: { tokens: Int32Array.of(3), positions: positions(kv.length, 1) }, features: feats, featureRows: Int32Array.of(row) });
    expect(() => draftForwardBatch(head.model, [one(a, oa), one(b, ob, 2)])).toThrow(/feature row 2 outside \[0, 2\)/);
    expect(() => draftForwardBatch(head.model, [one(a, oa), { ...one(b, ob), features: empty }])).toThrow(/holds no results/);
    expect(() => draftForwardBatch(target.model, [one(tkv, oa)])).toThrow(/not a draft head/);
    expect(() => forwardBatch(head.model, [one(a, oa)])).toThrow(/this is a draft head/);
    expect([a.length, b.length]).toEqual([0, 0]);
    draftForwardBatch(head.model, [one(a, oa), one(b, ob, 1)]);
    expect([a.length, b.length]).toEqual([1, 1]);
    for (const h of [a, b, oa, ob, feats, empty, tkv]) h.dispose();
  });
});

interface Job {
  prompt: number[];
  mode: SpecMode;
  opts: DecodeOptions;
}

const options = (maxNewTokens: number, temperature: number, seed: number): DecodeOptions =>
  ({ maxNewTokens, sampling: { temperature, topK: temperature > 0 ? 40 : 0, topP: 0.95 }, seed, stopIds: [] });

function aloneTokens(j: Job): number[] {
  return [...decode(target, j.prompt, j.opts, makeProposer(testSpec(j.mode), j.mode === "none" ? null : head))];
}

describe("the batch decoder", () => {
  const jobs: Job[] = [
    { prompt: [1, ...ids(6, 1)], mode: "none", opts: options(40, 0, 1) },
    { prompt: [1, ...ids(12, 2)], mode: "eagle2", opts: options(25, 0, 1) },
    { prompt: [1, ...ids(3, 3)], mode: "none", opts: options(60, 1, 7) },
    { prompt: [1, ...ids(9, 4)], mode: "eagle1", opts: options(33, 0.7, 11) },
    { prompt: [1, ...ids(20, 5)], mode: "auto", opts: options(50, 0, 1) },
    { prompt: [1, ...ids(5, 6)], mode: "eagle2", opts: options(45, 1, 3) },
  ];

  test("every sequence's tokens equal its tokens decoded alone, whatever shares its batch", () => {
    const decoder = new BatchDecoder(target);
    const got = jobs.map(() => [] as number[]);
    const ended: number[] = [];
    const start = (i: number) => {
      const j = jobs[i];
      decoder.add({
        steps: decodeSteps(target, j.prompt, j.opts, makeProposer(testSpec(j.mode), j.mode === "none" ? null : head)),
        onToken: (t) => got[i].push(t),
        onDone: (s) => {
          expect(s.newTokens).toBe(got[i].length);
          ended.push(i);
        },
        onError: (e) => { throw e; },
      });
    };
    // three start together; the others join mid-run, one per round, as in continuous batching
    [0, 1, 2].forEach(start);
    let rounds = 0, joined = 3, widest = 0;
    while (decoder.size > 0 || joined < jobs.length) {
      if (rounds >= 4 && joined < jobs.length) start(joined++);
      widest = Math.max(widest, decoder.size);
      decoder.round();
      rounds++;
    }
    expect(ended.sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(widest).toBeGreaterThanOrEqual(4); // they really shared rounds
    // and calls: verifications, and the draft passes of the four drafting sequences
    const c = decoder.counts;
    expect(c.targetSequences).toBeGreaterThan(c.targetCalls * 2);
    expect(c.draftSequences).toBeGreaterThan(c.draftCalls);
    jobs.forEach((j, i) => {
      expect(got[i].length).toBe(j.opts.maxNewTokens);
      expect(got[i]).toEqual(aloneTokens(j));
    });
  });

  test("a cancelled sequence leaves, frees its caches, and the others go on unchanged", () => {
    const decoder = new BatchDecoder(target);
    const got: number[][] = [[], []];
    const seqs = [0, 1].map((i) => ({
      steps: decodeSteps(target, jobs[i].prompt, jobs[i].opts, makeProposer(testSpec(jobs[i].mode), jobs[i].mode === "none" ? null : head)),
      onToken: (t: number) => got[i].push(t),
      onDone: () => {},
      onError: (e: unknown) => { throw e; },
    }));
    seqs.forEach((s) => decoder.add(s));
    decoder.round();
    decoder.round();
    decoder.cancel(seqs[0]);
    expect(decoder.size).toBe(1);
    while (decoder.round() > 0);
    expect(got[1]).toEqual(aloneTokens(jobs[1]));
    expect(got[0].length).toBeLessThan(jobs[0].opts.maxNewTokens);
  });

  test.each([["greedy", options(30, 0, 1)], ["sampled", options(30, 0.8, 5)]] as const)(
    "%s auto sequences in a batch where even a perfect draft cannot pay never feed their heads, and decode as alone", (_, opts) => {
    // a perfect draft pays alone here (a chain of 1: 2 tokens for ~4.6 ms against 3 ms a token), not as one of
    // 8 (the fixed 2 ms shared: 2 tokens for ~2.9 ms against 1.26 ms a token); a sampled sequence's text is
    // plain sampling's whatever its trees, so it may rest in a batch too
    const costs = PERFECT_PAYS_ALONE;
    const prompts = Array.from({ length: 8 }, (_, i) => [1, ...ids(4 + i, 20 + i)]);
    const run = (shared: boolean) => {
      const decoder = new BatchDecoder(target);
      const got = prompts.map(() => [] as number[]);
      prompts.forEach((prompt, i) => decoder.add({
        steps: decodeSteps(target, prompt, { ...opts, sharing: shared ? () => decoder.size : undefined }, makeProposer(testSpec("auto", {}, costs), head)),
        onToken: (t) => got[i].push(t),
        onDone: () => {},
        onError: (e) => { throw e; },
      }));
      while (decoder.round() > 0);
      return { got, counts: decoder.counts };
    };
    const among8 = run(true);
    expect(among8.counts.draftCalls).toBe(0); // not even the prompts' prefill
    const unaware = run(false); // the same sequences, each pricing its rounds as alone: they draft
    expect(unaware.counts.draftCalls).toBeGreaterThan(0);
    among8.got.forEach((tokens, i) => {
      expect(tokens).toEqual(unaware.got[i]);
      expect(tokens).toEqual([...decode(target, prompts[i], opts, makeProposer(testSpec("none"), null))]);
    });
  });
});

describe("batch --parallel", () => {
  const run = (args: string[], stdin: string) => {
    const p = Bun.spawnSync([process.execPath, join(REPO_ROOT, "src/cli.ts"), "batch", "-t", "1", ...args], { stdin: Buffer.from(stdin), env: { ...process.env, NO_COLOR: "1" } });
    return { code: p.exitCode ?? -1, stderr: p.stderr.toString(), lines: p.stdout.toString().trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) };
  };
  const input = [
    "Once upon a time", '{"prompt": "The cat", "max_tokens": 5, "id": "short"}', "{bad json", '{"prompt": "A dog", "temperature": 0.9, "seed": 4}',
    "Sara wanted to bake", '{"prompt": "Tim had a ball", "max_tokens": 50}',
  ].join("\n") + "\n";

  test("the same records in the same order whatever the parallelism", () => {
    const one = run(["-n", "30", "--temp", "0", "--parallel", "1"], input);
    const four = run(["-n", "30", "--temp", "0", "--parallel", "4"], input);
    expect(one.code).toBe(1); // the bad line
    expect(four.code).toBe(1);
    const strip = (r: Record<string, unknown>) => ({ id: r.id, text: r.text, error: r.error, completion_tokens: r.completion_tokens, finish_reason: r.finish_reason });
    expect(four.lines.map(strip)).toEqual(one.lines.map(strip));
    expect(four.lines.map((r) => r.id)).toEqual([1, "short", 3, 4, 5, 6]);
    expect(four.lines[1].completion_tokens).toBe(5);
  });

  test("an item whose cache does not fit beside the running ones runs once one ends; alone, it is an error record", async () => {
    const dir = makeTempDir("eagle-batch-memory-");
    const input = join(dir, "in.txt");
    writeFileSync(input, "Once upon a time\nThe cat\nLily went to the park\n");
    const args = (output: string, parallel: number) => ({
      model: DEFAULT_MODEL_DIR, input, output, force: true, n: 20, temp: 0, topK: 0, topP: 1, seed: 1, parallel, spec: "none" as const, threads: 1,
    });
    const read = (f: string) => readFileSync(f, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const saved = process.exitCode;
    const create = KvCache.create.bind(KvCache);
    let refuse: (n: number) => boolean = () => false;
    const spy = spyOn(KvCache, "create").mockImplementation((model, capacity) => {
      if (refuse(spy.mock.calls.length)) throw new MemoryError("needs 1 GiB on cpu (KV cache) but only 1 MiB is free");
      return create(model, capacity);
    });
    try {
      await runBatch(args(join(dir, "alone.jsonl"), 1));
      spy.mockClear();
      refuse = (call) => call === 3; // the third item's first try, while the first two decode
      await runBatch(args(join(dir, "held.jsonl"), 3));
      expect(spy.mock.calls.length).toBe(4);
      const strip = (r: Record<string, unknown>) => [r.id, r.text, r.completion_tokens];
      expect(read(join(dir, "held.jsonl")).map(strip)).toEqual(read(join(dir, "alone.jsonl")).map(strip));
      refuse = () => true; // nothing fits: every item is an error record naming the memory
      await runBatch(args(join(dir, "none.jsonl"), 3));
      expect(read(join(dir, "none.jsonl")).map((r) => r.error)).toEqual(new Array(3).fill("needs 1 GiB on cpu (KV cache) but only 1 MiB is free"));
    } finally {
      spy.mockRestore();
      process.exitCode = saved ?? 0; // runBatch sets 1 for its failed items; the test runner reads it at exit
    }
  });

  test("--parallel must be a positive integer", () => {
    const r = run(["--parallel", "0"], "x\n");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--parallel must be an integer from 1 to 4096, got 0");
  });
});
