// synthetic.ts — models of real shapes with random weights made on the device, no files: Llama-2-7B and
// Llama-3-8B for GPU benchmarks, a tiny one for CPU tests, each with a one-layer EAGLE head of its width.
// They load into the same LoadedModel / LoadedDraft records as directories do, so the decode loop and
// the EAGLE proposers run on them unchanged (their text is noise: random weights).
import type { ModelConfig } from "./config.ts";
import type { LoadedDraft } from "./draft.ts";
import { EagleError } from "../util/errors.ts";
import { buildModel, type LoadedModel, type Placement } from "./loader.ts";

export interface SyntheticShape {
  name: string;
  about: string;
  config: ModelConfig;
}

/** Hugging Face's initializer_range for Llama: the spread of every random matrix entry. */
export const SYNTHETIC_STD = 0.02;

function llama(fields: Partial<ModelConfig> & Pick<ModelConfig, "hiddenSize" | "intermediateSize" | "nLayers" |
  "nHeads" | "nKvHeads" | "vocabSize">): ModelConfig {
  return {
    architecture: "LlamaForCausalLM", modelType: "llama", headDim: fields.hiddenSize / fields.nHeads,
    maxPositions: 4096, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, attentionBias: false,
    tieEmbeddings: false, bosTokenId: 1, eosTokenIds: [2], torchDtype: "bfloat16", ...fields,
  };
}

export const SYNTHETIC_SHAPES: SyntheticShape[] = [
  {
    name: "llama2-7b", about: "Llama-2-7B: 32 layers, width 4096, MHA (32 kv heads), vocab 32000",
    config: llama({ hiddenSize: 4096, intermediateSize: 11008, nLayers: 32, nHeads: 32, nKvHeads: 32, vocabSize: 32000 }),
  },
  {
    name: "llama3-8b", about: "Llama-3-8B: 32 layers, width 4096, GQA (8 kv heads), vocab 128256, rope theta 500000",
    config: llama({
      hiddenSize: 4096, intermediateSize: 14336, nLayers: 32, nHeads: 32, nKvHeads: 8, vocabSize: 128256,
      maxPositions: 8192, ropeTheta: 500000, bosTokenId: 128000, eosTokenIds: [128001],
    }),
  },
  {
    name: "tiny", about: "a 4-layer, width-256 Llama with GQA for CPU tests",
    config: llama({ hiddenSize: 256, intermediateSize: 688, nLayers: 4, nHeads: 4, nKvHeads: 2, vocabSize: 4096, maxPositions: 2048 }),
  },
];

export function syntheticShape(name: string): SyntheticShape {
  const shape = SYNTHETIC_SHAPES.find((s) => s.name === name);
  if (!shape) throw new EagleError(`--shape ${name}: unknown (${SYNTHETIC_SHAPES.map((s) => s.name).join(", ")})`, 2);
  return shape;
}

/** Shape names from repeated flags and comma lists: ["a,b", "c"] -> shapes a, b, c. */
export function parseShapes(values: string[]): SyntheticShape[] {
  return values.flatMap((v) => v.split(",")).map((s) => s.trim()).filter((s) => s !== "").map(syntheticShape);
}

/** The config of an EAGLE head for `target`: one Llama layer of the target's shape. */
export function draftConfigFor(target: ModelConfig): ModelConfig {
  return { ...target, nLayers: 1 };
}

/** Parameters of the target (draft = false) or of its head (fc, fc bias, one layer without input norm). */
export function parameterCount(c: ModelConfig, draft: boolean): number {
  const [H, q, kv] = [c.hiddenSize, c.nHeads * c.headDim, c.nKvHeads * c.headDim];
  const attention = H * q + 2 * H * kv + q * H + (c.attentionBias ? q + 2 * kv : 0);
  const layer = attention + 3 * H * c.intermediateSize + H; // + the post-attention norm
  if (draft) return 2 * H * H + H + layer;
  const embeddings = c.vocabSize * H * (c.tieEmbeddings ? 1 : 2);
  return embeddings + H + c.nLayers * (layer + H);
}

/** A target of `shape` with random weights made on `placement`'s device, deterministic in `seed`. */
export function buildSynthetic(shape: SyntheticShape, placement: Placement, seed: number): LoadedModel {
  const model = buildModel(shape.config, placement, null, new Map(), () => null, (m) => m.initRandom(seed, SYNTHETIC_STD));
  return { dir: `synthetic:${shape.name}`, config: shape.config, placement, model };
}

/** A random EAGLE head for `target` (fc with bias, as the official heads): it shares the target's
 * embedding and LM head, so it must be built on the target's placement. */
export function buildSyntheticDraft(target: LoadedModel, seed: number): LoadedDraft {
  const config = draftConfigFor(target.config);
  const model = buildModel(config, target.placement, { fcBias: true }, new Map(), () => null, (m) => {
    m.shareFrom(target.model);
    m.initRandom(seed, SYNTHETIC_STD);
  });
  return { dir: `${target.dir}-eagle`, config, fcBias: true, dtype: target.placement.dtype, model };
}
