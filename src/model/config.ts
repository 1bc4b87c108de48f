// config.ts — a Hugging Face config.json read once into a typed, validated ModelConfig.
import { existsSync } from "node:fs";
import { readTextFile } from "../util/files.ts";
import { join } from "node:path";
import { shortJson } from "../util/short-json.ts";
import { EagleError } from "../util/errors.ts";

export type RopeScaling =
  | { type: "linear"; factor: number }
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

export interface ModelConfig {
  architecture: string;
  modelType: string;
  hiddenSize: number;
  intermediateSize: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  attentionBias: boolean;
  tieEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  torchDtype: string | null;
}

// what the forward computes: Llama's block (SiLU-gated MLP), with q/k/v biases for qwen2
const SUPPORTED: Record<string, string> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
};

type Json = Record<string, unknown>;

export function readJsonFile(path: string): Json {
  if (!existsSync(path)) throw new EagleError(`${path}: file not found`);
  const text = readTextFile(path, "JSON file");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new EagleError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new EagleError(`${path}: expected a JSON object`);
  }
  return value as Json;
}

/** Field readers that name the file and field at fault. */
function fields(path: string, raw: Json) {
  const bad = (key: string, want: string): never => {
    throw new EagleError(`${path}: field "${key}" must be ${want}, got ${shortJson(raw[key])}`);
  };
  const int = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (v === undefined) throw new EagleError(`${path}: missing field "${key}"`);
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) return bad(key, "a positive integer");
    return v;
  };
  const num = (key: string, fallback: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) return bad(key, "a positive number");
    return v;
  };
  const ids = (key: string): number[] => {
    const v = raw[key];
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x) => Number.isSafeInteger(x) && x >= 0)) return bad(key, "a token id or a list of them");
    return list as number[];
  };
  return { int, num, ids, bad };
}

function readRopeScaling(path: string, raw: unknown): RopeScaling | null {
  if (raw === undefined || raw === null) return null;
  const r = raw as Json;
  const type = r.rope_type ?? r.type;
  const f = fields(`${path} rope_scaling`, r);
  if (type === "default") return null;
  if (type === "linear") return { type, factor: f.num("factor", NaN) };
  if (type === "llama3") {
    return {
      type, factor: f.num("factor", NaN), lowFreqFactor: f.num("low_freq_factor", NaN),
      highFreqFactor: f.num("high_freq_factor", NaN), originalMaxPositions: f.int("original_max_position_embeddings"),
    };
  }
  throw new EagleError(`${path}: rope_scaling type ${shortJson(type)} is not supported (linear, llama3)`);
}

/** The architecture and model type, which must agree; either may be missing (Llama when both are). */
function readArchitecture(path: string, raw: Json, f: ReturnType<typeof fields>): { architecture: string; modelType: string } {
  const archs = raw.architectures;
  const named = Array.isArray(archs) && typeof archs[0] === "string" ? archs[0] : undefined;
  const type = raw.model_type;
  if (type !== undefined && typeof type !== "string") f.bad("model_type", "a string");
  const types = [...new Set(Object.values(SUPPORTED))];
  if (named === undefined && type !== undefined && !types.includes(type as string)) {
    throw new EagleError(`${path}: field "model_type" ${shortJson(type)} is not supported (${types.join(", ")})`);
  }
  const architecture = named ?? Object.keys(SUPPORTED).find((a) => SUPPORTED[a] === type) ?? "LlamaForCausalLM";
  const modelType = SUPPORTED[architecture];
  if (!modelType) {
    throw new EagleError(`${path}: architecture "${architecture}" is not supported (${Object.keys(SUPPORTED).join(", ")})`);
  }
  if (type !== undefined && type !== modelType) {
    throw new EagleError(`${path}: field "model_type" is ${shortJson(type)} but architecture "${architecture}" is "${modelType}"`);
  }
  return { architecture, modelType };
}

export function parseConfig(path: string, raw: Json): ModelConfig {
  const f = fields(path, raw);
  const { architecture, modelType } = readArchitecture(path, raw, f);
  // the MLP is down(silu(gate(x)) * up(x)); "swish" is the same function under its other name
  const act = raw.hidden_act ?? "silu";
  if (act !== "silu" && act !== "swish") f.bad("hidden_act", '"silu" (the MLP is SiLU-gated)');
  const hiddenSize = f.int("hidden_size");
  const nHeads = f.int("num_attention_heads");
  const nKvHeads = f.int("num_key_value_heads", nHeads);
  if (nHeads % nKvHeads !== 0) {
    throw new EagleError(`${path}: num_attention_heads (${nHeads}) is not a multiple of num_key_value_heads (${nKvHeads})`);
  }
  if (raw.head_dim === undefined && hiddenSize % nHeads !== 0) {
    throw new EagleError(`${path}: hidden_size (${hiddenSize}) is not a multiple of num_attention_heads (${nHeads})`);
  }
  const headDim = f.int("head_dim", hiddenSize / nHeads);
  if (headDim % 2 !== 0) f.bad("head_dim", "even");
  const eos = f.ids("eos_token_id");
  const bos = f.ids("bos_token_id");
  return {
    architecture, modelType, hiddenSize, nHeads, nKvHeads, headDim,
    intermediateSize: f.int("intermediate_size"),
    nLayers: f.int("num_hidden_layers"),
    vocabSize: f.int("vocab_size"),
    maxPositions: f.int("max_position_embeddings", 2048),
    rmsNormEps: f.num("rms_norm_eps", 1e-6),
    ropeTheta: f.num("rope_theta", 10000),
    ropeScaling: readRopeScaling(path, raw.rope_scaling),
    attentionBias: modelType === "qwen2" || raw.attention_bias === true,
    tieEmbeddings: raw.tie_word_embeddings === true,
    bosTokenId: bos[0] ?? null,
    eosTokenIds: eos,
    torchDtype: typeof raw.torch_dtype === "string" ? raw.torch_dtype : null,
  };
}

export function loadConfig(dir: string): ModelConfig {
  const path = join(dir, "config.json");
  return parseConfig(path, readJsonFile(path));
}
