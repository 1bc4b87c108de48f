// FFI misuse: freed, foreign, null and mistyped handles, wrong buffer sizes and element types, bad dtype
// and device codes. Each must come back as an error (from engine.ts or from the shim's status), never a
// crash; and every handle made is freed again (the shim's live-handle counts return to where they were).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ptr } from "bun:ffi";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { cpuKernels, cudaAvailable, DeviceCode, DTypeCode, forward, KvCache, liveHandles, MappedFile, Model, packConfig, StepOutput, WeightKind } from "../src/native/engine.ts";
import { shim } from "../src/native/ffi.ts";
import { type LoadedModel, loadModel } from "../src/model/loader.ts";
import { makeTempDir, RANDOM_SPECS, writeRandomModel } from "../src/model/random-model.ts";

const root = makeTempDir("eagle-ffi-");
let loaded: LoadedModel;
let before: ReturnType<typeof liveHandles>;

beforeAll(() => {
  before = liveHandles();
  const dir = join(root, "m");
  mkdirSync(dir);
  writeRandomModel(dir, RANDOM_SPECS[0], 5);
  loaded = loadModel(dir, { device: "cpu", dtype: "f32" });
});

afterAll(() => {
  loaded.model.dispose();
  rmSync(root, { recursive: true, force: true });
});

const lastError = () => String(shim().et_last_error());
const one = { tokens: Int32Array.of(1), positions: Int32Array.of(0) };

describe("handles through the raw ABI", () => {
  test("a freed handle is refused, and freeing it again is a no-op", () => {
    const kv = KvCache.create(loaded.model, 8);
    const p = KvCache.ptrOf(kv);
    const len = new Int32Array(1);
    expect(shim().et_kv_len(p, len)).toBe(0);
    kv.dispose();
    expect(shim().et_kv_len(p, len)).toBe(-1);
    expect(lastError()).toMatch(/et_kv_len: not a live et_kv/);
    shim().et_kv_free(p); // a C-level double free
    shim().et_kv_free(p);
    expect(shim().et_kv_truncate(p, 0)).toBe(-1);
  });

  test("a handle of another kind, a foreign pointer and null are refused", () => {
    const out = StepOutput.create();
    const len = new Int32Array(1);
    expect(shim().et_kv_len(StepOutput.ptrOf(out), len)).toBe(-1);
    expect(lastError()).toMatch(/expected an et_kv, got an et_out/);
    const junk = new Uint8Array(256).fill(0xab); // memory the shim never handed out
    expect(shim().et_kv_len(ptr(junk), len)).toBe(-1);
    expect(lastError()).toMatch(/not a live et_kv/);
    expect(shim().et_out_rows(null, len)).toBe(-1);
    expect(lastError()).toMatch(/null et_out/);
    const rc = shim().et_forward(ptr(junk), null, one.tokens, one.positions, 1, null, 0, StepOutput.ptrOf(out));
    expect(rc).toBe(-1);
    expect(lastError()).toMatch(/et_forward: not a live et_model/);
    shim().et_model_free(ptr(junk)); // freeing a pointer it never made: ignored
    shim().et_out_free(ptr(junk));
    out.dispose();
  });

  test("a cache used with another model is refused", () => {
    const other = loadModel(loaded.dir, { device: "cpu", dtype: "f32" });
    const kv = KvCache.create(other.model, 4);
    const out = StepOutput.create();
    expect(() => forward(loaded.model, kv, one, out)).toThrow(/belongs to another model/);
    kv.dispose();
    out.dispose();
    other.model.dispose();
  });
});

describe("sizes and element types", () => {
  test("reader buffers of the wrong length or type are refused before any byte is written", () => {
    const kv = KvCache.create(loaded.model, 8);
    const out = StepOutput.create();
    forward(loaded.model, kv, one, out);
    const vocab = loaded.config.vocabSize;
    const short = new Float32Array(vocab + 8).subarray(0, vocab - 1);
    expect(() => out.logitsRow(0, short)).toThrow(/buffer holds 511 floats, a row has 512/);
    expect(() => out.hiddenRow(0, new Float32Array(3))).toThrow(/buffer holds 3 floats/);
    // the raw ABI checks the length it is told too
    expect(shim().et_out_logits_row(StepOutput.ptrOf(out), 0, new Float32Array(vocab * 2), vocab * 2)).toBe(-1);
    expect(() => out.logitsRow(0, new Int32Array(vocab) as unknown as Float32Array)).toThrow(/must be an Float32Array, got Int32Array/);
    expect(() => out.topk(0)).toThrow(/top-k 0/);
    expect(() => out.topk(vocab + 1)).toThrow(/outside \[1, 512\]/);
    expect(() => out.argmax(Int32Array.of(1))).toThrow(/row 1 outside/);
    kv.dispose();
    out.dispose();
  });

  test("token, position and mask arrays of the wrong type or length are refused", () => {
    const kv = KvCache.create(loaded.model, 8);
    const out = StepOutput.create();
    const asAny = (x: unknown) => x as Int32Array;
    expect(() => forward(loaded.model, kv, { tokens: asAny(Float32Array.of(1)), positions: Int32Array.of(0) }, out)).toThrow(/tokens must be an Int32Array, got Float32Array/);
    expect(() => forward(loaded.model, kv, { tokens: asAny([1]), positions: Int32Array.of(0) }, out)).toThrow(/tokens must be an Int32Array, got Array/);
    expect(() => forward(loaded.model, kv, { tokens: Int32Array.of(1, 2), positions: Int32Array.of(0) }, out)).toThrow(/2 tokens but 1 positions/);
    expect(() => forward(loaded.model, kv, { ...one, mask: Uint8Array.of(1, 1) }, out)).toThrow(/mask has 2 entries/);
    expect(() => kv.keep(0, asAny(Float64Array.of(0)))).toThrow(/slots must be an Int32Array/);
    expect(kv.length).toBe(0);
    kv.dispose();
    out.dispose();
  });

  test("bad dtype and device codes, and weights outside their file, are errors", () => {
    const c = { ...loaded.model.config };
    const inv = new Float32Array(c.headDim / 2).fill(1);
    expect(() => Model.create({ ...c, dtype: 9 as DTypeCode }, inv)).toThrow(/dtype/);
    expect(() => Model.create({ ...c, device: 7 as DeviceCode }, inv)).toThrow(/device/);
    if (!cudaAvailable()) expect(() => Model.create({ ...c, device: DeviceCode.CUDA }, inv)).toThrow(/CUDA|cuda/);
    const raw = new BigUint64Array(1);
    expect(shim().et_model_new(new Uint8Array(packConfig({ ...c, nHeads: 0 })), inv, raw)).toBe(-1);
    const m = Model.create(c, inv);
    const file = MappedFile.open(join(loaded.dir, "config.json"));
    const src = { file, offset: file.size - 8, nbytes: 4 * c.hiddenSize, dtype: DTypeCode.F32, shape: [c.hiddenSize] };
    expect(() => m.setWeight(WeightKind.Norm, -1, src, "norm")).toThrow(/outside the file/);
    expect(() => m.setWeight(WeightKind.Norm, -1, { ...src, nbytes: 4, offset: 0 }, "norm")).toThrow(/do not hold/);
    expect(() => m.setWeight(WeightKind.Norm, -1, { ...src, nbytes: 4, dtype: 5 as DTypeCode, shape: [1] }, "norm")).toThrow(/shape|dtype/);
    expect(() => m.finish()).toThrow(/missing weight/);
    expect(() => KvCache.create(m, 4).dispose()).not.toThrow(); // a cache for an unfinished model is fine...
    const kv = KvCache.create(m, 4);
    const out = StepOutput.create();
    expect(() => forward(m, kv, one, out)).toThrow(/finish/); // ...a forward is not
    kv.dispose();
    out.dispose();
    file.dispose();
    m.dispose();
  });
});

test("a draft head of another dtype than its target: shared on the CPU kernels, refused without them", () => {
  const bf16 = loadModel(loaded.dir, { device: "cpu", dtype: "bf16" });
  const c = loaded.model.config;
  const draft = Model.create({ ...c, nLayers: 1, draft: true, fcBias: false, tieEmbeddings: false, dtype: DTypeCode.F32 }, new Float32Array(c.headDim / 2).fill(1));
  if (cpuKernels() === "off") expect(() => draft.shareFrom(bf16.model)).toThrow(/must share device and dtype/);
  else expect(() => draft.shareFrom(bf16.model)).not.toThrow(); // the kernels compute in float32 whatever the weights
  draft.dispose();
  bf16.model.dispose();
});

test("every handle made above was freed", () => {
  loaded.model.dispose();
  expect(liveHandles()).toEqual(before);
  loaded = loadModel(loaded.dir, { device: "cpu", dtype: "f32" }); // for afterAll
});
