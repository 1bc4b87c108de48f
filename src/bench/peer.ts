// peer.ts — bench's --peer llama.cpp: the same prompts, as token ids, decoded greedily by llama.cpp
// (node-llama-cpp's prebuilt CPU binary, installed on demand; the model written as an F32 GGUF; flash
// attention off) at eagle's thread count, timed from JavaScript and by llama.cpp's own counters; and
// whether its tokens are the ones eagle's plain decoding chose.
import { threadCount } from "../native/engine.ts";
import { cachedLlamaGguf } from "./llama-gguf.ts";
import { ensureLlamaPeer, type PeerInstall } from "./llama-peer-install.ts";
import { type LlamaPeerResult, runLlamaPeer } from "./llama-peer.ts";

export const PEERS = ["llama.cpp"] as const;
export type PeerName = (typeof PEERS)[number];

export interface PeerResult {
  name: PeerName;
  release: string;          // llama.cpp's release, as node-llama-cpp reports it
  version: string;          // node-llama-cpp's
  threads: number;
  tokens_per_s: number;     // from JavaScript: all new tokens / all decode time, as eagle's own
  engine_tokens_per_s: number; // llama.cpp's counters: decode steps only
  plain_over_peer: number;  // eagle's plain tokens/s / the peer's, both from JavaScript
  identical_to_plain: boolean | null; // greedy tokens equal eagle's plain decoding's (null: not greedy or no plain run)
  first_difference: { prompt: number; at: number } | null;
}

/** Installs the peer and writes its model once; each run() is one timed pass over the prompts. */
export class LlamaPeer {
  readonly #install: PeerInstall;
  readonly #gguf: string;
  readonly #passes: LlamaPeerResult[] = [];

  constructor(readonly modelDir: string, readonly prompts: number[][], readonly newTokens: number) {
    this.#install = ensureLlamaPeer();
    this.#gguf = cachedLlamaGguf(modelDir).path;
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
    const first = plain && greedy ? firstDifference(plain.outputs, all[0].tokens) : null;
    return {
      name: "llama.cpp", release: all[0].llamaCppRelease, version: all[0].nodeLlamaCpp, threads: all[0].threads,
      tokens_per_s: tokensPerS, engine_tokens_per_s: engine, plain_over_peer: plain ? plain.tokens_per_s / tokensPerS : NaN,
      identical_to_plain: plain && greedy ? first === null : null, first_difference: first,
    };
  }
}

function firstDifference(a: number[][], b: number[][]): { prompt: number; at: number } | null {
  for (let p = 0; p < a.length; p++) {
    const n = Math.max(a[p].length, b[p]?.length ?? 0);
    for (let i = 0; i < n; i++) if (a[p][i] !== b[p]?.[i]) return { prompt: p, at: i };
  }
  return null;
}
