import { SHARED_STORIES } from "./support/paths.ts";
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readLlama2cTokenizer, type Llama2cTokenizer } from "../src/convert/llama2c.ts";
import { EagleError } from "../src/util/errors.ts";
import { TextTokenizer } from "../src/model/tokenizer.ts";

const modelDir = resolve(import.meta.dir, "../models/stories260K");
const tok512 = join(SHARED_STORIES, "tok512.bin");
const tok = TextTokenizer.load(modelDir);
const tmp = mkdtempSync(join(tmpdir(), "eagle-tok-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// llama2.c's encode(), written out independently: one token per code point (bytes + 3 when the
// character is not a piece), a dummy " " prefix, then merge the best-scoring adjacent pair until none.
function llama2cEncode(text: string, t: Llama2cTokenizer): number[] {
  const ids = new Map(t.pieces.map((p, i) => [p, i]));
  const tokens = [1];
  if (text.length > 0) tokens.push(ids.get(" ")!);
  for (const ch of text) {
    const id = ids.get(ch);
    if (id !== undefined) tokens.push(id);
    else for (const byte of new TextEncoder().encode(ch)) tokens.push(byte + 3);
  }
  for (;;) {
    let best = { score: -1e10, id: -1, at: -1 };
    for (let i = 0; i + 1 < tokens.length; i++) {
      const id = ids.get(t.pieces[tokens[i]] + t.pieces[tokens[i + 1]]);
      if (id !== undefined && t.scores[id] > best.score) best = { score: t.scores[id], id, at: i };
    }
    if (best.at < 0) return tokens;
    tokens.splice(best.at, 2, best.id);
  }
}

const sentences = [
  "Once upon a time",
  "Once upon a time, there was a little girl named Lily.",
  "She loved to play outside in the park.",
  'Tom said, "Hello!" and ran away.',
  "The dog's ball was red; the cat's was blue.",
  "  leading and trailing spaces  ",
  "numbers 12345 and 3.14",
  "tabs\tand\nnew lines\n",
  "café naïve résumé",
  "emoji 😀🎉 done",
  "日本語のテキスト",
  "€100 ™ [brackets] ~tilde~ |pipe| <angle> % \\ back",
  "UPPER lower MiXeD",
  "a",
];

describe("encode", () => {
  const reference = readLlama2cTokenizer(tok512);

  test('"Once upon a time" is <s> ▁Once ▁upon ▁a ▁time', () => {
    const ids = tok.encode("Once upon a time");
    expect(ids).toEqual([1, 403, 407, 261, 378]);
    expect(ids.map((id) => tok.idToToken(id))).toEqual(["<s>", "▁Once", "▁upon", "▁a", "▁time"]);
  });

  for (const s of sentences) {
    test(`matches llama2.c: ${JSON.stringify(s)}`, () => expect(tok.encode(s)).toEqual(llama2cEncode(s, reference)));
  }

  test("matches llama2.c on 300 random strings of pieces and odd characters", () => {
    let seed = 7;
    const pick = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const pieces = reference.pieces.slice(259);
    const odd = Array.from("aeiouxyz .,'é😀\n\t");
    for (let trial = 0; trial < 300; trial++) {
      const parts = Array.from({ length: 1 + pick(12) }, () => (pick(4) === 0 ? odd[pick(odd.length)] : pieces[pick(pieces.length)]));
      const s = parts.join("");
      expect(tok.encode(s)).toEqual(llama2cEncode(s, reference));
    }
  });

  test("BOS follows add_bos_token unless overridden", () => {
    expect(tok.addBos).toBe(true);
    expect(tok.encode("hi", { addBos: false })).toEqual(tok.encode("hi").slice(1));
    expect(tok.encode("")).toEqual([1]);
    expect(tok.encode("", { addBos: false })).toEqual([]);
  });

  test("emoji go through byte fallback", () => {
    const pieces = tok.encode("😀", { addBos: false }).map((id) => tok.idToToken(id));
    expect(pieces).toEqual(["▁", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>"]);
  });
});

describe("decode", () => {
  for (const s of sentences) {
    test(`round trip ${JSON.stringify(s)}`, () => expect(tok.decode(tok.encode(s))).toBe(s));
  }

  test("special tokens are dropped and no space is lost or added after BOS", () => {
    expect(tok.decode([1, 403, 407])).toBe("Once upon");
    expect(tok.decode([1, 403, 407, 2])).toBe("Once upon");
    expect(tok.decode([])).toBe("");
  });

  test("ids outside the vocabulary are refused", () => {
    expect(() => tok.decode([512])).toThrow(EagleError);
    expect(() => tok.decode([-1])).toThrow(EagleError);
  });
});

function streamAll(ids: number[], context: number[] = []): string[] {
  const stream = tok.streamDecoder(context);
  return [...ids.map((id) => stream.push(id)), stream.flush()];
}

describe("stream decoder", () => {
  for (const s of sentences) {
    test(`pushes concatenate to decode(): ${JSON.stringify(s)}`, () => {
      const ids = tok.encode(s);
      const parts = streamAll(ids);
      expect(parts.join("")).toBe(tok.decode(ids));
      for (const p of parts) expect(p).not.toContain("\uFFFD");
    });
  }

  test("the first word after BOS has no leading space; later words keep theirs", () => {
    expect(streamAll([1, 403, 407, 261])).toEqual(["", "Once", " upon", " a", ""]);
    expect(streamAll([403, 407])).toEqual(["Once", " upon", ""]);
  });

  test("an emoji comes out whole, once its last byte arrives", () => {
    const ids = tok.encode("ok 😀!");
    expect(streamAll(ids).filter((p) => p !== "")).toEqual(["o", "k", " ", "😀", "!"]);
  });

  test("with the prompt as context, the continuation keeps its space", () => {
    const prompt = tok.encode("Once upon");
    expect(streamAll([261, 378], prompt)).toEqual([" a", " time", ""]);
    expect(streamAll([261], [1])).toEqual(["a", ""]);
  });

  test("random id sequences (bytes, specials, pieces) concatenate to decode()", () => {
    let seed = 12345;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 512;
    for (let trial = 0; trial < 200; trial++) {
      const ids = Array.from({ length: 1 + (trial % 40) }, next);
      expect(streamAll(ids).join("")).toBe(tok.decode(ids));
    }
  });
});

describe("loading", () => {
  test("special ids and sizes come from the config files; the shipped model stops at BOS too", () => {
    expect(tok.bosId).toBe(1);
    expect(tok.eosIds).toEqual([2, 1]); // </s>, and BOS, where llama2.c's stories end
    expect(tok.vocabSize).toBe(512);
    expect(tok.idToToken(1)).toBe("<s>");
  });

  test("generation_config may list several eos ids", () => {
    const dir = join(tmp, "multi-eos");
    cpSync(modelDir, dir, { recursive: true });
    writeFileSync(join(dir, "generation_config.json"), JSON.stringify({ bos_token_id: 1, eos_token_id: [2, 5] }));
    expect(TextTokenizer.load(dir).eosIds).toEqual([2, 5]);
  });

  test("missing or malformed files are named", () => {
    expect(() => TextTokenizer.load(join(tmp, "nothing"))).toThrow("tokenizer.json: missing");
    const dir = join(tmp, "broken");
    cpSync(modelDir, dir, { recursive: true });
    writeFileSync(join(dir, "tokenizer_config.json"), "{oops");
    expect(() => TextTokenizer.load(dir)).toThrow(`${join(dir, "tokenizer_config.json")}: not valid JSON`);
    writeFileSync(join(dir, "tokenizer_config.json"), "{}");
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ model: { type: "Nope" } }));
    expect(() => TextTokenizer.load(dir)).toThrow(`${join(dir, "tokenizer.json")}: cannot build tokenizer`);
  });
});
