// the server's continuous-batching scheduler, in process on the shipped model and head: requests decoded
// together give exactly the text each gets alone (greedy and seeded sampling, plain and speculative), no
// more than --parallel decode at once and the rest wait in order, a request whose client goes away ends
// without touching the others, close() cancels what waits and what runs, and a request whose caches do not
// fit waits for memory while others run.
import { afterAll, describe, expect, spyOn, test } from "bun:test";
import { loadDraft } from "../src/model/draft.ts";
import { loadModel } from "../src/model/loader.ts";
import { TextTokenizer } from "../src/model/tokenizer.ts";
import { KvCache } from "../src/native/engine.ts";
import { MemoryError } from "../src/native/memory.ts";
import { BatchScheduler, type Engine, type Generation, type GenerationResult } from "../src/serve/scheduler.ts";
import { DEFAULT_MODEL_DIR } from "../src/util/paths.ts";
import { testSpec } from "./support/costs.ts";
import { TEST_PLACEMENT } from "./support/device.ts";

const target = loadModel(DEFAULT_MODEL_DIR, TEST_PLACEMENT);
const head = loadDraft(`${DEFAULT_MODEL_DIR}-eagle`, target);
const tokenizer = TextTokenizer.load(DEFAULT_MODEL_DIR);
afterAll(() => {
  head.model.dispose();
  target.model.dispose();
});

const engine = (mode: "none" | "eagle2" | "auto"): Engine => ({ target, spec: { config: testSpec(mode), head }, tokenizer });

const PROMPTS = ["Once upon a time", "Lily went to the park", "The cat", "Tom had a big red ball", "One day", "The sun"];

// six different requests: lengths, greedy and sampled (each its own seed), one with a stop string
function generations(): Generation[] {
  return PROMPTS.map((p, i) => ({
    ids: tokenizer.encode(p), maxTokens: 20 + 7 * i, temperature: i % 2 === 0 ? 0 : 0.9,
    topK: 0, topP: 1, seed: 100 + i, stop: i === 4 ? ["."] : [],
  }));
}

/** Submits every generation at once; returns the results and the most requests ever decoding together. */
async function runAll(s: BatchScheduler, gs: Generation[]): Promise<{ results: GenerationResult[]; most: number; scheduler: BatchScheduler }> {
  let most = 0;
  const onText = () => {
    most = Math.max(most, s.running);
  };
  const results = await Promise.all(gs.map((g) => s.submit(g, { onText })));
  return { results, most, scheduler: s };
}

const texts = (rs: GenerationResult[]) => rs.map((r) => [r.text, r.finishReason, r.completionTokens]);

describe("BatchScheduler", () => {
  for (const mode of ["none", "eagle2", "auto"] as const) {
    test(`${mode}: requests decoded four at a time give what each gets alone`, async () => {
      const alone = await runAll(new BatchScheduler(engine(mode), 1), generations());
      const together = await runAll(new BatchScheduler(engine(mode), 4), generations());
      expect(alone.most).toBe(1);
      expect(together.most).toBe(4);
      const b = together.scheduler.batches;
      expect(b.targetSequences).toBeGreaterThan(b.targetCalls); // they really shared forwards
      if (mode === "eagle2") expect(b.draftSequences).toBeGreaterThan(b.draftCalls);
      expect(texts(together.results)).toEqual(texts(alone.results));
      expect(together.results[4].finishReason).toBe("stop");
      expect(together.results.every((r) => r.text.length > 0 && r.stats !== null)).toBe(true);
    });
  }

  test("queued requests wait, and start in the order they came", async () => {
    const s = new BatchScheduler(engine("none"), 2);
    const started: number[] = [];
    const gs = generations();
    const runs = gs.map((g, i) => s.submit(g, { onText: () => started.includes(i) || started.push(i) }));
    expect(s.waiting).toBe(gs.length);
    await Promise.all(runs);
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    expect(s.waiting).toBe(0);
    expect(s.running).toBe(0);
  });

  test("a request whose client goes away ends early; the others are unchanged", async () => {
    const alone = await runAll(new BatchScheduler(engine("eagle2"), 1), generations());
    const s = new BatchScheduler(engine("eagle2"), 4);
    const gone = new AbortController();
    const waitingGone = new AbortController();
    let pieces = 0;
    const gs = generations();
    const runs = gs.map((g, i) => s.submit(g, {
      signal: i === 1 ? gone.signal : i === 5 ? waitingGone.signal : undefined,
      onText: i === 1 ? () => ++pieces === 3 && gone.abort() : undefined,
    }));
    waitingGone.abort(); // still queued: it leaves the queue at once
    const results = await Promise.all(runs);
    expect(results[1].finishReason).toBe("cancelled");
    expect(alone.results[1].text.startsWith(results[1].text)).toBe(true);
    expect(results[1].completionTokens).toBeLessThan(alone.results[1].completionTokens);
    expect(results[5]).toMatchObject({ finishReason: "cancelled", completionTokens: 0, stats: null });
    for (const i of [0, 2, 3, 4]) expect(texts([results[i]])).toEqual(texts([alone.results[i]]));
  });

  test("close() cancels what waits and what runs; later requests are cancelled at once", async () => {
    const s = new BatchScheduler(engine("none"), 2);
    let closing: Promise<void> | null = null;
    const gs = generations();
    const runs = gs.map((g, i) => s.submit(g, { onText: () => i === 0 && closing === null && (closing = s.close()) }));
    const results = await Promise.all(runs);
    await closing;
    expect(results.every((r) => r.finishReason === "cancelled")).toBe(true);
    expect(results.slice(2).every((r) => r.stats === null)).toBe(true); // never started
    expect((await s.submit(gs[0])).finishReason).toBe("cancelled");
    expect(s.running).toBe(0);
  });
});

describe("BatchScheduler and memory", () => {
  test("a request whose cache does not fit beside the running ones waits for one to end; alone, it fails", async () => {
    const alone = await runAll(new BatchScheduler(engine("none"), 1), generations().slice(0, 3));
    const create = KvCache.create.bind(KvCache);
    let refusals = 0;
    let ended = 0;
    const spy = spyOn(KvCache, "create").mockImplementation((model, capacity) => {
      // the third request's target cache, while the first two run
      if (model === target.model && ended === 0 && refusals === 0 && spy.mock.calls.length === 3) {
        refusals++;
        throw new MemoryError("needs 1 GiB on cpu (KV cache) but only 1 MiB is free");
      }
      return create(model, capacity);
    });
    try {
      const s = new BatchScheduler(engine("none"), 3);
      const results = await Promise.all(generations().slice(0, 3).map((g) => s.submit(g).then((r) => (ended++, r))));
      expect(refusals).toBe(1);
      expect(texts(results)).toEqual(texts(alone.results));
      // alone, nothing can free memory: the request fails with the memory error
      spy.mockImplementation(() => {
        throw new MemoryError("needs 1 GiB on cpu (KV cache) but only 1 MiB is free");
      });
      await expect(new BatchScheduler(engine("none"), 3).submit(generations()[0])).rejects.toThrow(MemoryError);
    } finally {
      spy.mockRestore();
    }
  });
});
