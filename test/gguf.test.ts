// the GGUF writer (F32 and BF16) read back by an independent minimal reader; the Hugging Face -> llama.cpp
// conversion (names, shapes, hyperparameters, the q/k RoPE permutation, BF16 weights and the cache); the
// peer's platform and f16 refusals. Needs neither the network nor node-llama-cpp; one smoke test loads a BF16
// file in llama.cpp when build/llama-peer is installed, and is skipped otherwise.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { permuteRopeRows } from "../src/convert/llama2c.ts";
import { type GgufTensor, writeGguf } from "../src/formats/gguf.ts";
import { f32ToBf16, listModelTensors, readTensorF32 } from "../src/formats/safetensors.ts";
import { cachedLlamaGguf, interleaveRopeRows, writeLlamaGguf } from "../src/bench/llama-gguf.ts";
import { cpuBinaryPackage, ensureLlamaPeer, LLAMA_PEER_DIR } from "../src/bench/llama-peer-install.ts";
import { runLlamaPeer } from "../src/bench/llama-peer.ts";
import { peerWeights } from "../src/bench/peer.ts";
import { makeTempDir, RANDOM_SPECS, writeRandomModel } from "../src/model/random-model.ts";
import { EagleError } from "../src/util/errors.ts";

const root = makeTempDir("eagle-gguf-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

// ---- a minimal GGUF v3 reader, written from the format description, sharing no code with the writer
interface ReadTensor { name: string; ne: number[]; type: number; offset: number }
interface ReadGguf { version: number; meta: Map<string, unknown>; tensors: ReadTensor[]; dataOffset: number; bytes: Buffer }

function readGguf(path: string): ReadGguf {
  const b = readFileSync(path);
  let at = 0;
  const u32 = () => { const v = b.readUInt32LE(at); at += 4; return v; };
  const u64 = () => { const v = Number(b.readBigUInt64LE(at)); at += 8; return v; };
  const str = () => { const n = u64(); const s = b.toString("utf8", at, at + n); at += n; return s; };
  const scalar = (type: number): unknown => {
    switch (type) {
      case 4: return u32();
      case 5: { const v = b.readInt32LE(at); at += 4; return v; }
      case 6: { const v = b.readFloatLE(at); at += 4; return v; }
      case 7: return b[at++] === 1;
      case 8: return str();
      default: throw new Error(`reader: type ${type} not handled`);
    }
  };
  expect(b.toString("latin1", 0, 4)).toBe("GGUF");
  at = 4;
  const version = u32();
  const nTensors = u64();
  const nMeta = u64();
  const meta = new Map<string, unknown>();
  for (let i = 0; i < nMeta; i++) {
    const key = str();
    const type = u32();
    if (type === 9) {
      const elem = u32();
      const n = u64();
      meta.set(key, Array.from({ length: n }, () => scalar(elem)));
    } else meta.set(key, scalar(type));
  }
  const tensors: ReadTensor[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const dims = u32();
    const ne = Array.from({ length: dims }, u64);
    tensors.push({ name, ne, type: u32(), offset: u64() });
  }
  const alignment = (meta.get("general.alignment") as number | undefined) ?? 32;
  const dataOffset = Math.ceil(at / alignment) * alignment;
  return { version, meta, tensors, dataOffset, bytes: b };
}

const GGML_F32 = 0;
const GGML_BF16 = 30; // ggml.h GGML_TYPE_BF16

function tensorData(g: ReadGguf, t: ReadTensor): Float32Array {
  expect(t.type).toBe(GGML_F32);
  const n = t.ne.reduce((a, x) => a * x, 1);
  const start = g.dataOffset + t.offset;
  return new Float32Array(new Uint8Array(g.bytes.subarray(start, start + 4 * n)).buffer);
}

// a BF16 tensor's raw 16-bit patterns
function tensorBits(g: ReadGguf, t: ReadTensor): Uint16Array {
  expect(t.type).toBe(GGML_BF16);
  const n = t.ne.reduce((a, x) => a * x, 1);
  const start = g.dataOffset + t.offset;
  return new Uint16Array(new Uint8Array(g.bytes.subarray(start, start + 2 * n)).buffer);
}

const fromBits = (bits: number[]) => new Float32Array(Uint32Array.from(bits).buffer);

function expectEagleError(fn: () => unknown, needle: string): void {
  let caught: unknown;
  try { fn(); } catch (e) { caught = e; }
  expect(caught).toBeInstanceOf(EagleError);
  expect((caught as Error).message).toContain(needle);
  expect((caught as Error).message).not.toContain("\n");
}

const ramp = (n: number, scale = 1) => Float32Array.from({ length: n }, (_, i) => (i - n / 3) * scale);

describe("GGUF writer", () => {
  const tensors: GgufTensor[] = [
    { name: "a", shape: [3], data: () => ramp(3) },                       // 12 bytes: the next one is padded
    { name: "blk.0.m", shape: [2, 5], data: () => ramp(10, 0.5) },
    { name: "cube", shape: [4, 3, 2], data: () => ramp(24, -0.25) },
  ];
  const meta = {
    "general.architecture": { type: "string", value: "llama" },
    "x.count": { type: "u32", value: 4000000000 },
    "x.signed": { type: "i32", value: -7 },
    "x.eps": { type: "f32", value: 1e-5 },
    "x.flag": { type: "bool", value: true },
    "x.off": { type: "bool", value: false },
    "x.words": { type: "string[]", value: ["<s>", "▁héllo", ""] },
    "x.floats": { type: "f32[]", value: [0.5, -2, 3.25] },
    "x.ints": { type: "i32[]", value: [1, -1, 2147483647] },
  } as const;

  for (const alignment of [32, 64]) {
    test(`round-trips metadata, shapes, offsets and data (alignment ${alignment})`, () => {
      const path = join(root, `small-${alignment}.gguf`);
      const layout = writeGguf(path, meta, tensors, alignment);
      const g = readGguf(path);
      expect(g.version).toBe(3);
      expect(g.meta.get("general.alignment")).toBe(alignment);
      expect(g.meta.get("general.architecture")).toBe("llama");
      expect(g.meta.get("x.count")).toBe(4000000000);
      expect(g.meta.get("x.signed")).toBe(-7);
      expect(g.meta.get("x.eps")).toBe(Math.fround(1e-5));
      expect(g.meta.get("x.flag")).toBe(true);
      expect(g.meta.get("x.off")).toBe(false);
      expect(g.meta.get("x.words")).toEqual(["<s>", "▁héllo", ""]);
      expect(g.meta.get("x.floats")).toEqual([0.5, -2, 3.25]);
      expect(g.meta.get("x.ints")).toEqual([1, -1, 2147483647]);
      // ggml order: innermost first
      expect(g.tensors.map((t) => [t.name, t.ne, t.type])).toEqual([["a", [3], 0], ["blk.0.m", [5, 2], 0], ["cube", [2, 3, 4], 0]]);
      // 12 bytes, then 40 bytes, each start rounded up to the alignment
      expect(g.tensors.map((t) => t.offset)).toEqual(alignment === 32 ? [0, 32, 96] : [0, 64, 128]);
      expect(layout.tensors.map((t) => t.offset)).toEqual(g.tensors.map((t) => t.offset));
      expect(g.dataOffset).toBe(layout.dataOffset);
      expect(g.dataOffset % alignment).toBe(0);
      for (const t of g.tensors) expect((g.dataOffset + t.offset) % alignment).toBe(0);
      tensors.forEach((t, i) => expect(tensorData(g, g.tensors[i])).toEqual(t.data()));
      expect(g.bytes.length).toBe(layout.bytes);
      expect(g.bytes.length % alignment).toBe(0);
      // padding is zeros
      expect([...g.bytes.subarray(g.dataOffset + 12, g.dataOffset + alignment)].every((x) => x === 0)).toBe(true);
    });
  }

  test("BF16: type 30, 2 bytes an element, aligned offsets, the float32's top half rounded to nearest even", () => {
    // float32 bits -> the bf16 bits expected: exact values keep their top half; below, at and above the
    // halfway point of the dropped 16 bits (a tie goes to the even neighbour)
    const cases: [number, number][] = [
      [0x3fc00000, 0x3fc0], // 1.5, exact
      [0xc0000000, 0xc000], // -2, exact
      [0x3e200000, 0x3e20], // 0.15625, exact
      [0x3f807fff, 0x3f80], // just below half: down
      [0x3f808000, 0x3f80], // tie, 0x3f80 is even: down
      [0x3f818000, 0x3f82], // tie, 0x3f81 is odd: up to even
      [0x3f808001, 0x3f81], // just above half: up
      [0xbf818000, 0xbf82], // the same tie, negative
      [0x00000000, 0x0000],
    ];
    const values = fromBits(cases.map(([f]) => f));
    const path = join(root, "bf16.gguf");
    const layout = writeGguf(path, {}, [
      { name: "norm", shape: [3], data: () => ramp(3) },                         // F32, 12 bytes
      { name: "w", shape: [3, 3], type: "BF16", data: () => values },            // 18 bytes
      { name: "e", shape: [5], type: "BF16", data: () => fromBits([0x40490fdb, 0x3f800000, 0x7f800000, 0xff800000, 0x80000000]) },
    ]);
    const g = readGguf(path);
    expect(g.tensors.map((t) => [t.name, t.ne, t.type])).toEqual([["norm", [3], GGML_F32], ["w", [3, 3], GGML_BF16], ["e", [5], GGML_BF16]]);
    expect(g.tensors.map((t) => t.offset)).toEqual([0, 32, 64]);
    expect(layout.tensors).toEqual([
      { name: "norm", type: "F32", offset: 0, nbytes: 12 },
      { name: "w", type: "BF16", offset: 32, nbytes: 18 },
      { name: "e", type: "BF16", offset: 64, nbytes: 10 },
    ]);
    expect(g.bytes.length).toBe(layout.dataOffset + 96); // 64 + 10, padded to 32
    expect(tensorData(g, g.tensors[0])).toEqual(ramp(3));
    const w = tensorBits(g, g.tensors[1]);
    expect([...w]).toEqual(cases.map(([, h]) => h));
    // an exact value round-trips: widened back, the bits are the float32's
    const widened = Array.from(w, (h) => (h << 16) >>> 0);
    for (const i of [0, 1, 2, 8]) expect(widened[i]).toBe(cases[i][0]);
    // pi rounds (0x40490fdb: dropped half 0x0fdb < 0x8000, down), 1, +-inf and -0 are kept
    expect([...tensorBits(g, g.tensors[2])]).toEqual([0x4049, 0x3f80, 0x7f80, 0xff80, 0x8000]);
    expect([...g.bytes.subarray(g.dataOffset + 32 + 18, g.dataOffset + 64)].every((x) => x === 0)).toBe(true);
  });

  test("BF16 data of the wrong length is refused in one line", () => {
    expectEagleError(() => writeGguf(join(root, "short.gguf"), {}, [{ name: "w", shape: [2, 2], type: "BF16", data: () => new Float32Array(3) }]), "needs 4 floats");
  });

  test("reads each tensor's data once, when it is written", () => {
    const calls: string[] = [];
    const lazy = tensors.map((t) => ({ ...t, data: () => { calls.push(t.name); return t.data(); } }));
    writeGguf(join(root, "lazy.gguf"), {}, lazy);
    expect(calls).toEqual(["a", "blk.0.m", "cube"]);
  });

  test("a failed write leaves the old file and no temporary file", () => {
    const path = join(root, "keep.gguf");
    writeFileSync(path, "old");
    expectEagleError(() => writeGguf(path, {}, [{ name: "bad", shape: [2, 2], data: () => new Float32Array(3) }]), "needs 4 floats");
    expect(readFileSync(path, "utf8")).toBe("old");
    expect(readdirSync(root).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  test("refuses bad tensors and metadata in one line", () => {
    const path = join(root, "refused.gguf");
    expectEagleError(() => writeGguf(path, {}, [tensors[0], tensors[0]]), "repeated");
    expectEagleError(() => writeGguf(path, {}, [{ name: "x".repeat(64), shape: [1], data: () => new Float32Array(1) }]), "longer than 63");
    expectEagleError(() => writeGguf(path, {}, [{ name: "z", shape: [1, 1, 1, 1, 1], data: () => new Float32Array(1) }]), "shape");
    expectEagleError(() => writeGguf(path, { k: { type: "u32", value: -1 } }, []), "not a valid u32");
    expectEagleError(() => writeGguf(path, {}, [], 24), "power of two");
    expect(existsSync(path)).toBe(false);
  });
});

describe("RoPE row permutation", () => {
  test("is the inverse of the llama2.c converter's, both ways", () => {
    const [heads, headDim, cols] = [3, 8, 5];
    const w = ramp(heads * headDim * cols, 0.1);
    expect(interleaveRopeRows(permuteRopeRows(w, heads, cols), heads, cols)).toEqual(w);
    expect(permuteRopeRows(interleaveRopeRows(w, heads, cols), heads, cols)).toEqual(w);
    expect(interleaveRopeRows(w, heads, cols)).not.toEqual(w);
  });

  test("puts a head's rotate-half pairs (i, i + half) side by side", () => {
    // one head of size 4, one column: HF rows [r0 r1 | r2 r3] pair (r0, r2) and (r1, r3)
    expect([...interleaveRopeRows(Float32Array.of(10, 11, 12, 13), 1, 1)]).toEqual([10, 12, 11, 13]);
    // two heads: each permuted within itself
    expect([...interleaveRopeRows(Float32Array.of(0, 1, 2, 3, 4, 5, 6, 7), 2, 1)]).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
  });

  test("attention scores agree: rotate-half RoPE on HF rows = interleaved RoPE on the permuted rows", () => {
    const [headDim, cols, half] = [8, 6, 4];
    const inv = Array.from({ length: half }, (_, i) => 1 / 10000 ** ((2 * i) / headDim));
    const wq = ramp(headDim * cols, 0.07).map((x, i) => x + Math.sin(i));
    const wk = ramp(headDim * cols, -0.05).map((x, i) => x + Math.cos(3 * i));
    const x = ramp(cols, 0.3);
    const matvec = (w: Float32Array) => Array.from({ length: headDim }, (_, r) => x.reduce((s, xv, c) => s + w[r * cols + c] * xv, 0));
    const rotateHalf = (v: number[], pos: number) => v.map((_, d) => {
      const i = d % half, a = pos * inv[i], pair = d < half ? -v[d + half] : v[d - half];
      return v[d] * Math.cos(a) + pair * Math.sin(a);
    });
    const interleaved = (v: number[], pos: number) => v.map((_, d) => {
      const i = d >> 1, a = pos * inv[i], pair = d % 2 === 0 ? -v[d + 1] : v[d - 1];
      return v[d] * Math.cos(a) + pair * Math.sin(a);
    });
    const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i], 0);
    for (const [m, n] of [[5, 2], [17, 0], [3, 3]]) {
      const hf = dot(rotateHalf(matvec(wq), m), rotateHalf(matvec(wk), n));
      const cpp = dot(interleaved(matvec(interleaveRopeRows(wq, 1, cols)), m), interleaved(matvec(interleaveRopeRows(wk, 1, cols)), n));
      expect(cpp).toBeCloseTo(hf, 4);
      // without the permutation the scores differ: the check can fail
      const wrong = dot(interleaved(matvec(wq), m), interleaved(matvec(wk), n));
      if (m !== n) expect(Math.abs(wrong - hf)).toBeGreaterThan(1e-3);
    }
  });
});

describe("Hugging Face model -> llama.cpp GGUF", () => {
  const gqaTied = RANDOM_SPECS.find((s) => s.name === "llama-gqa-tied")!; // 8 heads, 2 kv heads, tied
  const untied = RANDOM_SPECS.find((s) => s.name === "llama-mha")!;
  const tiedDir = join(root, "tied");
  const untiedDir = join(root, "untied");
  beforeAll(() => {
    for (const d of [tiedDir, untiedDir]) mkdirSync(d);
    writeRandomModel(tiedDir, gqaTied, 3);
    writeRandomModel(untiedDir, untied, 4);
  });

  test("writes llama.* hyperparameters, llama.cpp tensor names and ggml shapes", () => {
    const path = join(root, "tied.gguf");
    writeLlamaGguf(tiedDir, path);
    const g = readGguf(path);
    const s = gqaTied;
    expect(g.meta.get("general.architecture")).toBe("llama");
    expect(g.meta.get("llama.embedding_length")).toBe(s.hiddenSize);
    expect(g.meta.get("llama.block_count")).toBe(s.layers);
    expect(g.meta.get("llama.feed_forward_length")).toBe(s.intermediateSize);
    expect(g.meta.get("llama.attention.head_count")).toBe(s.heads);
    expect(g.meta.get("llama.attention.head_count_kv")).toBe(s.kvHeads);
    expect(g.meta.get("llama.rope.dimension_count")).toBe(s.hiddenSize / s.heads);
    expect(g.meta.get("llama.rope.freq_base")).toBe(10000);
    expect(g.meta.get("llama.context_length")).toBe(512);
    expect(g.meta.get("llama.vocab_size")).toBe(s.vocabSize);
    expect(g.meta.get("tokenizer.ggml.model")).toBe("llama");
    const tokens = g.meta.get("tokenizer.ggml.tokens") as string[];
    expect(tokens.length).toBe(s.vocabSize);
    expect(tokens.slice(0, 4)).toEqual(["<unk>", "<s>", "</s>", "<0x00>"]);
    expect((g.meta.get("tokenizer.ggml.token_type") as number[]).length).toBe(s.vocabSize);
    const byName = new Map(g.tensors.map((t) => [t.name, t]));
    expect(byName.has("output.weight")).toBe(false); // tied: llama.cpp falls back to token_embd
    expect(byName.get("token_embd.weight")!.ne).toEqual([s.hiddenSize, s.vocabSize]);
    const headDim = s.hiddenSize / s.heads;
    expect(byName.get("blk.2.attn_k.weight")!.ne).toEqual([s.hiddenSize, s.kvHeads * headDim]);
    expect(byName.get("blk.0.ffn_down.weight")!.ne).toEqual([s.intermediateSize, s.hiddenSize]);
    expect(g.tensors.length).toBe(2 + 9 * s.layers);
    // q and k rows permuted per head (k with the kv head count), v untouched
    const src = listModelTensors(tiedDir);
    const q = readTensorF32(src.get("model.layers.1.self_attn.q_proj.weight")!);
    const k = readTensorF32(src.get("model.layers.1.self_attn.k_proj.weight")!);
    const v = readTensorF32(src.get("model.layers.1.self_attn.v_proj.weight")!);
    expect(tensorData(g, byName.get("blk.1.attn_q.weight")!)).toEqual(interleaveRopeRows(q, s.heads, s.hiddenSize));
    expect(tensorData(g, byName.get("blk.1.attn_k.weight")!)).toEqual(interleaveRopeRows(k, s.kvHeads, s.hiddenSize));
    expect(tensorData(g, byName.get("blk.1.attn_v.weight")!)).toEqual(v);
  });

  test("BF16: matrices and the embedding BF16, 1-D tensors F32, file type MOSTLY_BF16", () => {
    const path = join(root, "tied-bf16.gguf");
    const layout = writeLlamaGguf(tiedDir, path, "BF16");
    const g = readGguf(path);
    writeLlamaGguf(tiedDir, join(root, "tied-f32.gguf"));
    const f32 = readGguf(join(root, "tied-f32.gguf"));
    expect(g.meta.get("general.file_type")).toBe(32); // llama.h LLAMA_FTYPE_MOSTLY_BF16
    expect(f32.meta.get("general.file_type")).toBe(0); // LLAMA_FTYPE_ALL_F32
    for (const t of g.tensors) expect([t.name, t.type]).toEqual([t.name, t.ne.length === 1 ? GGML_F32 : GGML_BF16]);
    const byName = new Map(g.tensors.map((t) => [t.name, t]));
    expect(byName.get("token_embd.weight")!.type).toBe(GGML_BF16);
    expect(byName.get("blk.0.attn_norm.weight")!.type).toBe(GGML_F32);
    for (const t of layout.tensors) expect((g.dataOffset + t.offset) % 32).toBe(0);
    // the permuted float32 rows, rounded; norms as they are
    const src = listModelTensors(tiedDir);
    const q = readTensorF32(src.get("model.layers.1.self_attn.q_proj.weight")!);
    expect(tensorBits(g, byName.get("blk.1.attn_q.weight")!)).toEqual(f32ToBf16(interleaveRopeRows(q, gqaTied.heads, gqaTied.hiddenSize)));
    expect(tensorData(g, byName.get("output_norm.weight")!)).toEqual(readTensorF32(src.get("model.norm.weight")!));
    expect(g.bytes.length).toBeLessThan(0.6 * f32.bytes.length);
  });

  test("BF16 from a bf16 checkpoint copies the bits as they are", () => {
    const dir = join(root, "bf16-src");
    mkdirSync(dir);
    writeRandomModel(dir, RANDOM_SPECS.find((s) => s.name === "llama-bf16")!, 5);
    const path = join(root, "bf16-src.gguf");
    writeLlamaGguf(dir, path, "BF16");
    const g = readGguf(path);
    const byName = new Map(g.tensors.map((t) => [t.name, t]));
    const raw = (name: string) => {
      const info = listModelTensors(dir).get(name)!;
      expect(info.dtype).toBe("BF16");
      return new Uint16Array(new Uint8Array(readFileSync(info.file).subarray(info.offset, info.offset + info.nbytes)).buffer);
    };
    expect(tensorBits(g, byName.get("blk.0.attn_v.weight")!)).toEqual(raw("model.layers.0.self_attn.v_proj.weight"));
    expect(tensorBits(g, byName.get("token_embd.weight")!)).toEqual(raw("model.embed_tokens.weight"));
  });

  test("an untied model keeps its own output matrix", () => {
    const path = join(root, "untied.gguf");
    writeLlamaGguf(untiedDir, path);
    const names = readGguf(path).tensors.map((t) => t.name);
    expect(names).toContain("output.weight");
    expect(names).toContain("output_norm.weight");
  });

  test("the cache rewrites only when a source file changes, and drops the stale file of the same type", () => {
    const cache = join(root, "cache");
    const file = (p: string) => p.split("/").pop()!;
    const first = cachedLlamaGguf(untiedDir, "F32", cache);
    expect(first.written).toBe(true);
    const again = cachedLlamaGguf(untiedDir, "F32", cache);
    expect(again).toEqual({ ...first, written: false });
    // the BF16 file is another entry, and neither removes the other
    const bf16 = cachedLlamaGguf(untiedDir, "BF16", cache);
    expect(bf16.written).toBe(true);
    expect(bf16.path).not.toBe(first.path);
    expect(bf16.bytes).toBeLessThan(first.bytes);
    expect(cachedLlamaGguf(untiedDir, "F32", cache).written).toBe(false);
    expect(readdirSync(cache).sort()).toEqual([file(first.path), file(bf16.path)].sort());
    const later = new Date(Date.now() + 5000);
    utimesSync(join(untiedDir, "model.safetensors"), later, later);
    const changed = cachedLlamaGguf(untiedDir, "F32", cache);
    expect(changed.written).toBe(true);
    expect(changed.path).not.toBe(first.path);
    expect(readdirSync(cache).sort()).toEqual([file(changed.path), file(bf16.path)].sort());
  });

  // node-llama-cpp is installed by bench --peer llama.cpp on demand; CI has none
  test.skipIf(!existsSync(join(LLAMA_PEER_DIR, "eagle-peer.json")))("llama.cpp loads a BF16 file and decodes greedily", () => {
    const path = join(root, "smoke-bf16.gguf");
    writeLlamaGguf(tiedDir, path, "BF16");
    const r = runLlamaPeer(ensureLlamaPeer(), { gguf: path, threads: 1, contextSize: 64, prompts: [[1, 7, 42], [1, 300]], newTokens: 6, warmupTokens: 2 });
    expect(r.tokens.map((t) => t.length)).toEqual([6, 6]);
    for (const t of r.tokens.flat()) expect(t >= 0 && t < gqaTied.vocabSize).toBe(true);
  });
});

test("the peer refuses a platform without a prebuilt CPU binary, in one line", () => {
  expect(cpuBinaryPackage("linux", "x64")).toBe("@node-llama-cpp/linux-x64");
  expectEagleError(() => cpuBinaryPackage("darwin", "arm64"), "no prebuilt CPU binary of node-llama-cpp for darwin-arm64");
});

test("the peer's weights follow eagle's dtype, and f16 is refused in one line", () => {
  expect(peerWeights("f32")).toBe("F32");
  expect(peerWeights("bf16")).toBe("BF16");
  expectEagleError(() => peerWeights("f16"), "--peer llama.cpp: no f16 peer");
});
