// gguf-vocab.ts — the tokenizer.ggml.* metadata llama.cpp needs before it loads a model. The benchmark
// feeds token ids straight in, so the vocabulary only has to load and to have the model's size: the
// token texts of tokenizer.json when there is one (as a SentencePiece-style "llama" vocabulary, which is
// what Llama tokenizers with byte fallback are), else placeholders. Scores are all zero: llama.cpp's own
// tokenizer would not reproduce ours from them, and nothing here asks it to tokenize.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { GgufMetadata } from "../formats/gguf.ts";
import { type ModelConfig, readJsonFile } from "../model/config.ts";
import { EagleError } from "../util/errors.ts";

// llama.cpp's llama_token_type
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const BYTE = 6;

export interface GgufVocab {
  source: "tokenizer.json" | "placeholder";
  tokens: string[];
  types: number[];
}

/** The vocabulary of the model in `dir`, exactly `config.vocabSize` tokens long. */
export function ggufVocab(dir: string, config: ModelConfig): GgufVocab {
  const path = join(dir, "tokenizer.json");
  const vocab = existsSync(path) ? fromTokenizerJson(path, config.vocabSize) : placeholders(config.vocabSize);
  // the ids the config names are control tokens, whatever the tokenizer calls them
  for (const id of [config.bosTokenId, ...config.eosTokenIds]) if (id !== null && id < config.vocabSize) vocab.types[id] = CONTROL;
  return vocab;
}

function typeOf(text: string, special: boolean): number {
  if (/^<0x[0-9A-F]{2}>$/.test(text)) return BYTE;
  if (text === "<unk>") return UNKNOWN;
  return special ? CONTROL : NORMAL;
}

function fromTokenizerJson(path: string, vocabSize: number): GgufVocab {
  const json = readJsonFile(path);
  const model = json.model as Record<string, unknown> | undefined;
  const entries = model && typeof model.vocab === "object" && model.vocab !== null && !Array.isArray(model.vocab)
    ? Object.entries(model.vocab as Record<string, unknown>) : null;
  if (!entries) throw new EagleError(`${path}: model.vocab is not a map of token text to id`);
  const tokens: (string | undefined)[] = new Array(vocabSize);
  const types: number[] = new Array(vocabSize).fill(NORMAL);
  const place = (text: string, id: unknown, special: boolean) => {
    if (!Number.isSafeInteger(id) || (id as number) < 0) throw new EagleError(`${path}: token ${JSON.stringify(text)} has id ${id}`);
    if ((id as number) >= vocabSize) throw new EagleError(`${path}: token id ${id} is past the model's vocab_size ${vocabSize}`);
    tokens[id as number] = text;
    types[id as number] = typeOf(text, special);
  };
  for (const [text, id] of entries) place(text, id, false);
  for (const added of Array.isArray(json.added_tokens) ? json.added_tokens : []) {
    const a = added as Record<string, unknown>;
    if (typeof a.content === "string") place(a.content, a.id, a.special === true);
  }
  // ids the tokenizer leaves out (a padded embedding table) get placeholders
  return { source: "tokenizer.json", tokens: tokens.map((t, id) => t ?? `<unused_${id}>`), types };
}

/** <unk>, <s>, </s>, the 256 byte tokens, then <tok_N>, cut or padded to `vocabSize`. */
function placeholders(vocabSize: number): GgufVocab {
  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < vocabSize; id++) {
    const byte = id - 3;
    const text = id === 0 ? "<unk>" : id === 1 ? "<s>" : id === 2 ? "</s>"
      : byte < 256 ? `<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>` : `<tok_${id}>`;
    tokens.push(text);
    types.push(id === 1 || id === 2 ? CONTROL : typeOf(text, false));
  }
  return { source: "placeholder", tokens, types };
}

/** The tokenizer.ggml.* keys of `vocab`, with the config's special ids. */
export function vocabMetadata(vocab: GgufVocab, config: ModelConfig): GgufMetadata {
  const meta: GgufMetadata = {
    "tokenizer.ggml.model": { type: "string", value: "llama" },
    "tokenizer.ggml.tokens": { type: "string[]", value: vocab.tokens },
    "tokenizer.ggml.scores": { type: "f32[]", value: new Float32Array(vocab.tokens.length) },
    "tokenizer.ggml.token_type": { type: "i32[]", value: vocab.types },
    "tokenizer.ggml.add_bos_token": { type: "bool", value: false }, // ids are fed as given, BOS included
    "tokenizer.ggml.add_eos_token": { type: "bool", value: false },
  };
  const unk = vocab.tokens.indexOf("<unk>");
  if (unk >= 0) meta["tokenizer.ggml.unknown_token_id"] = { type: "u32", value: unk };
  if (config.bosTokenId !== null) meta["tokenizer.ggml.bos_token_id"] = { type: "u32", value: config.bosTokenId };
  if (config.eosTokenIds.length > 0) meta["tokenizer.ggml.eos_token_id"] = { type: "u32", value: config.eosTokenIds[0] };
  return meta;
}
