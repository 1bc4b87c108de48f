// llama2.c's tokenizer.bin, and the Hugging Face tokenizer.json that encodes the same way.
// tokenizer.bin: int32 max_token_length, then per token: f32 score, int32 byte length, utf-8 bytes.
// llama2.c stores "▁" as a plain space and BOS/EOS as "\n<s>\n" / "\n</s>\n".
import { closeSync, readFileSync } from "node:fs";
import { openRegularFile } from "../util/files.ts";
import { EagleError } from "../util/errors.ts";

export interface Llama2cTokenizer {
  pieces: string[]; // as stored in the file
  scores: number[];
  maxTokenLength: number;
}

export function readLlama2cTokenizer(path: string): Llama2cTokenizer {
  const bytes = readInput(path);
  if (isSentencePieceModel(bytes)) {
    throw new EagleError(`${path} is a SentencePiece model file; convert-llama2c needs llama2.c's tokenizer .bin (such as tok512.bin)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const need = (at: number, n: number, field: string) => {
    if (at + n > bytes.length) throw new EagleError(`${path}: truncated at ${field}: expected ${at + n} bytes, got ${bytes.length}`);
  };
  need(0, 4, "max_token_length");
  const maxTokenLength = view.getInt32(0, true);
  const pieces: string[] = [];
  const scores: number[] = [];
  for (let at = 4; at < bytes.length; ) {
    const id = pieces.length;
    need(at, 8, `token ${id} header`);
    const score = view.getFloat32(at, true);
    const len = view.getInt32(at + 4, true);
    if (len < 0 || len > maxTokenLength) throw new EagleError(`${path}: token ${id} length ${len} outside [0, ${maxTokenLength}]`);
    need(at + 8, len, `token ${id} bytes`);
    try {
      pieces.push(utf8.decode(bytes.subarray(at + 8, at + 8 + len)));
    } catch {
      throw new EagleError(`${path}: token ${id} is not valid utf-8`);
    }
    scores.push(score);
    at += 8 + len;
  }
  return { pieces, scores, maxTokenLength };
}

/**
 * Whether `bytes` start as a SentencePiece .model does: a protobuf ModelProto, whose first field is its
 * first vocabulary entry, `repeated SentencePiece pieces = 1` (tag 0x0a, a length), and that entry is
 * itself a message of only `string piece = 1` (utf-8), `float score = 2` and `Type type = 3`, ending exactly
 * at its length. A llama2.c tokenizer.bin starts with max_token_length as an int32, so its first byte can be
 * 0x0a too (a length of 10), but what follows does not parse as such an entry.
 */
export function isSentencePieceModel(bytes: Uint8Array): boolean {
  let at = 0;
  const varint = (): number => {
    let v = 0;
    for (let shift = 0; shift < 35 && at < bytes.length; shift += 7) {
      const b = bytes[at++];
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
    return -1; // truncated or too long
  };
  if (bytes[at++] !== 0x0a) return false;
  const length = varint();
  const end = at + length;
  if (length < 3 || end > bytes.length) return false;
  let sawPiece = false;
  while (at < end) {
    const tag = varint();
    if (tag === 0x0a) { // piece: a length-prefixed utf-8 string
      const n = varint();
      if (n < 0 || at + n > end) return false;
      try {
        new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(at, at + n));
      } catch {
        return false; // not text: not a piece
      }
      at += n;
      sawPiece = true;
    } else if (tag === 0x15) { // score: a 4-byte float
      at += 4;
    } else if (tag === 0x18) { // type: a varint
      if (varint() < 0) return false;
    } else {
      return false;
    }
  }
  return sawPiece && at === end;
}

export function readInput(path: string): Buffer {
  const fd = openRegularFile(path, "file");
  try {
    return readFileSync(fd);
  } catch (err) {
    throw new EagleError(`${path}: cannot read: ${(err as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

const SPECIAL = ["<unk>", "<s>", "</s>"]; // ids 0, 1, 2 in every llama2.c tokenizer

// pieces in SentencePiece spelling: "▁" for a space, real names for the special tokens
export function sentencePieces(tok: Llama2cTokenizer, path: string): string[] {
  const pieces = tok.pieces.map((p, id) => (id < SPECIAL.length ? SPECIAL[id] : p.replaceAll(" ", "▁")));
  const seen = new Map<string, number>();
  pieces.forEach((p, id) => {
    const first = seen.get(p);
    if (first !== undefined) throw new EagleError(`${path}: tokens ${first} and ${id} are both ${JSON.stringify(p)}`);
    seen.set(p, id);
  });
  return pieces;
}

// the merges Hugging Face derives from a SentencePiece BPE vocab: every split of a piece into two
// in-vocab pieces, ranked by the merged piece's score (best first), ties in vocab order.
export function mergesFromScores(pieces: string[], scores: number[]): [string, string][] {
  const ids = new Map(pieces.map((p, id) => [p, id]));
  const ranked: { left: string; right: string; score: number }[] = [];
  pieces.forEach((piece, id) => {
    const chars = Array.from(piece);
    const local: { left: string; right: string; score: number }[] = [];
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join("");
      const right = chars.slice(i).join("");
      if (ids.has(left) && ids.has(right)) local.push({ left, right, score: scores[id] });
    }
    local.sort((a, b) => ids.get(a.left)! - ids.get(b.left)! || ids.get(a.right)! - ids.get(b.right)!);
    ranked.push(...local);
  });
  // Array.prototype.sort is stable, so equal scores keep the order above
  ranked.sort((a, b) => b.score - a.score);
  return ranked.map((m) => [m.left, m.right]);
}

// a Llama-2 style tokenizer.json: BPE with byte fallback, "▁" normalizer, BOS added by the template
export function tokenizerJson(pieces: string[], scores: number[]): object {
  const special = SPECIAL.map((content, id) => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: special,
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "Prepend", prepend: "▁" },
        { type: "Replace", pattern: { String: " " }, content: "▁" },
      ],
    },
    pre_tokenizer: null,
    post_processor: bosTemplate(),
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(pieces.map((p, id) => [p, id])),
      // "left right" strings: pieces never hold a plain space, and every tokenizers version reads this form
      merges: mergesFromScores(pieces, scores).map(([left, right]) => `${left} ${right}`),
    },
  };
}

function bosTemplate(): object {
  const bos = (typeId: number) => ({ SpecialToken: { id: "<s>", type_id: typeId } });
  const seq = (id: string, typeId: number) => ({ Sequence: { id, type_id: typeId } });
  return {
    type: "TemplateProcessing",
    single: [bos(0), seq("A", 0)],
    pair: [bos(0), seq("A", 0), bos(1), seq("B", 1)],
    special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
  };
}
