// GGUF v3, the file format of llama.cpp: written only, F32 and BF16 tensors.
// layout (all little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata count; metadata as
// (string key, u32 type, value); tensor infos as (string name, u32 dims, u64 ne[dims] innermost first,
// u32 ggml type, u64 offset into the data section); zero padding to the alignment; the data section, each
// tensor starting at a multiple of the alignment. A string is a u64 byte length then UTF-8 bytes.
// A BF16 element is the top 16 bits of the float32, rounded to nearest even (as PyTorch and llama.cpp's
// converter round); the ggml type ids are those of ggml.h's enum ggml_type.
import { type ByteStream, writeFileStreamed } from "../util/atomic-stream.ts";
import { EagleError } from "../util/errors.ts";
import { shortJson } from "../util/short-json.ts";
import { f32ToBf16 } from "./half.ts";

export type GgufValue =
  | { type: "string"; value: string }
  | { type: "u32"; value: number }
  | { type: "i32"; value: number }
  | { type: "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string[]"; value: readonly string[] }
  | { type: "i32[]"; value: ArrayLike<number> }
  | { type: "f32[]"; value: ArrayLike<number> };

/** Metadata in file order (insertion order); general.alignment is added by the writer. */
export type GgufMetadata = Record<string, GgufValue>;

/** How a tensor's elements are stored. */
export type GgufTensorType = "F32" | "BF16";

export interface GgufTensor {
  name: string;
  shape: number[];            // row-major, outermost first (as PyTorch and safetensors); stored reversed, as ggml's ne
  type?: GgufTensorType;      // default F32
  data: () => Float32Array;   // the values as float32 (BF16 rounds them); called once, when the writer reaches
                              // this tensor, so one tensor is in memory at a time
}

export interface GgufLayout {
  bytes: number;              // file size
  dataOffset: number;         // start of the data section
  tensors: { name: string; type: GgufTensorType; offset: number; nbytes: number }[]; // offset: from the data section's start
}

export const GGUF_DEFAULT_ALIGNMENT = 32;
const GGUF_VERSION = 3;
// ggml's type id and bytes per element
const GGML_TYPES: Record<GgufTensorType, { id: number; bytes: number }> = { F32: { id: 0, bytes: 4 }, BF16: { id: 30, bytes: 2 } };
const MAX_NAME_BYTES = 63; // ggml's GGML_MAX_NAME (64) with the terminating zero
const MAX_DIMS = 4;

// metadata value types of the format
const TYPE = { u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9 } as const;

/** Little-endian bytes of the header, gathered in chunks. */
class HeaderBytes {
  private chunks: Buffer[] = [];
  length = 0;

  raw(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.raw(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.raw(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.raw(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.raw(b);
  }
  string(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.raw(b);
  }
  zeros(n: number): void {
    this.raw(Buffer.alloc(n));
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function checkNumber(key: string, v: GgufValue, x: number): void {
  const ok = v.type === "f32" || v.type === "f32[]" ? Number.isFinite(x)
    : v.type === "u32" ? Number.isInteger(x) && x >= 0 && x <= 0xffffffff
      : Number.isInteger(x) && x >= -(2 ** 31) && x < 2 ** 31;
  if (!ok) throw new EagleError(`gguf metadata "${key}": ${shortJson(x)} is not a valid ${v.type}`);
}

function writeValue(h: HeaderBytes, key: string, v: GgufValue): void {
  switch (v.type) {
    case "string": h.u32(TYPE.string); h.string(v.value); return;
    case "bool": h.u32(TYPE.bool); h.raw(Buffer.of(v.value ? 1 : 0)); return;
    case "u32": checkNumber(key, v, v.value); h.u32(TYPE.u32); h.u32(v.value); return;
    case "i32": checkNumber(key, v, v.value); h.u32(TYPE.i32); h.i32(v.value); return;
    case "f32": checkNumber(key, v, v.value); h.u32(TYPE.f32); h.f32(v.value); return;
    case "string[]":
      h.u32(TYPE.array); h.u32(TYPE.string); h.u64(v.value.length);
      for (const s of v.value) h.string(s);
      return;
    case "i32[]": case "f32[]": {
      h.u32(TYPE.array); h.u32(v.type === "i32[]" ? TYPE.i32 : TYPE.f32); h.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) {
        checkNumber(key, v, v.value[i]);
        if (v.type === "i32[]") h.i32(v.value[i]);
        else h.f32(v.value[i]);
      }
      return;
    }
  }
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

function checkTensor(t: GgufTensor, names: Set<string>): number { // returns the tensor's bytes
  const where = `gguf tensor "${t.name}"`;
  if (names.has(t.name)) throw new EagleError(`${where}: name repeated`);
  names.add(t.name);
  if (Buffer.byteLength(t.name, "utf8") > MAX_NAME_BYTES) throw new EagleError(`${where}: name longer than ${MAX_NAME_BYTES} bytes`);
  if (t.shape.length < 1 || t.shape.length > MAX_DIMS || !t.shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw new EagleError(`${where}: shape ${shortJson(t.shape)} is not 1 to ${MAX_DIMS} positive sizes`);
  }
  const type = GGML_TYPES[t.type ?? "F32"];
  if (!type) throw new EagleError(`${where}: type ${shortJson(t.type)} is not F32 or BF16`);
  return t.shape.reduce((a, b) => a * b, 1) * type.bytes;
}

/** Writes a GGUF v3 file at `path` (atomically), tensors streamed one at a time; returns where everything went. */
export function writeGguf(path: string, metadata: GgufMetadata, tensors: GgufTensor[],
  alignment = GGUF_DEFAULT_ALIGNMENT): GgufLayout {
  if (!Number.isInteger(alignment) || alignment < 8 || (alignment & (alignment - 1)) !== 0) {
    throw new EagleError(`gguf alignment ${alignment}: must be a power of two >= 8`);
  }
  const entries = Object.entries({ ...metadata, "general.alignment": { type: "u32", value: alignment } as GgufValue });
  const h = new HeaderBytes();
  h.raw(Buffer.from("GGUF", "latin1"));
  h.u32(GGUF_VERSION);
  h.u64(tensors.length);
  h.u64(entries.length);
  for (const [key, value] of entries) {
    h.string(key);
    writeValue(h, key, value);
  }
  const names = new Set<string>();
  const placed: GgufLayout["tensors"] = [];
  let offset = 0;
  for (const t of tensors) {
    const nbytes = checkTensor(t, names);
    const type = t.type ?? "F32";
    h.string(t.name);
    h.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) h.u64(d);
    h.u32(GGML_TYPES[type].id);
    h.u64(offset);
    placed.push({ name: t.name, type, offset, nbytes });
    offset = alignUp(offset + nbytes, alignment);
  }
  const dataOffset = alignUp(h.length, alignment);
  h.zeros(dataOffset - h.length);
  const header = h.bytes();
  const bytes = writeFileStreamed(path, (out) => {
    out.write(header);
    tensors.forEach((t, i) => writeTensorData(out, t, placed[i], dataOffset + placed[i].offset));
    out.write(new Uint8Array(dataOffset + offset - out.written)); // pad the last tensor too
    return out.written;
  });
  return { bytes, dataOffset, tensors: placed };
}

function writeTensorData(out: ByteStream, t: GgufTensor, placed: GgufLayout["tensors"][number], at: number): void {
  out.write(new Uint8Array(at - out.written)); // alignment padding before the tensor
  const data = t.data();
  const count = placed.nbytes / GGML_TYPES[placed.type].bytes;
  if (!(data instanceof Float32Array) || data.length !== count) {
    throw new EagleError(`gguf tensor "${t.name}": shape ${shortJson(t.shape)} needs ${count} floats, data has ${data.length}`);
  }
  const stored = placed.type === "BF16" ? f32ToBf16(data) : data;
  out.write(new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength)); // host order: little-endian everywhere Bun runs
}
