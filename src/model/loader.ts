// loader.ts — a Hugging Face model directory into a shim Model: config, memory-mapped safetensors weights.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { type ModelConfig, loadConfig } from "./config.ts";
import { autoThreads, cpuKernels, DTypeCode, DeviceCode, MappedFile, Model, WeightKind, cudaAvailable, torchVersion } from "../native/engine.ts";
import { EagleError } from "../util/errors.ts";
import { ropeInvFreq } from "./rope.ts";
import { clearStatus, showStatus } from "../util/status-line.ts";
import { checkFits, type DeviceName } from "../native/memory.ts";
import { type DType, type TensorInfo, listModelTensors } from "../formats/safetensors.ts";
import { readTorchZip } from "../formats/torch-zip.ts";

export type { DeviceName };
export type DTypeName = "f32" | "f16" | "bf16";
/** What a model's weights may be held in: a compute dtype, or int8 (the products' weights with a scale per
 * output, float32 compute; for draft heads on the CPU kernels). */
export type WeightDTypeName = DTypeName | "int8";

export interface Placement {
  device: DeviceName;
  dtype: DTypeName;
}

/** Where a model's weights go and what they are held in (a head's may be int8). */
export interface WeightPlacement {
  device: DeviceName;
  dtype: WeightDTypeName;
}

export interface LoadedModel {
  dir: string;
  config: ModelConfig;
  placement: Placement;
  model: Model;
}

const GLOBAL: Record<string, WeightKind> = {
  "model.embed_tokens.weight": WeightKind.Embed,
  "model.norm.weight": WeightKind.Norm,
  "lm_head.weight": WeightKind.LmHead,
};

export const PER_LAYER: Record<string, WeightKind> = {
  "input_layernorm.weight": WeightKind.AttnNorm,
  "self_attn.q_proj.weight": WeightKind.Q,
  "self_attn.k_proj.weight": WeightKind.K,
  "self_attn.v_proj.weight": WeightKind.V,
  "self_attn.o_proj.weight": WeightKind.O,
  "self_attn.q_proj.bias": WeightKind.QBias,
  "self_attn.k_proj.bias": WeightKind.KBias,
  "self_attn.v_proj.bias": WeightKind.VBias,
  "post_attention_layernorm.weight": WeightKind.FfnNorm,
  "mlp.gate_proj.weight": WeightKind.Gate,
  "mlp.up_proj.weight": WeightKind.Up,
  "mlp.down_proj.weight": WeightKind.Down,
};

// buffers some exporters save that the forward recomputes
const IGNORED = /\.rotary_emb\.inv_freq$/;

const FILE_DTYPES: Record<DType, DTypeCode> = { F32: DTypeCode.F32, F16: DTypeCode.F16, BF16: DTypeCode.BF16 };
const COMPUTE_DTYPES: Record<WeightDTypeName, DTypeCode> = { f32: DTypeCode.F32, f16: DTypeCode.F16, bf16: DTypeCode.BF16, int8: DTypeCode.I8 };
export const DTYPE_BYTES: Record<WeightDTypeName, number> = { f32: 4, f16: 2, bf16: 2, int8: 1 };

function envChoice<T extends string>(name: string, choices: readonly T[]): T | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  if (!choices.includes(v as T)) throw new EagleError(`${name}=${v}: must be one of ${choices.join(", ")}`, 2);
  return v as T;
}

/** Whether libtorch `version` computes in f16 on the CPU: 1.12 removed its half-precision CPU matmul
 * ("addmm_impl_cpu_" not implemented for 'Half'), 2.1 brought one back. */
export function cpuHalfCompute(version: string): boolean {
  const [major, minor] = version.split(".").map((p) => Number.parseInt(p, 10));
  return major > 2 || (major === 2 && minor >= 1);
}

/** The flags, else $EAGLE_DEVICE / $EAGLE_DTYPE, else cuda + bf16 when CUDA is there; on the CPU, the dtype of
 * a checkpoint stored wholly in bf16 or f16 (`modelDir`) where the CPU kernels run it (the same bits as f32 on
 * those weights, in half the memory and bytes per step), else f32. f16 on the CPU without the kernels is
 * refused here, before any weight is read, where libtorch has no f16 CPU matmul. */
export function resolvePlacement(device?: DeviceName, dtype?: DTypeName, modelDir?: string): Placement {
  const dtypeFrom = dtype !== undefined ? "--dtype " : "EAGLE_DTYPE=";
  device ??= envChoice("EAGLE_DEVICE", ["cpu", "cuda"] as const);
  dtype ??= envChoice("EAGLE_DTYPE", ["f32", "f16", "bf16"] as const);
  const dev = device ?? (cudaAvailable() ? "cuda" : "cpu");
  if (dev === "cuda" && !cudaAvailable()) throw new EagleError("--device cuda: CUDA is not available to this libtorch");
  if (dev === "cpu" && dtype === "f16" && cpuKernels() === "off" && !cpuHalfCompute(torchVersion())) {
    throw new EagleError(`${dtypeFrom}f16: f16 compute is not available on the CPU with this libtorch (${torchVersion()}); use --dtype f32 or bf16`, 2);
  }
  if (dtype !== undefined) return { device: dev, dtype };
  if (dev === "cuda") return { device: dev, dtype: "bf16" };
  const stored = modelDir !== undefined && cpuKernels() !== "off" ? storedDtype(modelDir) : null;
  return { device: dev, dtype: stored === "BF16" ? "bf16" : stored === "F16" ? "f16" : "f32" };
}

/** The one dtype every tensor of the model's safetensors is stored in, or null (mixed, or unreadable: the
 * load that follows says why). Headers only. */
function storedDtype(dir: string): DType | null {
  try {
    const tensors = [...listModelTensors(dir).values()];
    return tensors.length > 0 && tensors.every((t) => t.dtype === tensors[0].dtype) ? tensors[0].dtype : null;
  } catch (e) {
    if (e instanceof EagleError) return null;
    throw e;
  }
}

export interface WeightTarget {
  kind: WeightKind;
  layer: number;
}

function targetOf(name: string, nLayers: number): WeightTarget | null {
  if (name in GLOBAL) return { kind: GLOBAL[name], layer: -1 };
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  if (m && m[2] in PER_LAYER) {
    const layer = Number(m[1]);
    if (layer < nLayers) return { kind: PER_LAYER[m[2]], layer };
  }
  return null;
}

export function checkModelDir(dir: string): void {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new EagleError(`${dir}: model directory not found`);
}

/** A shim model for `config` on `placement`, its weights set from `tensors` named as `targetFor` maps them. */
export function buildModel(config: ModelConfig, placement: WeightPlacement, draft: { fcBias: boolean } | null,
  tensors: Map<string, TensorInfo>, targetFor: (name: string) => WeightTarget | null, attach?: (m: Model) => void): Model {
  checkWeightsFit(tensors, placement);
  const model = Model.create({
    hiddenSize: config.hiddenSize, intermediateSize: config.intermediateSize, nLayers: config.nLayers,
    nHeads: config.nHeads, nKvHeads: config.nKvHeads, headDim: config.headDim, vocabSize: config.vocabSize,
    attentionBias: config.attentionBias, tieEmbeddings: config.tieEmbeddings && !draft,
    dtype: COMPUTE_DTYPES[placement.dtype], device: placement.device === "cuda" ? DeviceCode.CUDA : DeviceCode.CPU,
    deviceIndex: 0, draft: draft !== null, fcBias: draft?.fcBias ?? false, rmsNormEps: config.rmsNormEps,
    attentionScale: 1 / Math.sqrt(config.headDim),
  }, ropeInvFreq(config));
  try {
    setWeights(model, tensors, targetFor);
    attach?.(model);
    model.finish();
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/** The elements of the weights a model is built from (headers only). */
export function weightElements(tensors: Map<string, TensorInfo>): number {
  let elements = 0;
  for (const t of tensors.values()) if (!IGNORED.test(t.name)) elements += t.shape.reduce((a, b) => a * b, 1);
  return elements;
}

/** Refuses weights that cannot fit where they are going, before any is read. */
function checkWeightsFit(tensors: Map<string, TensorInfo>, placement: WeightPlacement): void {
  const elements = weightElements(tensors);
  const hint = placement.dtype === "f32" ? "try --dtype bf16 or a machine with more memory" : "it needs a device with more memory";
  checkFits("", placement.device, [{ what: `weights in ${placement.dtype}`, bytes: elements * DTYPE_BYTES[placement.dtype] }], hint);
}

/** A head's tensors by name, from model.safetensors or else pytorch_model.bin. */
export function headTensors(dir: string): Map<string, TensorInfo> {
  if (existsSync(join(dir, "model.safetensors"))) return listModelTensors(dir);
  const bin = join(dir, "pytorch_model.bin");
  if (existsSync(bin)) return new Map(readTorchZip(bin).map((t) => [t.name, t]));
  throw new EagleError(`${dir}: no draft weights (model.safetensors or pytorch_model.bin)`);
}

/** An EAGLE head's folder (one layer; fc.weight and no model.embed_tokens.weight) where a model should be. */
function isDraftHead(dir: string, config: ModelConfig): boolean {
  if (config.nLayers !== 1) return false;
  const hasWeights = ["model.safetensors", "pytorch_model.bin"].some((f) => existsSync(join(dir, f)));
  if (!hasWeights) return false;
  const names = headTensors(dir);
  return names.has("fc.weight") && !names.has("model.embed_tokens.weight");
}

export function loadModel(dir: string, placement: Placement): LoadedModel {
  checkModelDir(dir);
  const config = loadConfig(dir);
  if (isDraftHead(dir, config)) throw new EagleError(`${dir}: this is an EAGLE draft head, not a model; pass it with --draft`, 2);
  const tensors = listModelTensors(dir);
  try {
    const model = buildModel(config, placement, null, tensors, (name) => targetOf(name, config.nLayers));
    autoThreads(model.weightBytes() / DTYPE_BYTES[placement.dtype]);
    return { dir, config, placement, model };
  } catch (e) {
    if (e instanceof EagleError) throw new EagleError(`${dir}: ${e.message}`);
    throw e;
  }
}

// checkpoints this large show a loading line on a terminal
const SHOW_PROGRESS_BYTES = 256 * 2 ** 20;

function setWeights(model: Model, tensors: Map<string, TensorInfo>, targetFor: (name: string) => WeightTarget | null): void {
  const files = new Map<string, MappedFile>();
  const total = [...tensors.values()].reduce((n, t) => n + t.nbytes, 0);
  let done = 0;
  try {
    for (const info of tensors.values()) {
      if (total >= SHOW_PROGRESS_BYTES) {
        showStatus(`loading ${info.file}: ${((100 * done) / total).toFixed(0)}% of ${(total / 2 ** 30).toFixed(2)} GiB`);
      }
      done += info.nbytes;
      if (IGNORED.test(info.name)) continue;
      const target = targetFor(info.name);
      if (!target) throw new EagleError(`${info.file}: unexpected tensor "${info.name}"`);
      let file = files.get(info.file);
      if (!file) files.set(info.file, (file = MappedFile.open(info.file)));
      model.setWeight(target.kind, target.layer, {
        file, offset: info.offset, nbytes: info.nbytes, dtype: FILE_DTYPES[info.dtype], shape: info.shape,
      }, `${info.file}: tensor "${info.name}"`);
    }
  } finally {
    // weights keep their own reference to a mapping; these handles are no longer needed
    for (const f of files.values()) f.dispose();
    clearStatus();
  }
}
