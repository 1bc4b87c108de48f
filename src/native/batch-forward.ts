// batch-forward.ts — several sequences' forwards in one shim call (et_forward_batch, et_draft_forward_batch):
// each sequence's cache, new tokens, mask and results packed side by side; each gets in its own output what
// its forward alone would give it.
import { shim } from "./ffi.ts";
import { type Batch, checkFeatureRows, draftForward, forward, KvCache, maskColumns, Model, StepOutput, timed } from "./engine.ts";

/** One sequence's share of a batched forward: its cache, its new tokens, where its results go. */
export interface SequenceForward {
  kv: KvCache;
  batch: Batch;
  out: StepOutput;
}

/** Several sequences' forwards in one call (et_forward_batch): each gets in its own `out` what forward()
 * would give it alone. Caches and outputs must be distinct. One sequence alone takes the plain call, which
 * computes the same and packs nothing. */
export function forwardBatch(model: Model, seqs: SequenceForward[]): void {
  if (seqs.length === 1) return forward(model, seqs[0].kv, seqs[0].batch, seqs[0].out);
  const p = packBatch(seqs);
  timed(() => shim().et_forward_batch(Model.ptrOf(model), seqs.length, p.kvs, p.counts, p.tokens, p.positions, p.masks,
    p.cols, p.outs), "batched forward");
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
    features[i] = BigInt(StepOutput.ptrOf(s.features));
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
    kvs[i] = BigInt(KvCache.ptrOf(s.kv));
    outs[i] = BigInt(StepOutput.ptrOf(s.out));
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
