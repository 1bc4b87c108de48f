import { SHARED_STORIES } from "./support/paths.ts";
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { convertLlama2c, readLlama2cCheckpoint } from "../src/convert/llama2c.ts";
import { readLlama2cTokenizer } from "../src/convert/llama2c-tokenizer.ts";
import { EagleError } from "../src/util/errors.ts";
import { listModelTensors, readTensorF32 } from "../src/formats/safetensors.ts";

const stories = SHARED_STORIES;
const checkpoint = join(stories, "stories260K.bin");
const tokenizer = join(stories, "tok512.bin");
const tmp = mkdtempSync(join(tmpdir(), "eagle-convert-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const out = join(tmp, "stories");
convertLlama2c({ checkpoint, tokenizer, out });
const original = readLlama2cCheckpoint(checkpoint);
const tensors = listModelTensors(out);
const load = (name: string) => readTensorF32(tensors.get(name)!);
const json = (name: string) => JSON.parse(readFileSync(join(out, name), "utf8"));

describe("converted directory", () => {
  test("config.json describes stories260K", () => {
    expect(json("config.json")).toMatchObject({
      architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: 64, intermediate_size: 172,
      num_hidden_layers: 5, num_attention_heads: 8, num_key_value_heads: 4, vocab_size: 512,
      max_position_embeddings: 512, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: true,
      bos_token_id: 1, eos_token_id: [2, 1], hidden_act: "silu", torch_dtype: "float32",
    });
    // llama2.c's stories end with BOS (run.c stops there), so it is an end-of-sequence id beside EOS
    expect(json("generation_config.json")).toEqual({ bos_token_id: 1, eos_token_id: [2, 1] });
    expect(json("tokenizer_config.json")).toMatchObject({ bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>", add_bos_token: true, add_eos_token: false });
  });

  test("the shipped models/stories260K is what the converter writes (scripts/convert-stories.ts --force)", () => {
    const shipped = resolve(import.meta.dir, "../models/stories260K");
    for (const name of ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors", "README.md", "LICENSE"]) {
      expect({ name, same: readFileSync(join(shipped, name)).equals(readFileSync(join(out, name))) }).toEqual({ name, same: true });
    }
  });

  test("provenance and licence are written", () => {
    const readme = readFileSync(join(out, "README.md"), "utf8");
    expect(readme).toContain("b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696");
    expect(readme).toContain("037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312");
    expect(readFileSync(join(out, "LICENSE"), "utf8")).toContain("Copyright (c) 2023 Andrej Karpathy");
  });

  test("every HF tensor is there with its shape, and no lm_head when tied", () => {
    expect(tensors.size).toBe(1 + 5 * 9 + 1);
    expect(tensors.has("lm_head.weight")).toBe(false);
    expect(tensors.get("model.embed_tokens.weight")!.shape).toEqual([512, 64]);
    expect(tensors.get("model.layers.4.self_attn.k_proj.weight")!.shape).toEqual([32, 64]);
    expect(tensors.get("model.layers.0.mlp.down_proj.weight")!.shape).toEqual([64, 172]);
  });

  test("unpermuted tensors hold the original values", () => {
    const w = original.weights;
    expect(load("model.embed_tokens.weight")).toEqual(w.tokenEmbedding);
    expect(load("model.layers.2.self_attn.v_proj.weight")).toEqual(w.wv.subarray(2 * 32 * 64, 3 * 32 * 64));
    expect(load("model.layers.1.mlp.gate_proj.weight")).toEqual(w.w1.subarray(172 * 64, 2 * 172 * 64));
    expect(load("model.layers.1.mlp.up_proj.weight")).toEqual(w.w3.subarray(172 * 64, 2 * 172 * 64));
    expect(load("model.layers.1.mlp.down_proj.weight")).toEqual(w.w2.subarray(64 * 172, 2 * 64 * 172));
    expect(load("model.norm.weight")).toEqual(w.rmsFinal);
  });
});

// the two RoPE conventions, for one head vector at position pos (theta 10000)
const freq = (i: number, headDim: number) => 10000 ** (-(2 * i) / headDim);
function ropeAdjacent(x: number[], pos: number): number[] {
  const y = [...x];
  for (let i = 0; i < x.length / 2; i++) {
    const c = Math.cos(pos * freq(i, x.length)), s = Math.sin(pos * freq(i, x.length));
    y[2 * i] = x[2 * i] * c - x[2 * i + 1] * s;
    y[2 * i + 1] = x[2 * i] * s + x[2 * i + 1] * c;
  }
  return y;
}
function ropeRotateHalf(x: number[], pos: number): number[] {
  const half = x.length / 2;
  const y = [...x];
  for (let i = 0; i < half; i++) {
    const c = Math.cos(pos * freq(i, x.length)), s = Math.sin(pos * freq(i, x.length));
    y[i] = x[i] * c - x[i + half] * s;
    y[i + half] = x[i + half] * c + x[i] * s;
  }
  return y;
}
// hf order of a head vector: the even elements, then the odd ones
const toHfOrder = (x: number[]) => [...x.filter((_, i) => i % 2 === 0), ...x.filter((_, i) => i % 2 === 1)];
// rows [row0, row0 + n) of a (rows, cols) matrix times x
const matvec = (w: Float32Array, cols: number, row0: number, n: number, x: number[]) =>
  Array.from({ length: n }, (_, r) => x.reduce((acc, xi, c) => acc + w[(row0 + r) * cols + c] * xi, 0));

describe("RoPE row permutation", () => {
  const x = Array.from({ length: 64 }, (_, i) => Math.sin(i * 1.7) + 0.1 * i);
  const headDim = 8;
  const cases = [
    { name: "q", hf: "self_attn.q_proj.weight", orig: original.weights.wq, rows: 64, head: 5 },
    { name: "k", hf: "self_attn.k_proj.weight", orig: original.weights.wk, rows: 32, head: 3 },
  ];
  for (const c of cases) {
    test(`${c.name}: rotate-half on permuted rows = permuted adjacent-pair on original rows`, () => {
      const layer = 3;
      const orig = c.orig.subarray(layer * c.rows * 64, (layer + 1) * c.rows * 64);
      const hf = load(`model.layers.${layer}.${c.hf}`);
      const qOrig = matvec(orig, 64, c.head * headDim, headDim, x);
      const qHf = matvec(hf, 64, c.head * headDim, headDim, x);
      for (const pos of [0, 1, 7, 300]) {
        const want = toHfOrder(ropeAdjacent(qOrig, pos));
        ropeRotateHalf(qHf, pos).forEach((v, i) => expect(v).toBeCloseTo(want[i], 4));
      }
    });
  }

  test("attention scores are unchanged: q.k after RoPE agrees between layouts", () => {
    const layer = 0, qHead = 6, kvHead = 3; // 8 heads share 4 kv heads: head 6 reads kv head 3
    const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i], 0);
    const wq = original.weights.wq.subarray(0, 64 * 64), wk = original.weights.wk.subarray(0, 32 * 64);
    const q = matvec(wq, 64, qHead * headDim, headDim, x), k = matvec(wk, 64, kvHead * headDim, headDim, x.map((v) => -v * 0.5));
    const qHf = matvec(load(`model.layers.${layer}.self_attn.q_proj.weight`), 64, qHead * headDim, headDim, x);
    const kHf = matvec(load(`model.layers.${layer}.self_attn.k_proj.weight`), 64, kvHead * headDim, headDim, x.map((v) => -v * 0.5));
    expect(dot(ropeRotateHalf(qHf, 9), ropeRotateHalf(kHf, 4))).toBeCloseTo(dot(ropeAdjacent(q, 9), ropeAdjacent(k, 4)), 4);
  });
});

describe("refusals and errors", () => {
  test("an existing non-empty directory is refused without force, overwritten with it", () => {
    expect(() => convertLlama2c({ checkpoint, tokenizer, out })).toThrow(EagleError);
    expect(() => convertLlama2c({ checkpoint, tokenizer, out })).toThrow(`${out}: output directory is not empty (pass --force to overwrite)`);
    convertLlama2c({ checkpoint, tokenizer, out, force: true });
    expect(existsSync(join(out, "model.safetensors"))).toBe(true);
  });

  test("a SentencePiece .model given as --tokenizer is named as the wrong format", () => {
    const want = "is a SentencePiece model file; convert-llama2c needs llama2.c's tokenizer .bin (such as tok512.bin)";
    const real = join(stories, "tok512.model");
    expect(() => convertLlama2c({ checkpoint, tokenizer: real, out: join(tmp, "spm") })).toThrow(`${real} ${want}`);
    expect(existsSync(join(tmp, "spm"))).toBe(false);
    // a hand-made ModelProto: repeated SentencePiece pieces = 1 { string piece = 1; float score = 2; Type type = 3 }
    const str = (field: number, text: string) => [(field << 3) | 2, Buffer.byteLength(text), ...Buffer.from(text)];
    const piece = (text: string, type: number) => [...str(1, text), (2 << 3) | 5, 0, 0, 0x80, 0xbf, (3 << 3) | 0, type];
    const model = Buffer.from([...["<unk>", "\u2581the"].flatMap((t, i) => {
      const p = piece(t, i === 0 ? 2 : 1);
      return [(1 << 3) | 2, p.length, ...p];
    })]);
    const made = join(tmp, "made.model");
    writeFileSync(made, model);
    expect(() => readLlama2cTokenizer(made)).toThrow(`${made} ${want}`);
    // a llama2.c tokenizer whose first byte happens to be the same tag (max_token_length 10) still reads
    const tok = (text: string) => [...new Uint8Array(new Float32Array([-1]).buffer), Buffer.byteLength(text), 0, 0, 0, ...Buffer.from(text)];
    const ten = join(tmp, "ten.bin");
    writeFileSync(ten, Buffer.from([10, 0, 0, 0, ...tok("<unk>"), ...tok("\n<s>\n"), ...tok("ab")]));
    expect(readLlama2cTokenizer(ten).pieces).toEqual(["<unk>", "\n<s>\n", "ab"]);
  });

  test("an --out that is a file is refused, even with force, and the file is kept", () => {
    const file = join(tmp, "a-file");
    writeFileSync(file, "keep me");
    expect(() => convertLlama2c({ checkpoint, tokenizer, out: file, force: true })).toThrow(/a-file: exists and is not a directory/);
    expect(readFileSync(file, "utf8")).toBe("keep me");
  });

  test("an empty existing directory is fine", () => {
    const empty = join(tmp, "empty");
    mkdirSync(empty);
    convertLlama2c({ checkpoint, tokenizer, out: empty });
    expect(existsSync(join(empty, "tokenizer.json"))).toBe(true);
  });

  test("a truncated checkpoint names the file and both sizes", () => {
    const cut = join(tmp, "cut.bin");
    writeFileSync(cut, readFileSync(checkpoint).subarray(0, 1000));
    expect(() => convertLlama2c({ checkpoint: cut, tokenizer, out: join(tmp, "cut") })).toThrow(
      `${cut}: truncated checkpoint: expected 1056540 bytes, got 1000`,
    );
    expect(existsSync(join(tmp, "cut"))).toBe(false);
  });

  test("an untied checkpoint (negative vocab_size) gets lm_head.weight", () => {
    const header = [8, 16, 1, 2, 1, -512, 4];
    // embed, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, rope tables, wcls
    const floats = 512 * 8 + 8 + 64 + 32 + 32 + 64 + 8 + 3 * 128 + 8 + 2 * 8 + 512 * 8;
    const data = Float32Array.from({ length: floats }, (_, i) => i);
    const path = join(tmp, "untied.bin");
    writeFileSync(path, Buffer.concat([Buffer.from(new Int32Array(header).buffer), Buffer.from(data.buffer)]));
    const dir = join(tmp, "untied");
    convertLlama2c({ checkpoint: path, tokenizer, out: dir });
    expect(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).tie_word_embeddings).toBe(false);
    const lmHead = readTensorF32(listModelTensors(dir).get("lm_head.weight")!);
    expect(lmHead[0]).toBe(floats - 512 * 8);
  });
});
