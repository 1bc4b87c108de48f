// shim tests: the libtorch forward against the independent TypeScript reference, on every random model
// shape; tree-masked batches; cache compaction and rollback; bad calls reported as errors.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { mkdirSync, rmSync } from "node:fs";
import { forward, KvCache, StepOutput } from "../src/native/engine.ts";
import { type LoadedModel, loadModel } from "../src/model/loader.ts";
import { RANDOM_SPECS, makeTempDir, writeRandomModel } from "../src/model/random-model.ts";
import { RefCache, type RefModel, forward as refForward, loadRefModel } from "./support/reference.ts";
import { TEST_PLACEMENT } from "./support/device.ts";

const TOL = 1e-4;
const root = makeTempDir("eagle-shim-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function expectLogitsMatch(out: StepOutput, ref: Float32Array[], vocab: number): void {
  const row = new Float32Array(vocab);
  expect(out.rows).toBe(ref.length);
  for (let r = 0; r < ref.length; r++) expect(maxAbsDiff(out.logitsRow(r, row), ref[r])).toBeLessThan(TOL);
}

// a hand-written tree after a prompt of length p (node: parent, depth):
// 0: root (the last accepted token), 1: parent 0, 2: parent 0, 3: parent 1, 4: parent 1, 5: parent 3
const PARENTS = [-1, 0, 0, 1, 1, 3];
function treeMask(parents: number[]): { mask: Uint8Array; rows: boolean[][]; depth: number[] } {
  const n = parents.length;
  const rows = parents.map(() => new Array<boolean>(n).fill(false));
  const depth = parents.map(() => 0);
  for (let i = 0; i < n; i++) {
    for (let j = i; j !== -1; j = parents[j]) rows[i][j] = true;
    depth[i] = parents[i] === -1 ? 0 : depth[parents[i]] + 1;
  }
  return { mask: Uint8Array.from(rows.flat().map(Number)), rows, depth };
}

for (const spec of RANDOM_SPECS) {
  describe(`random model ${spec.name}`, () => {
    let dir: string;
    let loaded: LoadedModel;
    let ref: RefModel;
    beforeAll(() => {
      dir = join(root, spec.name);
      mkdirSync(dir);
      writeRandomModel(dir, spec, 7);
      loaded = loadModel(dir, TEST_PLACEMENT);
      ref = loadRefModel(dir);
    });
    afterAll(() => loaded.model.dispose());

    test("prompt, tree batch and compaction match the reference", () => {
      const vocab = loaded.config.vocabSize;
      const kv = KvCache.create(loaded.model, 64);
      const out = StepOutput.create();
      const refCache = new RefCache(loaded.config.nLayers);
      const prompt = [1, 17, 300, 42, 9, 511, 260];
      const pos = prompt.map((_, i) => i);
      forward(loaded.model, kv, { tokens: Int32Array.from(prompt), positions: Int32Array.from(pos) }, out);
      expectLogitsMatch(out, refForward(ref, refCache, prompt, pos, null).logits, vocab);

      const tree = treeMask(PARENTS);
      const treeTokens = [5, 77, 78, 200, 201, 333];
      const treePos = tree.depth.map((d) => prompt.length + d);
      forward(loaded.model, kv, { tokens: Int32Array.from(treeTokens), positions: Int32Array.from(treePos), mask: tree.mask }, out);
      expectLogitsMatch(out, refForward(ref, refCache, treeTokens, treePos, tree.rows).logits, vocab);

      // accept the path 0 -> 1 -> 3 -> 5, compact, then decode one more token
      const accepted = [0, 1, 3, 5];
      kv.keep(prompt.length, Int32Array.from(accepted.map((i) => prompt.length + i)));
      refCache.keep(prompt.length, accepted.map((i) => prompt.length + i));
      expect(kv.length).toBe(prompt.length + accepted.length);
      const nextPos = prompt.length + accepted.length;
      forward(loaded.model, kv, { tokens: Int32Array.from([99]), positions: Int32Array.from([nextPos]) }, out);
      const compacted = new Float32Array(vocab);
      out.logitsRow(0, compacted);
      expectLogitsMatch(out, refForward(ref, refCache, [99], [nextPos], null).logits, vocab);

      // the same logits from a fresh cache over the accepted prefix
      const fresh = KvCache.create(loaded.model, 64);
      const seq = [...prompt, ...accepted.map((i) => treeTokens[i]), 99];
      forward(loaded.model, fresh, { tokens: Int32Array.from(seq), positions: Int32Array.from(seq.map((_, i) => i)) }, out);
      expect(maxAbsDiff(out.logitsRow(seq.length - 1, new Float32Array(vocab)), compacted)).toBeLessThan(TOL);
      fresh.dispose();
      kv.dispose();
      out.dispose();
    });

    // a long prompt puts every key list length from 1 to 150 through the kernels' runs of 16 and 64 slots;
    // the tree then hides scattered cached slots (a mask over cached slots and new tokens)
    test("a long context and a mask over cached slots match the reference", () => {
      const vocab = loaded.config.vocabSize;
      const kv = KvCache.create(loaded.model, 200);
      const out = StepOutput.create();
      const refCache = new RefCache(loaded.config.nLayers);
      const prompt = Array.from({ length: 150 }, (_, i) => (i * 37 + 11) % vocab);
      const pos = prompt.map((_, i) => i);
      forward(loaded.model, kv, { tokens: Int32Array.from(prompt), positions: Int32Array.from(pos) }, out);
      expectLogitsMatch(out, refForward(ref, refCache, prompt, pos, null).logits, vocab);

      const tree = treeMask(PARENTS);
      const L = prompt.length + PARENTS.length;
      const rows = tree.rows.map((row, i) => [...prompt.map((_, s) => (s * 7 + i) % 5 !== 0), ...row]);
      expect(rows[0].length).toBe(L);
      const treeTokens = [5, 77, 78, 200, 201, 333].map((t) => t % vocab);
      const treePos = tree.depth.map((d) => prompt.length + d);
      forward(loaded.model, kv, {
        tokens: Int32Array.from(treeTokens), positions: Int32Array.from(treePos), mask: Uint8Array.from(rows.flat().map(Number)), maskCols: L,
      }, out);
      expectLogitsMatch(out, refForward(ref, refCache, treeTokens, treePos, rows).logits, vocab);
      kv.dispose();
      out.dispose();
    });

    test("truncate then re-forward reproduces the logits", () => {
      const kv = KvCache.create(loaded.model, 32);
      const out = StepOutput.create();
      const seq = Int32Array.from([1, 2, 3, 4, 5, 6]);
      forward(loaded.model, kv, { tokens: seq, positions: Int32Array.from([0, 1, 2, 3, 4, 5]) }, out);
      const last = out.logitsRow(5, new Float32Array(loaded.config.vocabSize));
      kv.truncate(3);
      forward(loaded.model, kv, { tokens: seq.slice(3), positions: Int32Array.from([3, 4, 5]) }, out);
      expect(maxAbsDiff(out.logitsRow(2, new Float32Array(loaded.config.vocabSize)), last)).toBeLessThan(1e-5);
      kv.dispose();
      out.dispose();
    });
  });
}

describe("bad calls are errors, not crashes", () => {
  let loaded: LoadedModel;
  beforeAll(() => {
    const dir = join(root, "bad-calls");
    mkdirSync(dir);
    writeRandomModel(dir, RANDOM_SPECS[0], 3);
    loaded = loadModel(dir, TEST_PLACEMENT);
  });

  test("token out of vocabulary, cache overflow, bad keep, use after free", () => {
    const kv = KvCache.create(loaded.model, 4);
    const out = StepOutput.create();
    const one = (t: number, p: number) => ({ tokens: Int32Array.from([t]), positions: Int32Array.from([p]) });
    expect(() => forward(loaded.model, kv, one(512, 0), out)).toThrow(/outside the vocabulary/);
    expect(kv.length).toBe(0);
    expect(() => out.argmax()).toThrow(/no results yet/);
    forward(loaded.model, kv, { tokens: Int32Array.from([1, 2, 3]), positions: Int32Array.from([0, 1, 2]) }, out);
    expect(() => forward(loaded.model, kv, { tokens: Int32Array.from([1, 2]), positions: Int32Array.from([3, 4]) }, out)).toThrow(/cache full/);
    expect(kv.length).toBe(3);
    expect(() => kv.keep(1, Int32Array.from([2, 1]))).toThrow(/strictly increasing/);
    expect(() => kv.truncate(4)).toThrow(/outside/);
    const mask = Uint8Array.from([0]);
    expect(() => forward(loaded.model, kv, { ...one(1, 3), mask }, out)).toThrow(/attend to itself/);
    kv.dispose();
    kv.dispose(); // a second dispose is a no-op
    expect(() => kv.length).toThrow(/after dispose/);
    out.dispose();
  });
});
