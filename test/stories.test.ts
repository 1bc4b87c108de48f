// the shipped model: greedy decoding with the engine (converted HF layout, libtorch) reproduces token for
// token the independent reference forward run on the original llama2.c checkpoint (adjacent-pair RoPE).
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { decode } from "../src/decoding/decode.ts";
import { loadModel } from "../src/model/loader.ts";
import { DEFAULT_MODEL_DIR } from "../src/util/paths.ts";
import { argmax } from "../src/decoding/sampling.ts";
import { TextTokenizer } from "../src/model/tokenizer.ts";
import { SHARED_STORIES } from "./support/paths.ts";
import { RefCache, forward, loadRefLlama2c } from "./support/reference.ts";
import { TEST_PLACEMENT } from "./support/device.ts";

const loaded = loadModel(DEFAULT_MODEL_DIR, TEST_PLACEMENT);
afterAll(() => loaded.model.dispose());

function engineGreedy(prompt: number[], steps: number): number[] {
  const run = decode(loaded, prompt, {
    maxNewTokens: steps, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stopIds: [],
  });
  return [...run];
}

function referenceGreedy(prompt: number[], steps: number): number[] {
  const ref = loadRefLlama2c(join(SHARED_STORIES, "stories260K.bin"));
  const cache = new RefCache(ref.config.layers);
  const out = forward(ref, cache, prompt, prompt.map((_, i) => i), null);
  const tokens = [argmax(out.logits[prompt.length - 1])];
  while (tokens.length < steps) {
    const pos = prompt.length + tokens.length - 1;
    tokens.push(argmax(forward(ref, cache, [tokens[tokens.length - 1]], [pos], null).logits[0]));
  }
  return tokens;
}

test("greedy from BOS equals the llama2.c reference over 200 tokens", () => {
  const engine = engineGreedy([1], 200);
  expect(engine).toEqual(referenceGreedy([1], 200));
  const text = TextTokenizer.load(DEFAULT_MODEL_DIR).decode(engine);
  expect(text.startsWith("Once upon a time, there was a little girl named Lily. She loved to play outside in the park.")).toBe(true);
});

test("greedy from a story prompt equals the reference", () => {
  const prompt = TextTokenizer.load(DEFAULT_MODEL_DIR).encode("Tom and his dog went to the beach");
  expect(prompt[0]).toBe(1);
  expect(engineGreedy(prompt, 120)).toEqual(referenceGreedy(prompt, 120));
});

test("sampling is reproducible with a seed and differs across seeds", () => {
  const sample = (seed: number) => [...decode(loaded, [1], {
    maxNewTokens: 40, sampling: { temperature: 1, topK: 40, topP: 0.95 }, seed, stopIds: [],
  })];
  expect(sample(7)).toEqual(sample(7));
  expect(sample(7)).not.toEqual(sample(8));
});

test("stops at EOS and at the context limit", () => {
  const eosRun = decode(loaded, [1], {
    maxNewTokens: 400, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stopIds: [2],
  });
  const tokens: number[] = [];
  let step = eosRun.next();
  for (; !step.done; step = eosRun.next()) tokens.push(step.value);
  if (step.value.stopReason === "eos") expect(tokens[tokens.length - 1]).toBe(2);
  else expect(tokens.length).toBe(400);

  const context = loaded.config.maxPositions;
  const long = Array.from({ length: context - 5 }, (_, i) => (i === 0 ? 1 : 300 + (i % 100)));
  const run = decode(loaded, long, {
    maxNewTokens: 50, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stopIds: [],
  });
  let n = 0;
  let s = run.next();
  for (; !s.done; s = run.next()) n++;
  expect(s.value.stopReason).toBe("context");
  expect(long.length + n).toBe(context);
  expect(() => decode(loaded, new Array(context).fill(5), {
    maxNewTokens: 1, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stopIds: [],
  }).next()).toThrow(/context is 512/);
});
