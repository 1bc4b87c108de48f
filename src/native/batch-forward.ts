// batch-forward.ts — several sequences' forwards in one shim call (et_forward_batch, et_draft_forward_batch):
// each sequence's cache, new tokens, mask and results packed side by side; each gets in its own output what
// its forward alone would give it.
import { shim } from "./ffi.ts";
import { EagleError } from "../util/errors.ts";
import { type Batch, checkFeatureRows, draftForward, forward, KvCache, maskColumns, Model, StepOutput, timed } from "./engine.ts";

/** One sequence's share of a batched forward: its cache, its new tokens, where its results go. */
export interface SequenceForward {
  kv: KvCache;
  batch: Batch;
  out: StepOutput;
  /** When present (one entry per new token), forwardBatch also reads the argmax of each row into it: for all
   * the sequences of a call in one more call rather than one each. */
  argmax?: Int32Array;
}

/** Several sequences' forwards in one call (et_forward_batch): each gets in its own `out` what forward()
 * would give it alone, and the argmax of its rows where it asks (SequenceForward.argmax). Caches and outputs
 * must be distinct. One sequence alone takes the plain calls, which compute the same and pack nothing. */
export function forwardBatch(model: Model, seqs: SequenceForward[]): void {
  seqs.forEach(checkArgmax); // before any cache moves on
  if (seqs.length === 1) {
    const s = seqs[0];
    forward(model, s.kv, s.batch, s.out);
    if (s.argmax) s.argmax.set(s.out.argmax(undefined, s.batch.tokens.length));
    return;
  }
  const p = packBatch(seqs);
  timed(() => shim().et_forward_batch(Model.ptrOf(model), seqs.length, p.kvs, p.counts, p.tokens, p.positions, p.masks,
    p.cols, p.outs), "batched forward");
  argmaxEach(seqs);
}

// a sequence's argmax buffer, when it asks: one entry per new token
function checkArgmax(s: SequenceForward, i: number): void {
  if (s.argmax !== undefined && s.argmax.length !== s.batch.tokens.length) {
    throw new EagleError(`sequence ${i}: argmax buffer of ${s.argmax.length} entries for ${s.batch.tokens.length} new tokens`);
  }
}

// the argmax of every row of the sequences that ask for it, in one call (et_out_argmax_each)
function argmaxEach(seqs: SequenceForward[]): void {
  const asking = seqs.filter((s) => s.argmax !== undefined);
  if (asking.length === 0) return;
  const outs = new BigUint64Array(asking.length), counts = new Int32Array(asking.length);
  let rows = 0;
  asking.forEach((s, i) => {
    outs[i] = StepOutput.addressOf(s.out);
    counts[i] = s.argmax!.length;
    rows += counts[i];
  });
  const ids = new Int32Array(rows);
  timed(() => shim().et_out_argmax_each(asking.length, outs, counts, ids), "argmax");
  let at = 0;
  for (const s of asking) for (let j = 0; j < s.argmax!.length; j++) s.argmax![j] = ids[at++];
}

/** One sequence's share of a batched draft forward: entry i pairs batch.tokens[i] with row featureRows[i] of
 * `features`, as draftForward does. */
export interface DraftSequenceForward extends SequenceForward {
  features: StepOutput;
  featureRows: Int32Array;
}

/** Several sequences' draft-head forwards in one call (et_draft_forward_batch): each gets in its own `out`
 * what draftForward() would give it alone (one sequence alone: through the plain call). */
export function draftForwardBatch(draft: Model, seqs: DraftSequenceForward[]): void {
  if (seqs.length === 1) {
    const s = seqs[0];
    return draftForward(draft, s.kv, s.batch, s.features, s.featureRows, s.out);
  }
  const p = packBatch(seqs);
  const rows = new Int32Array(p.tokens.length);
  const features = new BigUint64Array(seqs.length);
  let at = 0;
  seqs.forEach((s, i) => {
    checkFeatureRows(s.batch, s.featureRows, `draft batch ${i}`);
    rows.set(s.featureRows, at);
    at += s.featureRows.length;
    features[i] = StepOutput.addressOf(s.features);
  });
  timed(() => shim().et_draft_forward_batch(Model.ptrOf(draft), seqs.length, p.kvs, p.counts, p.tokens, p.positions,
    p.masks, p.cols, features, rows, p.outs), "batched draft forward");
}

// the arrays of a batched call: per sequence its cache, row count, mask width and results; every
// sequence's tokens, positions and mask bytes in turn
function packBatch(seqs: SequenceForward[]) {
  const b = seqs.length;
  const counts = new Int32Array(b), cols = new Int32Array(b);
  const kvs = new BigUint64Array(b), outs = new BigUint64Array(b);
  let rows = 0, maskBytes = 0;
  seqs.forEach((s, i) => {
    cols[i] = maskColumns(s.batch); // 0: causal
    counts[i] = s.batch.tokens.length;
    kvs[i] = KvCache.addressOf(s.kv);
    outs[i] = StepOutput.addressOf(s.out);
    rows += counts[i];
    maskBytes += s.batch.mask?.length ?? 0;
  });
  const tokens = new Int32Array(rows), positions = new Int32Array(rows), masks = new Uint8Array(Math.max(1, maskBytes));
  let at = 0, maskAt = 0;
  for (const s of seqs) {
    tokens.set(s.batch.tokens, at);
    positions.set(s.batch.positions, at);
    at += s.batch.tokens.length;
    if (s.batch.mask) {
      masks.set(s.batch.mask, maskAt);
      maskAt += s.batch.mask.length;
    }
  }
  return { counts, cols, kvs, outs, tokens, positions, masks };
}
