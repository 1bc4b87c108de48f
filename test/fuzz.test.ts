// fuzzing the parsers that read untrusted files: seeded mutations and truncations of valid inputs. Every
// case must end in a value or an EagleError: never another exception, a crash, a hang or a huge allocation.
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseItems } from "../src/batch/items.ts";
import { loadConfig } from "../src/model/config.ts";
import { readLlama2cCheckpoint } from "../src/convert/llama2c.ts";
import { EagleError } from "../src/util/errors.ts";
import { DEFAULT_MODEL_DIR } from "../src/util/paths.ts";
import { makeTempDir, writeRandomDraftHead, writeRandomModel } from "../src/model/random-model.ts";
import { Rng } from "../src/util/rng.ts";
import { readSafetensorsHeader, readTensorF32, writeSafetensors } from "../src/formats/safetensors.ts";
import { readTorchZip } from "../src/formats/torch-zip.ts";
import { writeTorchZip } from "./support/torch-zip-writer.ts";
import { readTreeFile } from "../src/decoding/static-tree.ts";
import { TextTokenizer } from "../src/model/tokenizer.ts";

const root = makeTempDir("eagle-fuzz-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A mutated copy of `bytes`: byte flips, insertions of extreme values, truncation, or a spliced chunk. */
function mutate(bytes: Uint8Array, rng: Rng, hot: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  const at = () => (rng.next() < 0.7 ? Math.floor(rng.next() * Math.min(hot, out.length)) : Math.floor(rng.next() * out.length));
  switch (rng.nextU32() % 4) {
    case 0:
      for (let i = 0, n = 1 + (rng.nextU32() % 8); i < n; i++) out[at()] = rng.nextU32() & 0xff;
      return out;
    case 1:
      return out.subarray(0, at());
    case 2: {
      const extreme = [0xff, 0x7f, 0x80, 0x00, 0x2d, 0x39][rng.nextU32() % 6];
      const i = at();
      for (let k = 0; k < 8 && i + k < out.length; k++) out[i + k] = extreme;
      return out;
    }
    default: {
      const from = at(), to = at(), len = rng.nextU32() % 64;
      out.copyWithin(to, from, from + len);
      return out;
    }
  }
}

/** Runs `parse` on `cases` mutations; returns how many parsed and how many were refused. */
function fuzz(name: string, original: Uint8Array, cases: number, hot: number, parse: (path: string, bytes: Uint8Array) => unknown): { ok: number; refused: number } {
  const rng = new Rng(0xe461e);
  const path = join(root, name);
  let ok = 0;
  let refused = 0;
  for (let i = 0; i < cases; i++) {
    const bytes = mutate(original, rng, hot);
    writeFileSync(path, bytes);
    try {
      parse(path, bytes);
      ok++;
    } catch (e) {
      if (!(e instanceof EagleError)) throw new Error(`case ${i} of ${name}: ${(e as Error).stack}`);
      refused++;
    }
  }
  expect(ok + refused).toBe(cases);
  expect(refused).toBeGreaterThan(0);
  return { ok, refused };
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("parsers survive malformed input", () => {
  test("safetensors headers and offsets: 3000 cases", () => {
    const small = join(root, "small.safetensors");
    writeSafetensors(small, [
      { name: "a", dtype: "F32", shape: [2, 3], data: new Float32Array(6) },
      { name: "b.weight", dtype: "BF16", shape: [4], data: new Uint16Array(4) },
      { name: "c", dtype: "F16", shape: [1, 1, 2], data: new Uint16Array(2) },
    ], { format: "pt" });
    const file = readFileSync(small);
    const headerLen = Number(file.readBigUInt64LE(0)) + 8;
    fuzz("model.safetensors", file, 3000, headerLen, (p) => readSafetensorsHeader(p));
  });

  test("config.json: 2000 cases", () => {
    const dir = join(root, "cfg");
    const bytes = readFileSync(join(DEFAULT_MODEL_DIR, "config.json"));
    require("node:fs").mkdirSync(dir);
    fuzz("cfg/config.json", bytes, 2000, bytes.length, () => loadConfig(dir));
  });

  test("tokenizer.json and tokenizer_config.json: 600 cases", () => {
    const dir = join(root, "tok");
    require("node:fs").mkdirSync(dir);
    copyFileSync(join(DEFAULT_MODEL_DIR, "tokenizer_config.json"), join(dir, "tokenizer_config.json"));
    const bytes = readFileSync(join(DEFAULT_MODEL_DIR, "tokenizer.json"));
    fuzz("tok/tokenizer.json", bytes, 600, bytes.length, () => TextTokenizer.load(dir).encode("Once upon a time"));
  });

  test("EAGLE-1 tree files: 2000 cases", () => {
    const bytes = new TextEncoder().encode(JSON.stringify([[0], [1], [2], [0, 0], [0, 1], [1, 0], [0, 0, 0]]));
    fuzz("tree.json", bytes, 2000, bytes.length, (p) => readTreeFile(p));
  });

  test("llama2.c checkpoints: 2000 cases", () => {
    // the real header, then a tiny model of the same layout: dim 8, hidden 16, 1 layer, 2 heads, vocab 16, seq 4
    const header = Int32Array.of(8, 16, 1, 2, 2, 16, 4);
    const floats = 16 * 8 + 8 + 64 + 64 + 64 + 64 + 8 + 3 * 128 + 8 + 2 * 4 * 2;
    const bytes = new Uint8Array(28 + 4 * floats);
    bytes.set(new Uint8Array(header.buffer), 0);
    writeFileSync(join(root, "tiny.bin"), bytes);
    readLlama2cCheckpoint(join(root, "tiny.bin")); // the unmutated file is valid
    fuzz("tiny.bin", bytes, 2000, 28, (p) => readLlama2cCheckpoint(p));
  });

  test("PyTorch zip checkpoints (pytorch_model.bin): 3000 cases, zip records and pickle", () => {
    const path = join(root, "valid.bin");
    writeTorchZip(path, [
      { name: "fc.weight", dtype: "F32", shape: [2, 3], data: new Float32Array(6) },
      { name: "layers.0.self_attn.q_proj.weight", dtype: "BF16", shape: [2, 2], data: new Uint16Array(4) },
      { name: "norm.weight", dtype: "F16", shape: [2], data: new Uint16Array(2) },
    ]);
    const bytes = readFileSync(path);
    readTorchZip(path); // the unmutated file is valid
    // the hot region is the whole file: local headers, the pickle and the central directory all matter
    const { ok } = fuzz("mutated.bin", bytes, 3000, bytes.length, (p) => readTorchZip(p).map((t) => readTensorF32(t)));
    expect(ok).toBeGreaterThan(0); // mutations of the tensor bytes alone still parse
  });

  test("batch JSONL lines: 3000 cases, each line an item or an error record", () => {
    const line = new TextEncoder().encode('{"id": 7, "prompt": "Once upon a time", "max_tokens": 20, "temperature": 0.5, "top_p": 0.9}');
    const rng = new Rng(5);
    for (let i = 0; i < 3000; i++) {
      const items = parseItems(text(mutate(line, rng, line.length)), { defaults: { maxTokens: 8, temperature: 0, topK: 0, topP: 1, seed: 1, stop: [] }, model: "stories260K" });
      for (const item of items) expect(["ok", "bad", "item"]).toContain((item as { kind: string }).kind);
    }
  });

  test("deep and huge JSON is refused or parsed, never a crash", () => {
    const dir = join(root, "deep");
    require("node:fs").mkdirSync(dir);
    writeFileSync(join(dir, "config.json"), `${"[".repeat(100000)}${"]".repeat(100000)}`);
    expect(() => loadConfig(dir)).toThrow(EagleError);
    writeFileSync(join(dir, "config.json"), JSON.stringify({ hidden_size: 1e300, num_attention_heads: -1 }));
    expect(() => loadConfig(dir)).toThrow(EagleError);
    const deep = `${"[".repeat(50000)}${"]".repeat(50000)}`;
    writeFileSync(join(dir, "config.json"), `{"hidden_size": ${deep}}`);
    expect(() => loadConfig(dir)).toThrow(/too deeply nested/);
    const header = Buffer.from(`{"t": {"dtype": "F32", "shape": ${deep}, "data_offsets": [0, 4]}}`);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeFileSync(join(root, "deep.safetensors"), Buffer.concat([len, header, Buffer.alloc(4)]));
    expect(() => readSafetensorsHeader(join(root, "deep.safetensors"))).toThrow(EagleError);
    writeFileSync(join(root, "deep-tree.json"), deep);
    expect(() => readTreeFile(join(root, "deep-tree.json"))).toThrow(EagleError);
  });
});

describe("weights that hold NaN", () => {
  test("every decode mode ends in one clear error line, greedy and sampled", () => {
    const dir = join(root, "nan-model");
    require("node:fs").mkdirSync(dir);
    const spec = { name: "nan", hiddenSize: 64, intermediateSize: 128, layers: 2, heads: 4, kvHeads: 2, vocabSize: 512 };
    writeRandomModel(dir, spec, 4);
    require("node:fs").mkdirSync(`${dir}-eagle`);
    writeRandomDraftHead(`${dir}-eagle`, spec, 5);
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(DEFAULT_MODEL_DIR, f), join(dir, f));
    const file = join(dir, "model.safetensors");
    const norm = readSafetensorsHeader(file).find((t) => t.name === "model.norm.weight")!;
    const bytes = readFileSync(file);
    bytes.set(new Uint8Array(new Float32Array(64).fill(Number.NaN).buffer), norm.offset);
    writeFileSync(file, bytes);
    const cli = join(import.meta.dir, "..", "src", "cli.ts");
    for (const spec of ["none", "eagle1", "eagle2"]) {
      for (const temp of ["0", "0.8"]) {
        const p = Bun.spawnSync([process.execPath, cli, "generate", "-m", dir, "-p", "Once", "-n", "8", "--spec", spec, "--temp", temp],
          { stdout: "pipe", stderr: "pipe" });
        const stderr = p.stderr.toString();
        expect(p.exitCode).toBe(1);
        expect(stderr).toMatch(/^eagle: .*the model produced (NaN logits|a logit of NaN).*NaN or overflow/);
        expect(stderr.trim().split("\n")).toHaveLength(1);
      }
    }
  });
});
