// text <-> token ids through @huggingface/tokenizers, with BOS/EOS taken from the model's config files
// and a streaming decoder that only ever emits finished characters.
import { existsSync } from "node:fs";
import { readTextFile } from "../util/files.ts";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { EagleError } from "../util/errors.ts";

type Json = Record<string, unknown>;

export class TextTokenizer {
  readonly bosId: number | null; // null when the model has no BOS token
  readonly eosIds: number[]; // generation stops at any of these
  readonly vocabSize: number;
  readonly addBos: boolean; // default for encode
  // a token that decodes to one plain character; lets a window of tokens decode mid-text (see StreamDecoder)
  readonly anchorId: number | null;

  private constructor(private readonly tok: Tokenizer, config: Json, generation: Json) {
    this.vocabSize = tok.model!.vocab.length;
    this.bosId = this.tokenId(config.bos_token) ?? numberOrNull(generation.bos_token_id);
    this.eosIds = [...new Set([this.tokenId(config.eos_token), ...idList(generation.eos_token_id)])].filter(
      (id): id is number => id !== null,
    );
    // without add_bos_token, ask the template: does it put BOS before empty text?
    const probe = tok.encode("", { add_special_tokens: true }).ids;
    this.addBos = typeof config.add_bos_token === "boolean" ? config.add_bos_token : probe[0] === this.bosId;
    this.anchorId = this.findAnchor();
  }

  static load(dir: string): TextTokenizer {
    const tokenizerJson = readJson(join(dir, "tokenizer.json"), true)!;
    const config = readJson(join(dir, "tokenizer_config.json"), true)!;
    const generation = readJson(join(dir, "generation_config.json"), false) ?? {};
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(tokenizerJson, config);
    } catch (err) {
      throw new EagleError(`${join(dir, "tokenizer.json")}: cannot build tokenizer: ${(err as Error).message}`);
    }
    return new TextTokenizer(tok, config, generation);
  }

  encode(text: string, opts: { addBos?: boolean } = {}): number[] {
    // BOS is added here rather than by the template so that addBos means the same for every model
    const ids = this.tok.encode(text, { add_special_tokens: false }).ids;
    const addBos = opts.addBos ?? this.addBos;
    return addBos && this.bosId !== null ? [this.bosId, ...ids] : ids;
  }

  // special tokens are dropped; no "clean up" of spaces, which would rewrite text across token boundaries
  readonly #pieces = new Map<number, string>();

  /** decode([anchor, id]) less the anchor's letter, remembered per id. */
  pieceText(id: number, anchor: number): string {
    let text = this.#pieces.get(id);
    if (text === undefined) {
      text = this.decode([anchor, id]).slice(1);
      this.#pieces.set(id, text);
    }
    return text;
  }

  decode(ids: number[]): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new EagleError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      }
    }
    if (ids.length === 0) return "";
    return this.tok.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false });
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  // context: ids already shown to the user (e.g. the prompt), so the first pushed token gets its
  // leading space exactly as decode(context ++ pushed) would give it
  streamDecoder(context: number[] = []): StreamDecoder {
    return new StreamDecoder(this, context);
  }

  private tokenId(token: unknown): number | null {
    // tokenizer_config names tokens either as a string or as {content: "..."}
    const content = typeof token === "object" && token !== null ? (token as Json).content : token;
    return typeof content === "string" ? (this.tok.token_to_id(content) ?? null) : null;
  }

  private findAnchor(): number | null {
    for (const letter of "aeotnsAEOTNS") {
      const id = this.tok.token_to_id(letter);
      if (id !== undefined && this.decode([id]) === letter && this.decode([id, id]) === letter + letter) return id;
    }
    return null;
  }
}

// concatenating every push() and the final flush() gives decode(context ++ pushed) minus decode(context),
// for a context that ends on a whole character (any encoded prompt does).
// text is held back while it ends in U+FFFD: that is a byte-fallback character still missing bytes.
export class StreamDecoder {
  private ids: number[];
  private shown: string; // text emitted so far; only kept up to date while empty (or with no anchor)
  private done: number; // ids before this index have been emitted as text

  constructor(private readonly tokenizer: TextTokenizer, context: number[]) {
    this.ids = [...context];
    this.done = context.length;
    this.shown = tokenizer.decode(context);
  }

  push(id: number): string {
    this.ids.push(id);
    const text = this.pending();
    return text.endsWith("\uFFFD") ? "" : this.emit(text);
  }

  flush(): string {
    return this.emit(this.pending());
  }

  private pending(): string {
    const anchor = this.tokenizer.anchorId;
    // until some text has shown, decode from the start: the leading-space strip depends on it
    if (this.shown === "" || anchor === null) return this.tokenizer.decode(this.ids).slice(this.shown.length);
    // otherwise decode just the new tokens behind a one-letter anchor, which keeps their leading space; one
    // new token (the usual case) is looked up once per id
    if (this.done === this.ids.length - 1) return this.tokenizer.pieceText(this.ids[this.done], anchor);
    return this.tokenizer.decode([anchor, ...this.ids.slice(this.done)]).slice(1);
  }

  private emit(text: string): string {
    this.done = this.ids.length;
    if (this.shown === "" || this.tokenizer.anchorId === null) this.shown += text;
    return text;
  }
}

function readJson(path: string, required: boolean): Json | null {
  if (!existsSync(path)) {
    if (required) throw new EagleError(`${path}: missing`);
    return null;
  }
  const text = readTextFile(path, "tokenizer file");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new EagleError(`${path}: not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new EagleError(`${path}: not a JSON object`);
  return value as Json;
}

function numberOrNull(x: unknown): number | null {
  return typeof x === "number" ? x : null;
}

function idList(x: unknown): (number | null)[] {
  return Array.isArray(x) ? x.map(numberOrNull) : [numberOrNull(x)];
}
