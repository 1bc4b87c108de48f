// head-io.ts — a trained head on disk, in the official EAGLE layout that loadDraft reads: config.json (the
// target's config with one layer), model.safetensors (fc.*, layers.0.*; no embed_tokens: the target's is
// shared), plus trainer_state.json (the step count, for --resume) and training.json (how it was made).
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.ts";
import { readJsonFile } from "../model/config.ts";
import { EagleError } from "../util/errors.ts";
import { listModelTensors, readTensorF32, writeSafetensors } from "../formats/safetensors.ts";
import type { HeadTrainer } from "./trainer.ts";

export interface TrainerState {
  step: number;  // optimizer steps completed
  steps: number; // the run's target
  seed: number;
}

export function holdsHead(dir: string): boolean {
  return existsSync(join(dir, "config.json")) || existsSync(join(dir, "model.safetensors"));
}

/** Refuses to overwrite a head unless told to; --resume needs one to continue. */
export function checkOut(out: string, o: { force: boolean; resume: boolean }): void {
  if (existsSync(out) && !statSync(out).isDirectory()) throw new EagleError(`--out ${out}: exists and is not a directory`, 2);
  if (o.resume && !existsSync(join(out, "model.safetensors"))) {
    throw new EagleError(`--resume: ${out} holds no head to continue (no model.safetensors)`, 2);
  }
  if (!o.resume && !o.force && holdsHead(out)) {
    throw new EagleError(`--out ${out} already holds a head: pass --force to overwrite it or --resume to continue it`, 2);
  }
}

/** The head's config.json: the target's, with one layer, Llama architecture and the fc bias flag. */
export function headConfigJson(targetDir: string, fcBias: boolean): Record<string, unknown> {
  const raw = readJsonFile(join(targetDir, "config.json"));
  return {
    ...raw, architectures: ["LlamaForCausalLM"], model_type: "llama", num_hidden_layers: 1, bias: fcBias,
    attention_bias: false, torch_dtype: "float32",
  };
}

/** Loads every parameter of the trainer's head from `dir`/model.safetensors (an own embedding is ignored). */
export function loadHeadParams(dir: string, trainer: HeadTrainer): void {
  const tensors = listModelTensors(dir);
  for (const p of trainer.params) {
    const info = tensors.get(p.name);
    if (!info) throw new EagleError(`${dir}: tensor "${p.name}" is missing`);
    if (JSON.stringify(info.shape) !== JSON.stringify(p.shape)) {
      throw new EagleError(`${dir}: tensor "${p.name}" has shape ${JSON.stringify(info.shape)}, expected ${JSON.stringify(p.shape)}`);
    }
    trainer.setParam(p.name, readTensorF32(info));
  }
  const known = new Set([...trainer.params.map((p) => p.name), "embed_tokens.weight"]);
  const extra = [...tensors.keys()].filter((n) => !known.has(n));
  if (extra.length > 0) throw new EagleError(`${dir}: tensors this trainer cannot train: ${extra.join(", ")}`);
}

export function readTrainerState(dir: string): TrainerState {
  const path = join(dir, "trainer_state.json");
  if (!existsSync(path)) return { step: 0, steps: 0, seed: 0 }; // an official head: fine-tune from step 0
  const raw = readJsonFile(path);
  const int = (k: string) => {
    const v = raw[k];
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw new EagleError(`${path}: "${k}" must be an integer >= 0`);
    return v as number;
  };
  return { step: int("step"), steps: int("steps"), seed: int("seed") };
}

export interface HeadFiles {
  config: Record<string, unknown>;
  state: TrainerState;
  training: Record<string, unknown>;
}

/** Writes the head to `out`: a new directory appears whole (written beside it, then renamed); in an existing
 * one each file is replaced atomically, weights first. */
export function saveHead(out: string, trainer: HeadTrainer, files: HeadFiles): void {
  const fresh = !existsSync(out);
  const dir = fresh ? `${out.replace(/\/+$/, "")}.tmp-${process.pid}` : out;
  try {
    if (fresh) mkdirSync(dir, { recursive: true });
    const tensors = trainer.params.map((p) => ({ name: p.name, dtype: "F32" as const, shape: p.shape, data: trainer.getParam(p.name) }));
    writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
    writeFileAtomic(join(dir, "config.json"), `${JSON.stringify(files.config, null, 2)}\n`);
    writeFileAtomic(join(dir, "trainer_state.json"), `${JSON.stringify(files.state, null, 2)}\n`);
    writeFileAtomic(join(dir, "training.json"), `${JSON.stringify(files.training, null, 2)}\n`);
    if (fresh) renameSync(dir, out);
  } catch (e) {
    if (fresh) rmSync(dir, { recursive: true, force: true });
    throw e instanceof EagleError ? e : new EagleError(`${out}: cannot save the head: ${(e as Error).message}`);
  }
}

