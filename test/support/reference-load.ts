// loading the reference model: hf directories (config.json + safetensors) and llama2.c checkpoints,
// with the rope frequencies derived here from the config rather than taken from src.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fail } from "../../src/util/errors.ts";
import { listModelTensors, readTensorF32 } from "../../src/formats/safetensors.ts";
import type { RefConfig, RefLayer, RefModel } from "./reference.ts";
import { readLlama2c } from "./llama2c-reader.ts";

type Json = Record<string, unknown>;

function num(obj: Json, key: string, where: string, fallback?: number): number {
  const v = obj[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) fail(`reference: ${where} has no numeric ${key}`);
  return v;
}

// inv_freq[i] = theta^(-2i/d), then the config's rope_scaling:
// linear divides every frequency by factor (positions stretched by factor);
// llama3 leaves wavelengths below original/high_freq_factor alone, divides those above
// original/low_freq_factor by factor, and blends linearly in between
export function ropeInvFreq(headDim: number, theta: number, scaling: Json | null | undefined): Float64Array {
  const base = Float64Array.from({ length: headDim / 2 }, (_, i) => 1 / theta ** ((2 * i) / headDim));
  const kind = scaling ? (scaling.rope_type ?? scaling.type) : "default";
  if (kind === "default") return base;
  const s = scaling as Json;
  const factor = num(s, "factor", "rope_scaling");
  if (kind === "linear") return base.map((f) => f / factor);
  if (kind !== "llama3") fail(`reference: rope_scaling type ${String(kind)} is not supported`);
  const low = num(s, "low_freq_factor", "rope_scaling");
  const high = num(s, "high_freq_factor", "rope_scaling");
  const original = num(s, "original_max_position_embeddings", "rope_scaling");
  return base.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < original / high) return f;
    if (wavelen > original / low) return f / factor;
    const smooth = (original / wavelen - low) / (high - low);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

function hfConfig(dir: string): RefConfig {
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Json;
  const where = `${dir}/config.json`;
  const hiddenSize = num(cfg, "hidden_size", where);
  const heads = num(cfg, "num_attention_heads", where);
  const headDim = num(cfg, "head_dim", where, hiddenSize / heads);
  return {
    hiddenSize,
    intermediateSize: num(cfg, "intermediate_size", where),
    layers: num(cfg, "num_hidden_layers", where),
    heads,
    kvHeads: num(cfg, "num_key_value_heads", where, heads),
    headDim,
    vocabSize: num(cfg, "vocab_size", where),
    rmsEps: num(cfg, "rms_norm_eps", where),
    ropeStyle: "half",
    invFreq: ropeInvFreq(headDim, num(cfg, "rope_theta", where, 10000), cfg.rope_scaling as Json | null),
  };
}

// a model from a hugging face directory; biases are used wherever the files have them
export function loadRefModel(dir: string): RefModel {
  const c = hfConfig(dir);
  const tensors = listModelTensors(dir);
  const get = (name: string, shape: number[]) => {
    const info = tensors.get(name) ?? fail(`reference: ${dir} has no tensor ${name}`);
    if (info.shape.join(",") !== shape.join(",")) fail(`reference: ${name} is [${info.shape}], expected [${shape}]`);
    return readTensorF32(info);
  };
  const maybe = (name: string, shape: number[]) => (tensors.has(name) ? get(name, shape) : undefined);
  const [H, I, q, kv] = [c.hiddenSize, c.intermediateSize, c.heads * c.headDim, c.kvHeads * c.headDim];
  const layers: RefLayer[] = [];
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}.`;
    layers.push({
      attnNorm: get(p + "input_layernorm.weight", [H]),
      wq: get(p + "self_attn.q_proj.weight", [q, H]),
      wk: get(p + "self_attn.k_proj.weight", [kv, H]),
      wv: get(p + "self_attn.v_proj.weight", [kv, H]),
      wo: get(p + "self_attn.o_proj.weight", [H, q]),
      bq: maybe(p + "self_attn.q_proj.bias", [q]),
      bk: maybe(p + "self_attn.k_proj.bias", [kv]),
      bv: maybe(p + "self_attn.v_proj.bias", [kv]),
      bo: maybe(p + "self_attn.o_proj.bias", [H]),
      ffnNorm: get(p + "post_attention_layernorm.weight", [H]),
      wGate: get(p + "mlp.gate_proj.weight", [I, H]),
      wUp: get(p + "mlp.up_proj.weight", [I, H]),
      wDown: get(p + "mlp.down_proj.weight", [H, I]),
    });
  }
  const embed = get("model.embed_tokens.weight", [c.vocabSize, H]);
  // an lm_head in the files wins; without one the head is the embedding (tie_word_embeddings)
  const lmHead = maybe("lm_head.weight", [c.vocabSize, H]) ?? embed;
  return { config: c, embed, layers, finalNorm: get("model.norm.weight", [H]), lmHead };
}

// a model straight from a llama2.c checkpoint: original weight layout, adjacent-pair rope, theta 10000
export function loadRefLlama2c(path: string): RefModel {
  const { config: k, weights: w } = readLlama2c(path);
  const headDim = k.dim / k.nHeads;
  const kvDim = headDim * k.nKvHeads;
  const c: RefConfig = {
    hiddenSize: k.dim,
    intermediateSize: k.hiddenDim,
    layers: k.nLayers,
    heads: k.nHeads,
    kvHeads: k.nKvHeads,
    headDim,
    vocabSize: k.vocabSize,
    rmsEps: 1e-5,
    ropeStyle: "adjacent",
    invFreq: ropeInvFreq(headDim, 10000, null),
  };
  // layer l's slice of an array concatenated over layers
  const slice = (a: Float32Array, l: number, size: number) => a.subarray(l * size, (l + 1) * size);
  const layers = Array.from({ length: k.nLayers }, (_, l): RefLayer => ({
    attnNorm: slice(w.rmsAtt, l, k.dim),
    wq: slice(w.wq, l, k.dim * k.dim),
    wk: slice(w.wk, l, kvDim * k.dim),
    wv: slice(w.wv, l, kvDim * k.dim),
    wo: slice(w.wo, l, k.dim * k.dim),
    ffnNorm: slice(w.rmsFfn, l, k.dim),
    wGate: slice(w.w1, l, k.hiddenDim * k.dim),
    wUp: slice(w.w3, l, k.hiddenDim * k.dim),
    wDown: slice(w.w2, l, k.dim * k.hiddenDim),
  }));
  return { config: c, embed: w.tokenEmbedding, layers, finalNorm: w.rmsFinal, lmHead: w.wcls ?? w.tokenEmbedding };
}
