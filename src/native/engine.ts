// engine.ts — typed handles over the shim. Every call checks its status and throws EagleError with the
// shim's message; every handle has one dispose() that frees it once (later calls on it throw).
import { availableParallelism } from "node:os";
import { type Pointer, shim } from "./ffi.ts";
import { EagleError } from "../util/errors.ts";
import { checkFits } from "./memory.ts";

/** ET_I8: a model whose products hold int8 weights (a scale per output), float32 otherwise; the CPU kernels only. */
export enum DTypeCode { F32 = 0, F16 = 1, BF16 = 2, I8 = 3 }
export enum DeviceCode { CPU = 0, CUDA = 1 }

/** Weight kinds, as et.h numbers them. */
export enum WeightKind {
  Embed = 0, Norm = 1, LmHead = 2, AttnNorm = 3, Q = 4, K = 5, V = 6, O = 7,
  QBias = 8, KBias = 9, VBias = 10, FfnNorm = 11, Gate = 12, Up = 13, Down = 14, Fc = 15, FcBias = 16,
}

function check(rc: number, what: string): void {
  if (rc !== 0) throw new EagleError(`${what}: ${shim().et_last_error()}`);
}

// milliseconds spent inside the shim's compute and read calls, so callers can tell libtorch time (plus
// the FFI crossing) from their own TypeScript time
let nativeMs = 0;

export function nativeMilliseconds(): number {
  return nativeMs;
}

/** Runs a compute or read call of the shim, its time counted as native (for the native modules). */
export function timed(rc: () => number, what: string): void {
  const t0 = performance.now();
  const status = rc();
  nativeMs += performance.now() - t0;
  check(status, what);
}

/** Runs a call that writes one pointer-sized result and returns it. */
function outPointer(what: string, call: (box: BigUint64Array) => number): Pointer {
  const box = new BigUint64Array(1);
  check(call(box), what);
  return Number(box[0]) as Pointer;
}

function outI32(what: string, call: (box: Int32Array) => number): number {
  const box = new Int32Array(1);
  check(call(box), what);
  return box[0];
}

type ArrayKind = Int32ArrayConstructor | Float32ArrayConstructor | Uint8ArrayConstructor;

/** Buffers handed to the shim must be the typed arrays its C types read: anything else is refused here
 * (a Float32Array of token ids would otherwise be read as int32 bits). */
export function requireArray(what: string, value: unknown, kind: ArrayKind): void {
  if (!(value instanceof kind)) {
    const got = value === null || value === undefined ? String(value) : (value as object).constructor?.name ?? typeof value;
    throw new EagleError(`${what} must be an ${kind.name}, got ${got}`);
  }
}

function cString(s: string): Buffer {
  return Buffer.from(`${s}\0`, "utf8");
}

abstract class Handle {
  #ptr: Pointer | null;
  constructor(p: Pointer, private readonly kind: string) {
    this.#ptr = p;
  }
  protected get ptr(): Pointer {
    if (this.#ptr === null) throw new EagleError(`${this.kind} used after dispose()`);
    return this.#ptr;
  }
  get disposed(): boolean {
    return this.#ptr === null;
  }
  protected abstract free(p: Pointer): void;
  dispose(): void {
    if (this.#ptr === null) return;
    this.free(this.#ptr);
    this.#ptr = null;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
  /** For sibling classes in this file only. */
  static raw(h: Handle): Pointer {
    return h.ptr;
  }
  #address: bigint | null = null;
  /** The handle as an entry of a pointer array (BigUint64Array), made once. For sibling classes only. */
  static address(h: Handle): bigint {
    const p = h.ptr; // throws once disposed
    return (h.#address ??= BigInt(p));
  }
}

export function torchVersion(): string {
  return shim().et_torch_version() as unknown as string;
}

/** The CPU kernels' instruction set ("avx512", "avx2", "generic"), or "off" (ET_CPU_KERNELS=0). */
export function cpuKernels(): string {
  return shim().et_cpu_kernels() as unknown as string;
}

export function cudaAvailable(): boolean {
  return shim().et_cuda_available() === 1;
}

/** Handles the shim has given out and not yet freed, by kind (leak checks). */
export interface LiveHandles {
  mmaps: number;
  models: number;
  caches: number;
  outputs: number;
  trainers: number;
}

export function liveHandles(): LiveHandles {
  const c = new BigInt64Array(5);
  check(shim().et_live_handles(c, c.length), "count handles");
  return { mmaps: Number(c[0]), models: Number(c[1]), caches: Number(c[2]), outputs: Number(c[3]), trainers: Number(c[4]) };
}

let threadsChosen = false;

export function setThreads(n: number): void {
  check(shim().et_set_threads(n), "set threads");
  threadsChosen = true;
}

/** CPU threads one op uses. */
export function threadCount(): number {
  return outI32("get threads", (box) => shim().et_get_threads(box));
}

let batches = false;

/** Said by batch and serve before they load a model: their forwards carry many sequences, which the CPU
 * kernels split over the cores by sequence for a small model (one handoff a forward, none for a lone
 * sequence's few rows), so autoThreads gives such a model every core there too. */
export function decodesBatches(): void {
  batches = true;
}

/** Unless a count was set: one thread for small models, where every op is too short to split and
 * spinning workers only cost time (badly so on a busy machine), else every core; every core for any model
 * in batch and serve on the CPU kernels (decodesBatches). */
export function autoThreads(parameters: number): void {
  if (threadsChosen) return;
  const every = parameters >= 20e6 || (batches && cpuKernels() !== "off");
  check(shim().et_set_threads(every ? availableParallelism() : 1), "set threads");
}

/** Waits for every operation queued on the device (a no-op on CPU). */
export function deviceSync(device: DeviceCode, index = 0): void {
  check(shim().et_device_sync(device, index), "device sync");
}

/** Device-to-device copy bandwidth in bytes/s, counting bytes read plus bytes written (see et.h). */
export function copyBandwidth(device: DeviceCode, index: number, bytes: number, iters: number): number {
  const box = new Float64Array(1);
  check(shim().et_copy_bandwidth(device, index, BigInt(Math.floor(bytes)), iters, box), "copy bandwidth");
  return box[0];
}

export class MappedFile extends Handle {
  private constructor(p: Pointer, readonly path: string, readonly size: number) {
    super(p, "MappedFile");
  }
  static open(path: string): MappedFile {
    const size = new BigUint64Array(1);
    const p = outPointer(`map ${path}`, (box) => shim().et_mmap_open(cString(path), box, size));
    return new MappedFile(p, path, Number(size[0]));
  }
  protected free(p: Pointer): void {
    shim().et_mmap_free(p);
  }
  static ptrOf(f: MappedFile): Pointer {
    return Handle.raw(f);
  }
}

/** Plain numbers the shim needs; see et_model_config in ffi/et.h. */
export interface ShimModelConfig {
  hiddenSize: number;
  intermediateSize: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  vocabSize: number;
  attentionBias: boolean;
  tieEmbeddings: boolean;
  dtype: DTypeCode;
  device: DeviceCode;
  deviceIndex: number;
  draft: boolean;   // an EAGLE draft head (one layer, fc over concat(embedding, feature))
  fcBias: boolean;  // draft only
  rmsNormEps: number;
  attentionScale: number;
}

export function packConfig(c: ShimModelConfig): ArrayBuffer {
  const buf = new ArrayBuffer(16 * 4);
  const i = new Int32Array(buf);
  const f = new Float32Array(buf);
  i.set([c.hiddenSize, c.intermediateSize, c.nLayers, c.nHeads, c.nKvHeads, c.headDim, c.vocabSize,
    c.attentionBias ? 1 : 0, c.tieEmbeddings ? 1 : 0, c.dtype, c.device, c.deviceIndex, c.draft ? 1 : 0,
    c.fcBias ? 1 : 0]);
  f[14] = c.rmsNormEps;
  f[15] = c.attentionScale;
  return buf;
}

/** Where one weight's bytes are: a mapped file, an offset and a size, the stored dtype and shape. */
export interface WeightSource {
  file: MappedFile;
  offset: number;
  nbytes: number;
  dtype: DTypeCode;
  shape: number[];
}

export class Model extends Handle {
  private constructor(p: Pointer, readonly config: ShimModelConfig) {
    super(p, "Model");
  }
  static create(config: ShimModelConfig, invFreq: Float32Array): Model {
    if (invFreq.length !== config.headDim / 2) {
      throw new EagleError(`inv_freq has ${invFreq.length} entries, head_dim/2 is ${config.headDim / 2}`);
    }
    const p = outPointer("create model", (box) => shim().et_model_new(new Uint8Array(packConfig(config)), invFreq, box));
    return new Model(p, config);
  }
  setWeight(kind: WeightKind, layer: number, src: WeightSource, what: string): void {
    const shape = new BigInt64Array(src.shape.map((d) => BigInt(d)));
    const rc = shim().et_model_set_weight(this.ptr, kind, layer, MappedFile.ptrOf(src.file), src.offset, src.nbytes,
      src.dtype, shape, shape.length);
    check(rc, what);
  }
  /** A draft head takes the target's LM head (and its embedding, unless it has its own). */
  shareFrom(target: Model): void {
    check(shim().et_model_share(this.ptr, Model.ptrOf(target)), "attach draft head");
  }
  finish(): void {
    check(shim().et_model_finish(this.ptr), "finish model");
  }
  /** Random weights made on the model's device (see et_model_init_random); call finish() afterwards
   * (a draft head: shareFrom(target) first). The same seed gives the same weights on the same device. */
  initRandom(seed: number, std: number): void {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new EagleError(`random weights: seed ${seed} must be an integer >= 0`);
    check(shim().et_model_init_random(this.ptr, BigInt(seed), std), "random weights");
  }
  weightBytes(): number {
    const box = new BigUint64Array(1);
    check(shim().et_model_weight_bytes(this.ptr, box), "weight bytes");
    return Number(box[0]);
  }
  protected free(p: Pointer): void {
    shim().et_model_free(p);
  }
  static ptrOf(m: Model): Pointer {
    return Handle.raw(m);
  }
}

/** The widest head the CPU kernels run (a wider model's CPU forward is libtorch's). */
export const KERNELS_MAX_HEAD_DIM = 256;

/** Whether a model on the CPU (`cpu`) with heads of `headDim` runs on eagle's CPU kernels. */
export function onCpuKernels(cpu: boolean, headDim: number): boolean {
  return cpu && headDim <= KERNELS_MAX_HEAD_DIM && cpuKernels() !== "off";
}

// caches this large are checked against free memory first (smaller ones cannot matter)
const CHECKED_CACHE_BYTES = 64 * 2 ** 20;

/** Bytes per cached key or value element: the CPU kernels keep float32 caches, also for a 16-bit model. */
export function cacheElementBytes(c: { dtype: DTypeCode; device: DeviceCode; headDim: number }): number {
  if (c.dtype === DTypeCode.F32 || c.dtype === DTypeCode.I8) return 4;
  return onCpuKernels(c.device === DeviceCode.CPU, c.headDim) ? 4 : 2;
}

export class KvCache extends Handle {
  private constructor(p: Pointer, readonly model: Model, readonly capacity: number) {
    super(p, "KvCache");
  }
  static create(model: Model, capacity: number): KvCache {
    const c = model.config;
    const bytes = 2 * c.nLayers * c.nKvHeads * c.headDim * capacity * cacheElementBytes(c);
    if (bytes >= CHECKED_CACHE_BYTES) {
      checkFits("", c.device === DeviceCode.CUDA ? "cuda" : "cpu", [{ what: `KV cache for ${capacity} tokens`, bytes }],
        "ask for fewer new tokens (-n, max_tokens)");
    }
    const p = outPointer("create cache", (box) => shim().et_kv_new(Model.ptrOf(model), capacity, box));
    return new KvCache(p, model, capacity);
  }
  get length(): number {
    return outI32("cache length", (box) => shim().et_kv_len(this.ptr, box));
  }
  /** Rollback: forget every slot from n on. */
  truncate(n: number): void {
    check(shim().et_kv_truncate(this.ptr, n), "truncate cache");
  }
  /** Compaction: move `slots` (increasing, all >= base) to [base, base + slots.length). */
  keep(base: number, slots: Int32Array): void {
    requireArray("slots", slots, Int32Array);
    timed(() => shim().et_kv_keep(this.ptr, base, slots, slots.length), "compact cache");
  }
  protected free(p: Pointer): void {
    shim().et_kv_free(p);
  }
  static ptrOf(kv: KvCache): Pointer {
    return Handle.raw(kv);
  }
  /** For a pointer array of several caches (a batched forward). */
  static addressOf(kv: KvCache): bigint {
    return Handle.address(kv);
  }
}

export interface TopK {
  ids: Int32Array;  // rows * k, each row descending
  logp: Float32Array;
}

/** The results of the last forward, kept on the device; readers copy only what they name. */
export class StepOutput extends Handle {
  private constructor(p: Pointer) {
    super(p, "StepOutput");
  }
  static create(): StepOutput {
    return new StepOutput(outPointer("create output", (box) => shim().et_out_new(box)));
  }
  get rows(): number {
    return outI32("output rows", (box) => shim().et_out_rows(this.ptr, box));
  }
  /** Argmax of the given rows: all rows when omitted, or the first `count` (a caller that knows how many
   * the forward made saves asking). */
  argmax(rows?: Int32Array, count?: number): Int32Array {
    if (rows !== undefined) requireArray("rows", rows, Int32Array);
    const n = rows?.length ?? count ?? this.rows;
    const ids = new Int32Array(n);
    timed(() => shim().et_out_argmax(this.ptr, rows ?? null, n, ids), "argmax");
    return ids;
  }
  /** The k best ids and log-probs of the given rows (all rows when omitted), row after row. */
  topk(k: number, rows?: Int32Array): TopK {
    if (rows !== undefined) requireArray("rows", rows, Int32Array);
    if (!Number.isInteger(k) || k < 1) throw new EagleError(`top-k ${k}: must be a positive integer`);
    const n = rows?.length ?? this.rows;
    const ids = new Int32Array(n * k);
    const logp = new Float32Array(n * k);
    timed(() => shim().et_out_topk(this.ptr, rows ?? null, n, k, ids, logp), "top-k");
    return { ids, logp };
  }
  /** One row's logits into `into`, whose length must be the vocabulary size. */
  logitsRow(row: number, into: Float32Array): Float32Array {
    requireArray("logits buffer", into, Float32Array);
    timed(() => shim().et_out_logits_row(this.ptr, row, into, into.length), "read logits");
    return into;
  }
  /** One row's hidden state into `into`, whose length must be the hidden size. */
  hiddenRow(row: number, into: Float32Array): Float32Array {
    requireArray("hidden buffer", into, Float32Array);
    check(shim().et_out_hidden_row(this.ptr, row, into, into.length), "read hidden state");
    return into;
  }
  /** Makes this a feature store: appends the hidden states of `rows` of `src` (a forward's results or a
   * store) to the rows it holds as a store, then keeps the last `keep` (see et_out_gather). */
  gather(src: StepOutput, rows: Int32Array, keep: number): void {
    requireArray("rows", rows, Int32Array);
    timed(() => shim().et_out_gather(this.ptr, StepOutput.ptrOf(src), rows, rows.length, keep), "gather features");
  }
  protected free(p: Pointer): void {
    shim().et_out_free(p);
  }
  static ptrOf(o: StepOutput): Pointer {
    return Handle.raw(o);
  }
  /** For a pointer array of several outputs (a batched forward). */
  static addressOf(o: StepOutput): bigint {
    return Handle.address(o);
  }
}

/** A batch of new tokens: ids, RoPE positions and an optional mask (see et_forward). */
export interface Batch {
  tokens: Int32Array;
  positions: Int32Array;
  mask?: Uint8Array;   // row-major n x maskCols; absent = causal
  maskCols?: number;   // n (new tokens only) or cached + n
}

/** The batch checked: its mask's column count (0 for causal). */
export function maskColumns(batch: Batch): number {
  requireArray("tokens", batch.tokens, Int32Array);
  requireArray("positions", batch.positions, Int32Array);
  if (batch.mask !== undefined) requireArray("mask", batch.mask, Uint8Array);
  const n = batch.tokens.length;
  if (batch.positions.length !== n) {
    throw new EagleError(`batch has ${n} tokens but ${batch.positions.length} positions`);
  }
  const cols = batch.mask ? (batch.maskCols ?? n) : 0;
  if (batch.mask && batch.mask.length !== n * cols) {
    throw new EagleError(`mask has ${batch.mask.length} entries, expected ${n} x ${cols}`);
  }
  return cols;
}

/** One forward: writes K/V into the cache's next slots, leaves hidden states and logits in `out`. */
export function forward(model: Model, kv: KvCache, batch: Batch, out: StepOutput): void {
  const cols = maskColumns(batch);
  timed(() => shim().et_forward(Model.ptrOf(model), KvCache.ptrOf(kv), batch.tokens, batch.positions,
    batch.tokens.length, batch.mask ?? null, cols, StepOutput.ptrOf(out)), "forward");
}

/** A draft batch's feature rows: an Int32Array, one per token. */
export function checkFeatureRows(batch: Batch, featureRows: Int32Array, what: string): void {
  requireArray("feature rows", featureRows, Int32Array);
  if (featureRows.length !== batch.tokens.length) {
    throw new EagleError(`${what} has ${batch.tokens.length} tokens but ${featureRows.length} feature rows`);
  }
}

/** One draft-head forward: entry i pairs batch.tokens[i] with hidden row featureRows[i] of `features`. */
export function draftForward(draft: Model, kv: KvCache, batch: Batch, features: StepOutput, featureRows: Int32Array,
  out: StepOutput): void {
  const cols = maskColumns(batch);
  checkFeatureRows(batch, featureRows, "draft batch");
  timed(() => shim().et_draft_forward(Model.ptrOf(draft), KvCache.ptrOf(kv), batch.tokens, batch.positions,
    batch.tokens.length, batch.mask ?? null, cols, StepOutput.ptrOf(features), featureRows, StepOutput.ptrOf(out)),
  "draft forward");
}
