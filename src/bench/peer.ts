// peer.ts — bench's --peer llama.cpp: the same prompts, as token ids, decoded greedily by llama.cpp
// (node-llama-cpp's prebuilt CPU binary, installed on demand; the model written as a GGUF of eagle's
// dtype, F32 or BF16; flash attention off) at eagle's thread count, timed from JavaScript and by
// llama.cpp's own counters; and whether its tokens are the ones eagle's plain decoding chose.
//
// In f32 both compute in float32 and should agree. In bf16 eagle widens the bf16 weights and keeps
// float32 activations, while llama.cpp's CPU bf16 product also rounds the activations to bf16, so a near
// tie can flip: the first difference is located and measured as bench measures its own (divergence.ts),
// and it never fails the run.
import type { LoadedModel } from "../model/loader.ts";
import { threadCount } from "../native/engine.ts";
import { EagleError } from "../util/errors.ts";
import { type Divergence, explainDivergence } from "./divergence.ts";
import { cachedLlamaGguf, type LlamaGgufWeights } from "./llama-gguf.ts";
import { ensureLlamaPeer, type PeerInstall } from "./llama-peer-install.ts";
import { type LlamaPeerResult, runLlamaPeer } from "./llama-peer.ts";

export const PEERS = ["llama.cpp"] as const;
export type PeerName = (typeof PEERS)[number];

export interface PeerResult {
  name: PeerName;
  release: string;          // llama.cpp's release, as node-llama-cpp reports it
  version: string;          // node-llama-cpp's
  threads: number;
  weights: LlamaGgufWeights; // of the GGUF it read: eagle's --dtype
  tokens_per_s: number;     // from JavaScript: all new tokens / all decode time, as eagle's own
  engine_tokens_per_s: number; // llama.cpp's counters: decode steps only
  plain_over_peer: number;  // eagle's plain tokens/s / the peer's, both from JavaScript
  identical_to_plain: boolean | null; // greedy tokens equal eagle's plain decoding's (null: not greedy or no plain run)
  // the first prompt whose tokens differ, where, and the two tokens' gap under eagle's fresh forward
  // (method "llama.cpp"; near_tie by eagle's dtype, as for bench's own divergences)
  first_difference: Divergence | null;
}

/** The GGUF weight type matching eagle's compute dtype; f16 has no peer here. */
export function peerWeights(dtype: LoadedModel["placement"]["dtype"]): LlamaGgufWeights {
  if (dtype === "f16") throw new EagleError("--peer llama.cpp: no f16 peer (llama.cpp is given F32 or BF16 weights); use --dtype f32 or bf16", 2);
  return dtype === "bf16" ? "BF16" : "F32";
}

/** Installs the peer and writes its model once; each run() is one timed pass over the prompts. */
export class LlamaPeer {
  readonly #install: PeerInstall;
  readonly #gguf: string;
  readonly #weights: LlamaGgufWeights;
  readonly #model: LoadedModel; // eagle's, to measure a difference
  readonly #passes: LlamaPeerResult[] = [];

  constructor(m: LoadedModel, readonly modelDir: string, readonly prompts: number[][], readonly newTokens: number) {
    this.#weights = peerWeights(m.placement.dtype);
    this.#model = m;
    this.#install = ensureLlamaPeer();
    this.#gguf = cachedLlamaGguf(modelDir, this.#weights).path;
  }

  run(): void {
    const longest = Math.max(...this.prompts.map((p) => p.length));
    this.#passes.push(runLlamaPeer(this.#install, {
      gguf: this.#gguf, threads: threadCount(), contextSize: longest + this.newTokens + 8, prompts: this.prompts,
      newTokens: this.newTokens,
    }));
  }

  /** The passes together, against eagle's plain decoding (its tokens/s and greedy outputs, when it ran). */
  result(plain: { tokens_per_s: number; outputs: number[][] } | null, greedy: boolean): PeerResult {
    const all = this.#passes;
    const sum = (f: (p: LlamaPeerResult) => number[]) => all.flatMap(f).reduce((a, b) => a + b, 0);
    const tokensPerS = (sum((p) => p.tokens.map((t) => t.length)) * 1000) / sum((p) => p.decodeMs);
    const engine = (sum((p) => p.engine.map((c) => c.evalTokens)) * 1000) / sum((p) => p.engine.map((c) => c.evalMs));
    const first = plain && greedy ? this.#firstDifference(plain.outputs, all[0].tokens) : null;
    return {
      name: "llama.cpp", release: all[0].llamaCppRelease, version: all[0].nodeLlamaCpp, threads: all[0].threads,
      weights: this.#weights, tokens_per_s: tokensPerS, engine_tokens_per_s: engine, plain_over_peer: plain ? plain.tokens_per_s / tokensPerS : NaN,
      identical_to_plain: plain && greedy ? first === null : null, first_difference: first,
    };
  }

  // one fresh forward of eagle's model, on the first prompt that differs
  #firstDifference(plain: number[][], peer: number[][]): Divergence | null {
    for (let p = 0; p < plain.length; p++) {
      const d = explainDivergence(this.#model, "llama.cpp", p, this.prompts[p], plain[p], peer[p] ?? []);
      if (d) return d;
    }
    return null;
  }
}
