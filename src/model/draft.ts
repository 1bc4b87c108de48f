// draft.ts — EAGLE-1/EAGLE-2 draft heads as published: a Llama config.json with one layer (optional
// `bias` for fc, default true) and pytorch_model.bin or model.safetensors holding fc.*, layers.0.* and
// optionally embed_tokens.weight. The target's LM head (and embedding, when the head has none) is shared.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { TensorInfo } from "../formats/safetensors.ts";
import { type ModelConfig, parseConfig, readJsonFile } from "./config.ts";
import { KERNELS_MAX_HEAD_DIM, type Model, onCpuKernels, WeightKind } from "../native/engine.ts";
import { EagleError } from "../util/errors.ts";
import { type LoadedModel, PER_LAYER, type Placement, type WeightDTypeName, type WeightTarget, buildModel, checkModelDir, headTensors, weightElements } from "./loader.ts";

export interface LoadedDraft {
  dir: string;
  config: ModelConfig;
  fcBias: boolean;
  dtype: WeightDTypeName; // its own weights' (the target's embedding and LM head are shared as they are)
  model: Model;
}

function draftTarget(name: string): WeightTarget | null {
  if (name === "embed_tokens.weight") return { kind: WeightKind.Embed, layer: -1 };
  if (name === "fc.weight") return { kind: WeightKind.Fc, layer: 0 };
  if (name === "fc.bias") return { kind: WeightKind.FcBias, layer: 0 };
  const m = /^layers\.0\.(.+)$/.exec(name);
  if (m && m[1] in PER_LAYER) return { kind: PER_LAYER[m[1]], layer: 0 };
  return null;
}

/** Reads and checks a head's config against its target: one layer, same width and vocabulary. */
export function loadDraftConfig(dir: string, target: ModelConfig): { config: ModelConfig; fcBias: boolean } {
  const path = join(dir, "config.json");
  const raw = readJsonFile(path);
  // heads are Llama layers whatever the target's architecture; the config may name the target's
  const config = parseConfig(path, { ...raw, architectures: ["LlamaForCausalLM"], model_type: "llama" });
  if (config.nLayers !== 1) throw new EagleError(`${path}: num_hidden_layers is ${config.nLayers}; an EAGLE head has 1`);
  if (config.hiddenSize !== target.hiddenSize) {
    throw new EagleError(`${path}: hidden_size ${config.hiddenSize} does not match the target's ${target.hiddenSize}: this head is for another model`);
  }
  if (config.vocabSize !== target.vocabSize) {
    throw new EagleError(`${path}: vocab_size ${config.vocabSize} does not match the target's ${target.vocabSize}: this head is for another model`);
  }
  const bias = raw.bias ?? true;
  if (typeof bias !== "boolean") throw new EagleError(`${path}: field "bias" must be true or false`);
  return { config, fcBias: bias };
}

/** The head's dtype when --draft-dtype is not given, for a head of `bytes` (at 4 bytes an element);
 * `mixable`: whether the target runs on the CPU kernels (mixableWith). */
export function defaultHeadDtype(target: Placement, bytes: number, mixable: boolean): WeightDTypeName {
  return mixable && bytes >= NARROW_HEAD_BYTES ? "int8" : target.dtype;
}

/** Whether a head beside `target` may hold another dtype: where the CPU kernels run both. */
function mixableWith(target: LoadedModel): boolean {
  return onCpuKernels(target.placement.device === "cpu", target.config.headDim);
}

/** The weight file a head is read from: model.safetensors when both it and pytorch_model.bin exist. */
export function headWeightsFile(dir: string): string {
  return existsSync(join(dir, "model.safetensors")) ? "model.safetensors" : "pytorch_model.bin";
}

/** What official EAGLE-1/2 heads never hold, or hold only as their config says, refused by name. */
function checkHeadTensors(dir: string, tensors: Map<string, TensorInfo>, fcBias: boolean): void {
  const file = join(dir, headWeightsFile(dir));
  if (tensors.has("layers.0.input_layernorm.weight")) {
    throw new EagleError(`${file}: holds layers.0.input_layernorm.weight, which EAGLE-1/2 heads do not have ` +
      "(their layer reads fc's output unnormalised): not a head this engine runs");
  }
  if (tensors.has("fc.bias") && !fcBias) {
    throw new EagleError(`${file}: holds fc.bias but ${join(dir, "config.json")} says "bias": false`);
  }
  if (!tensors.has("fc.bias") && fcBias) {
    throw new EagleError(`${file}: has no fc.bias but ${join(dir, "config.json")} says "bias": true (the default when absent)`);
  }
}

/** A head whose own weights are this large (at 4 bytes each) is read from memory on every round beside a
 * target too large for the caches; in int8 it reads a quarter of the bytes. The grown 140M pair's 55 MB head:
 * a pass 3.9 ms in f32, 2.8 in bf16, 0.75-0.78 in int8 against bf16's 1.30-1.37 (one thread, after a target
 * step). The shipped 0.2 MB head stays in cache, where narrower weights only add conversions (bf16: 82 -> 106 us). */
export const NARROW_HEAD_BYTES = 16 * 2 ** 20;

/**
 * `dtype`: the head's own weights (the target's embedding and LM head are shared as they are); by default
 * int8 for a large head on the CPU kernels (NARROW_HEAD_BYTES), else the model's. A dtype other than the
 * model's is for the CPU kernels only, which compute in float32 whatever the weights are (int8: each
 * product's weights rounded with one scale per output, et.h's ET_I8); the target verifies every draft token,
 * so the head's precision changes how much is accepted, never the output.
 */
export function loadDraft(dir: string, target: LoadedModel, dtype?: WeightDTypeName): LoadedDraft {
  const mixable = mixableWith(target);
  if (dtype !== undefined && dtype !== target.placement.dtype && !mixable) {
    throw new EagleError(`--draft-dtype ${dtype}: a head's dtype may differ from the model's (${target.placement.dtype}) ` +
      `only on the CPU kernels (--device cpu, ET_CPU_KERNELS not 0, head_dim <= ${KERNELS_MAX_HEAD_DIM})`, 2);
  }
  checkModelDir(dir);
  const { config, fcBias } = loadDraftConfig(dir, target.config);
  const tensors = headTensors(dir);
  checkHeadTensors(dir, tensors, fcBias);
  dtype ??= defaultHeadDtype(target.placement, 4 * weightElements(tensors), mixable);
  try {
    const placement = { ...target.placement, dtype };
    const model = buildModel(config, placement, { fcBias }, tensors, draftTarget, (m) => m.shareFrom(target.model));
    return { dir, config, fcBias, dtype, model };
  } catch (e) {
    if (e instanceof EagleError) throw new EagleError(`${dir}: ${e.message}`);
    throw e;
  }
}
