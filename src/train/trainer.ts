// trainer.ts — the shim's draft-head trainer (ffi/et_train.h) as a typed handle: parameters in and out
// as float32, the target's features as a dataset, one optimizer step, one validation pass.
import type { ModelConfig } from "../model/config.ts";
import { DTypeCode, Model, packConfig, WeightKind } from "../native/engine.ts";
import { EagleError } from "../util/errors.ts";
import { type Pointer, shim } from "../native/ffi.ts";
import type { LoadedModel } from "../model/loader.ts";
import { ropeInvFreq } from "../model/rope.ts";

export type Split = "train" | "valid";
const SPLIT_CODE: Record<Split, number> = { train: 0, valid: 1 };

/** Numbers from one step or one validation pass (see et_train_stat). */
export interface TrainStats {
  loss: number;     // reg + 0.1 * ce
  reg: number;      // SmoothL1 between predicted and true next features
  ce: number;       // cross-entropy against the target's next-token distribution
  acc: number;      // top-1 agreement with the target
  entries: number;  // positions averaged over
  gradNorm: number; // before clipping; 0 for validation
}

export interface StepParams {
  batch: number;    // sequences per step
  maxLen: number;   // window length in tokens
  lr: number;
  noise: number;    // amplitude of the uniform noise on input features
  gradClip: number; // global gradient norm; 0 = off
  seed: bigint;     // draws the sequences, windows and noise
}

/** One trainable tensor of a head: its official key, weight kind and shape. */
export interface HeadParam {
  name: string;
  kind: WeightKind;
  shape: number[];
}

/** The parameters of a head shaped like `c` (a one-layer Llama config), in the official key names. */
export function headParams(c: ModelConfig, fcBias: boolean): HeadParam[] {
  const [H, I, q, kv] = [c.hiddenSize, c.intermediateSize, c.nHeads * c.headDim, c.nKvHeads * c.headDim];
  const p = (name: string, kind: WeightKind, shape: number[]) => ({ name, kind, shape });
  return [
    p("fc.weight", WeightKind.Fc, [H, 2 * H]),
    ...(fcBias ? [p("fc.bias", WeightKind.FcBias, [H])] : []),
    p("layers.0.self_attn.q_proj.weight", WeightKind.Q, [q, H]),
    p("layers.0.self_attn.k_proj.weight", WeightKind.K, [kv, H]),
    p("layers.0.self_attn.v_proj.weight", WeightKind.V, [kv, H]),
    p("layers.0.self_attn.o_proj.weight", WeightKind.O, [H, q]),
    p("layers.0.post_attention_layernorm.weight", WeightKind.FfnNorm, [H]),
    p("layers.0.mlp.gate_proj.weight", WeightKind.Gate, [I, H]),
    p("layers.0.mlp.up_proj.weight", WeightKind.Up, [I, H]),
    p("layers.0.mlp.down_proj.weight", WeightKind.Down, [H, I]),
  ];
}

function check(rc: number, what: string): void {
  if (rc !== 0) throw new EagleError(`${what}: ${shim().et_last_error()}`);
}

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export class HeadTrainer {
  #ptr: Pointer | null;
  readonly params: HeadParam[];

  private constructor(p: Pointer, readonly config: ModelConfig, readonly fcBias: boolean) {
    this.#ptr = p;
    this.params = headParams(config, fcBias);
  }

  /** A fresh head (initialised from `seed`) of shape `head` for `target`, on the target's device. */
  static create(target: LoadedModel, head: ModelConfig, fcBias: boolean, seed: number): HeadTrainer {
    const packed = packConfig({
      hiddenSize: head.hiddenSize, intermediateSize: head.intermediateSize, nLayers: 1, nHeads: head.nHeads,
      nKvHeads: head.nKvHeads, headDim: head.headDim, vocabSize: head.vocabSize, attentionBias: false,
      tieEmbeddings: false, dtype: DTypeCode.F32, device: target.model.config.device,
      deviceIndex: target.model.config.deviceIndex, draft: true, fcBias, rmsNormEps: head.rmsNormEps,
      attentionScale: 1 / Math.sqrt(head.headDim),
    });
    const box = new BigUint64Array(1);
    check(shim().et_trainer_new(Model.ptrOf(target.model), new Uint8Array(packed), ropeInvFreq(head), BigInt(seed), box),
      "create trainer");
    return new HeadTrainer(Number(box[0]) as Pointer, head, fcBias);
  }

  get #handle(): Pointer {
    if (this.#ptr === null) throw new EagleError("HeadTrainer used after dispose()");
    return this.#ptr;
  }

  #param(name: string): HeadParam {
    const p = this.params.find((x) => x.name === name);
    if (!p) throw new EagleError(`"${name}" is not a parameter of this head`);
    return p;
  }

  setParam(name: string, data: Float32Array): void {
    const p = this.#param(name);
    check(shim().et_trainer_set_param(this.#handle, p.kind, data, data.length), `set ${name}`);
  }

  getParam(name: string): Float32Array {
    const p = this.#param(name);
    const out = new Float32Array(count(p.shape));
    check(shim().et_trainer_get_param(this.#handle, p.kind, out, out.length), `read ${name}`);
    return out;
  }

  /** Runs the target over `tokens` and keeps the sequence's features in `split`. */
  addSequence(tokens: number[], split: Split): void {
    check(shim().et_trainer_features(this.#handle, Int32Array.from(tokens), tokens.length, SPLIT_CODE[split]),
      `features of a ${tokens.length}-token sequence`);
  }

  dataSize(split: Split): { seqs: number; tokens: number } {
    const seqs = new Int32Array(1);
    const tokens = new BigInt64Array(1);
    check(shim().et_trainer_data_size(this.#handle, SPLIT_CODE[split], seqs, tokens), "data size");
    return { seqs: seqs[0], tokens: Number(tokens[0]) };
  }

  step(s: StepParams): TrainStats {
    const out = new Float32Array(6);
    check(shim().et_trainer_step(this.#handle, s.batch, s.maxLen, s.lr, s.noise, s.gradClip, s.seed, out), "training step");
    return stats(out);
  }

  eval(): TrainStats {
    const out = new Float32Array(6);
    check(shim().et_trainer_eval(this.#handle, out), "validation");
    return stats(out);
  }

  dispose(): void {
    if (this.#ptr === null) return;
    shim().et_trainer_free(this.#ptr);
    this.#ptr = null;
  }
}

function stats(o: Float32Array): TrainStats {
  return { loss: o[0], reg: o[1], ce: o[2], acc: o[3], entries: o[4], gradNorm: o[5] };
}
