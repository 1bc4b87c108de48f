// README.md and LICENSE for a converted stories checkpoint: where it came from and under what terms.
import { createHash } from "node:crypto";
import { basename } from "node:path";
import { readInput } from "./llama2c-tokenizer.ts";

export interface Provenance {
  checkpoint: string; // input paths
  tokenizer: string;
  dim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  tied: boolean;
}

export function sha256File(path: string): string {
  return createHash("sha256").update(readInput(path)).digest("hex");
}

export function modelCard(p: Provenance): string {
  const row = (path: string) => `| ${basename(path)} | ${readInput(path).length} | ${sha256File(path)} |`;
  return `# ${basename(p.checkpoint).replace(/\.bin$/, "")} (Hugging Face layout)

Andrej Karpathy's \`tinyllamas\` checkpoint, a Llama-2-architecture model trained on TinyStories, released
under the MIT licence (see LICENSE). Nothing here was trained by this project; the weights were only
converted, by \`bun scripts/convert-stories.ts\` (src/convert/llama2c.ts), from these inputs:

| input | bytes | sha256 |
|---|---|---|
${row(p.checkpoint)}
${row(p.tokenizer)}

Shape: dim ${p.dim}, ${p.nLayers} layers, ${p.nHeads} heads, ${p.nKvHeads} kv heads, vocab ${p.vocabSize},
classifier ${p.tied ? "tied to the token embedding" : "stored separately as lm_head.weight"}.

What the conversion did:
- renamed the llama2.c arrays to Hugging Face Llama names and stored them as fp32 safetensors;
- permuted the rows of q_proj and k_proj within each head, from llama2.c's adjacent-pair RoPE to the
  rotate-half convention of Hugging Face Llama (the same permutation as HF's convert_llama_weights);
- listed BOS (id 1) as an end-of-sequence id beside EOS (id 2), in config.json and generation_config.json:
  these models end a story with BOS, where llama2.c's run.c stops generating;
- rebuilt the SentencePiece tokenizer as a BPE tokenizer.json with byte fallback, whose merges are
  derived from the piece scores, so it encodes text exactly as llama2.c does.
`;
}

export const MIT_LICENSE = `MIT License

Copyright (c) 2023 Andrej Karpathy

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
`;
