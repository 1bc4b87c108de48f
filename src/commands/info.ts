// info — what a model directory holds, from its JSON files and safetensors headers alone: shape,
// weights, tokenizer, chat template, and whether a draft head fits it. No weights are loaded.
import { existsSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import type { Argv } from "yargs";
import { findChatTemplate, tokenizerConfig, tokenText } from "../chat/template.ts";
import { loadConfig, type ModelConfig, type RopeScaling, readJsonFile } from "../model/config.ts";
import { headWeightsFile, loadDraftConfig } from "../model/draft.ts";
import { EagleError } from "../util/errors.ts";
import { checkModelDir } from "../model/loader.ts";
import { DEFAULT_MODEL_DIR, siblingHeadDir } from "../util/paths.ts";
import { listModelTensors, type TensorInfo } from "../formats/safetensors.ts";
import { readTorchZip } from "../formats/torch-zip.ts";

export interface InfoArgs {
  model: string;
  draft?: string;
  json: boolean;
  template: boolean;
}

export function infoFlags<T>(y: Argv<T>) {
  return y
    .option("model", { alias: "m", type: "string", default: DEFAULT_MODEL_DIR, describe: "model directory (Hugging Face layout)", defaultDescription: "models/stories260K" })
    .option("draft", { type: "string", describe: "EAGLE draft head directory to check against the model", defaultDescription: "<model>-eagle if it exists" })
    .option("json", { type: "boolean", default: false, describe: "print one JSON object instead of text" })
    .option("template", { type: "boolean", default: false, describe: "print the model's chat template text (nothing else)" });
}

interface WeightFile {
  file: string;
  bytes: number;
  dtypes: string[];
  tensors: number;
}

interface SpecialToken {
  text: string;
  id: number | null;
}

export interface DraftInfo {
  dir: string;
  fits: boolean;
  problem: string | null; // why it does not fit
  hiddenSize: number | null;
  vocabSize: number | null;
  fcBias: boolean | null;   // fc.bias present in the weights
  ownEmbedding: boolean | null; // carries embed_tokens.weight (else shares the target's)
  parameters: number | null;
  weightsFile: string | null; // the file the head is read from (model.safetensors when both are there)
}

export interface ModelInfo {
  dir: string;
  architecture: string;
  modelType: string;
  parameters: number;
  layers: number;
  hiddenSize: number;
  intermediateSize: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocabSize: number;
  context: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  tiedEmbeddings: boolean;
  weights: { files: WeightFile[]; dtypes: string[]; bytes: number };
  tokenizer: { type: string | null; addBos: boolean | null; special: Record<string, SpecialToken> } | null;
  chatTemplate: boolean;
  draft: DraftInfo | null;
}

// buffers some exporters save that are not parameters
const NOT_PARAMETERS = /\.rotary_emb\.inv_freq$/;

export function modelInfo(dir: string, draftDir?: string): ModelInfo {
  checkModelDir(dir);
  const config = loadConfig(dir);
  const tensors = [...listModelTensors(dir).values()];
  const sibling = siblingHeadDir(dir);
  if (draftDir !== undefined && !existsSync(draftDir)) throw new EagleError(`--draft ${draftDir}: directory not found`, 2);
  const draft = draftDir ?? (existsSync(join(sibling, "config.json")) ? sibling : undefined);
  return {
    dir,
    architecture: config.architecture, modelType: config.modelType,
    parameters: parameterCount(tensors),
    layers: config.nLayers, hiddenSize: config.hiddenSize, intermediateSize: config.intermediateSize,
    heads: config.nHeads, kvHeads: config.nKvHeads, headDim: config.headDim, vocabSize: config.vocabSize,
    context: config.maxPositions, ropeTheta: config.ropeTheta, ropeScaling: config.ropeScaling,
    tiedEmbeddings: config.tieEmbeddings,
    weights: weightFiles(tensors),
    tokenizer: tokenizerInfo(dir),
    chatTemplate: findChatTemplate(dir) !== null,
    draft: draft === undefined ? null : draftInfo(draft, config),
  };
}

function parameterCount(tensors: TensorInfo[]): number {
  let n = 0;
  for (const t of tensors) if (!NOT_PARAMETERS.test(t.name)) n += t.shape.reduce((a, b) => a * b, 1);
  return n;
}

function weightFiles(tensors: TensorInfo[]): ModelInfo["weights"] {
  const byFile = new Map<string, WeightFile>();
  for (const t of tensors) {
    let f = byFile.get(t.file);
    if (!f) byFile.set(t.file, (f = { file: basename(t.file), bytes: statSync(t.file).size, dtypes: [], tensors: 0 }));
    if (!f.dtypes.includes(t.dtype)) f.dtypes.push(t.dtype);
    f.tensors++;
  }
  const files = [...byFile.values()].sort((a, b) => a.file.localeCompare(b.file));
  return {
    files,
    dtypes: [...new Set(files.flatMap((f) => f.dtypes))],
    bytes: files.reduce((sum, f) => sum + f.bytes, 0),
  };
}

function tokenizerInfo(dir: string): ModelInfo["tokenizer"] {
  const path = join(dir, "tokenizer.json");
  if (!existsSync(path)) return null;
  const tok = readJsonFile(path);
  const model = (tok.model ?? {}) as Record<string, unknown>;
  const added = Array.isArray(tok.added_tokens) ? (tok.added_tokens as { id?: unknown; content?: unknown }[]) : [];
  const vocab = typeof model.vocab === "object" && model.vocab !== null && !Array.isArray(model.vocab)
    ? (model.vocab as Record<string, unknown>) : {};
  const idOf = (text: string): number | null => {
    const hit = added.find((t) => t.content === text)?.id ?? vocab[text];
    return typeof hit === "number" ? hit : null;
  };
  const config = tokenizerConfig(dir);
  const special: Record<string, SpecialToken> = {};
  for (const role of ["bos", "eos", "unk", "pad"]) {
    const text = tokenText(config[`${role}_token`]);
    if (text !== null) special[role] = { text, id: idOf(text) };
  }
  return {
    type: typeof model.type === "string" ? model.type : null,
    addBos: typeof config.add_bos_token === "boolean" ? config.add_bos_token : null,
    special,
  };
}

function draftInfo(dir: string, target: ModelConfig): DraftInfo {
  const info: DraftInfo = {
    dir, fits: false, problem: null, hiddenSize: null, vocabSize: null, fcBias: null, ownEmbedding: null, parameters: null,
    weightsFile: null,
  };
  try {
    const raw = readJsonFile(join(dir, "config.json"));
    info.hiddenSize = typeof raw.hidden_size === "number" ? raw.hidden_size : null;
    info.vocabSize = typeof raw.vocab_size === "number" ? raw.vocab_size : null;
    const { fcBias } = loadDraftConfig(dir, target); // checks one layer, width and vocabulary
    const tensors = headTensors(dir);
    info.weightsFile = headWeightsFile(dir);
    if (existsSync(join(dir, "pytorch_model.bin")) && info.weightsFile === "model.safetensors") {
      info.weightsFile += " (pytorch_model.bin is there too, not read)";
    }
    const names = new Set(tensors.map((t) => t.name));
    info.fcBias = names.has("fc.bias");
    info.ownEmbedding = names.has("embed_tokens.weight");
    info.parameters = parameterCount(tensors);
    if (!names.has("fc.weight")) throw new EagleError(`${dir}: no fc.weight: not an EAGLE head`);
    if (fcBias !== info.fcBias) {
      throw new EagleError(`${join(dir, "config.json")}: "bias" is ${fcBias} but fc.bias is ${info.fcBias ? "present" : "missing"}`);
    }
    info.fits = true;
  } catch (e) {
    // a head that does not fit is this command's answer, not its failure
    if (!(e instanceof EagleError)) throw e;
    info.problem = e.message;
  }
  return info;
}

function headTensors(dir: string): TensorInfo[] {
  if (headWeightsFile(dir) === "model.safetensors") return [...listModelTensors(dir).values()];
  const bin = join(dir, "pytorch_model.bin");
  if (existsSync(bin)) return readTorchZip(bin);
  throw new EagleError(`${dir}: no draft weights (model.safetensors or pytorch_model.bin)`);
}

export async function runInfo(a: InfoArgs): Promise<void> {
  if (a.template) return printTemplate(a.model, a.json);
  const info = modelInfo(a.model, a.draft);
  process.stdout.write(a.json ? `${JSON.stringify(info, null, 2)}\n` : formatInfo(info));
}

/** `info --template`: the template's text on stdout, as chat renders it, or one line on stderr saying there is
 * none; with --json, {"chat_template": text or null}. */
function printTemplate(dir: string, json: boolean): void {
  checkModelDir(dir);
  const template = findChatTemplate(dir);
  if (json) {
    process.stdout.write(`${JSON.stringify({ chat_template: template })}\n`);
  } else if (template === null) {
    process.stderr.write(`${dir}: no chat template (in tokenizer_config.json or chat_template.jinja): chat uses continuation mode\n`);
  } else {
    process.stdout.write(template.endsWith("\n") ? template : `${template}\n`);
  }
}

export function formatInfo(m: ModelInfo): string {
  const rows: [string, string][] = [
    ["model", m.dir],
    ["architecture", `${m.architecture} (${m.modelType})`],
    ["parameters", `${humanCount(m.parameters)} (${m.parameters.toLocaleString("en-US")})`],
    ["shape", `${m.layers} layers, hidden ${m.hiddenSize}, ffn ${m.intermediateSize}, ${m.heads} heads, ${m.kvHeads} kv heads, head_dim ${m.headDim}`],
    ["vocab", String(m.vocabSize)],
    ["context", `${m.context} tokens`],
    ["rope", `theta ${m.ropeTheta}, ${ropeText(m.ropeScaling)}`],
    ["embeddings", m.tiedEmbeddings ? "tied to the lm head" : "separate lm head"],
    ...m.weights.files.map((f): [string, string] =>
      ["weights", `${f.file}: ${f.tensors} tensors, ${f.dtypes.join("+")}, ${humanBytes(f.bytes)}`]),
    ["", `total ${humanBytes(m.weights.bytes)} in ${m.weights.files.length} file${m.weights.files.length === 1 ? "" : "s"}, ${m.weights.dtypes.join("+")}`],
    ["tokenizer", tokenizerText(m.tokenizer)],
    ["chat template", m.chatTemplate ? "yes" : "none (chat uses continuation mode)"],
    ["draft head", draftText(m.draft)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${k.padEnd(width)}${v}\n`).join("");
}

function ropeText(s: RopeScaling | null): string {
  if (!s) return "no scaling";
  if (s.type === "linear") return `linear scaling x${s.factor}`;
  return `llama3 scaling x${s.factor} (low ${s.lowFreqFactor}, high ${s.highFreqFactor}, original context ${s.originalMaxPositions})`;
}

function tokenizerText(t: ModelInfo["tokenizer"]): string {
  if (!t) return "none (no tokenizer.json)";
  const special = Object.entries(t.special).map(([role, s]) => `${role} ${s.text} (${s.id ?? "?"})`).join(", ");
  const bos = t.addBos === null ? "" : `; ${t.addBos ? "adds" : "does not add"} bos`;
  return `${t.type ?? "unknown type"}; ${special || "no special tokens named"}${bos}`;
}

function draftText(d: DraftInfo | null): string {
  if (!d) return "none found (give one with --draft DIR, or put it at <model>-eagle)";
  if (!d.fits) return `${d.dir}: does not fit: ${d.problem}`;
  return `${d.dir}: fits (hidden ${d.hiddenSize}, vocab ${d.vocabSize}); weights ${d.weightsFile}; fc bias ${d.fcBias ? "yes" : "no"}; ` +
    `own embedding ${d.ownEmbedding ? "yes" : "no (shares the target's)"}; ${humanCount(d.parameters!)} parameters`;
}

function humanCount(n: number): string {
  for (const [unit, size] of [["B", 1e9], ["M", 1e6], ["K", 1e3]] as const) if (n >= size) return `${(n / size).toFixed(1)}${unit}`;
  return String(n);
}

function humanBytes(n: number): string {
  for (const [unit, size] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) if (n >= size) return `${(n / size).toFixed(1)} ${unit}`;
  return `${n} B`;
}
