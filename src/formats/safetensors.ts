// safetensors: 8-byte little-endian header length, a JSON header, then the raw tensor bytes.
// header entries are {dtype, shape, data_offsets: [begin, end]} relative to the data section.
import { closeSync, existsSync, fstatSync, readSync } from "node:fs";
import { openRegularFile, readTextFile } from "../util/files.ts";
import { join } from "node:path";
import { writeFileStreamed } from "../util/atomic-stream.ts";
import { shortJson } from "../util/short-json.ts";
import { EagleError } from "../util/errors.ts";
import { bf16ToF32, f16ToF32 } from "./half.ts";

export { f32ToBf16, f32ToF16 } from "./half.ts";

export type DType = "F32" | "F16" | "BF16";

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  file: string;
  offset: number; // absolute byte offset of the data in file
  nbytes: number;
}

export interface TensorData {
  name: string;
  dtype: DType;
  shape: number[];
  data: Float32Array | Uint16Array; // F32 uses Float32Array; F16/BF16 hold raw 16-bit patterns
}

const ELEMENT_BYTES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2 };
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export function readSafetensorsHeader(path: string): TensorInfo[] {
  const fd = openForRead(path);
  try {
    const fileSize = fstatSync(fd).size;
    const headerLength = readHeaderLength(fd, path, fileSize);
    const json = readBytes(fd, 8, headerLength, path).toString("utf8");
    const dataStart = 8 + headerLength;
    const tensors = parseHeader(json, path).map((e) => checkEntry(e, path, dataStart, fileSize - dataStart));
    checkNoOverlap(tensors, path);
    return tensors;
  } finally {
    closeSync(fd);
  }
}

function openForRead(path: string): number {
  return openRegularFile(path, "safetensors file");
}

function readBytes(fd: number, position: number, length: number, path: string): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new EagleError(`${path}: truncated: wanted ${length} bytes at ${position}, got ${done}`);
    done += n;
  }
  return buf;
}

function readHeaderLength(fd: number, path: string, fileSize: number): number {
  if (fileSize < 8) throw new EagleError(`${path}: too short for a safetensors header (${fileSize} bytes)`);
  const length = readBytes(fd, 0, 8, path).readBigUInt64LE(0);
  if (length > BigInt(fileSize - 8) || length > BigInt(MAX_HEADER_BYTES)) {
    throw new EagleError(`${path}: header length ${length} does not fit (file is ${fileSize} bytes, limit ${MAX_HEADER_BYTES})`);
  }
  return Number(length);
}

interface RawEntry {
  name: string;
  value: unknown;
}

function parseHeader(json: string, path: string): RawEntry[] {
  let header: unknown;
  try {
    header = JSON.parse(json);
  } catch (err) {
    throw new EagleError(`${path}: header is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(header)) throw new EagleError(`${path}: header is not a JSON object`);
  return Object.entries(header)
    .filter(([name]) => name !== "__metadata__")
    .map(([name, value]) => ({ name, value }));
}

function checkEntry(entry: RawEntry, path: string, dataStart: number, dataBytes: number): TensorInfo {
  const where = `${path}: tensor "${entry.name}"`;
  const v = entry.value;
  if (!isObject(v)) throw new EagleError(`${where}: entry is not an object`);
  if (typeof v.dtype !== "string") throw new EagleError(`${where}: dtype missing or not a string`);
  if (!(v.dtype in ELEMENT_BYTES)) throw new EagleError(`${where}: unsupported dtype ${v.dtype} (want F32, F16 or BF16)`);
  const dtype = v.dtype as DType;
  if (!Array.isArray(v.shape) || !v.shape.every(isCount)) {
    throw new EagleError(`${where}: shape ${shortJson(v.shape)} is not a list of non-negative integers`);
  }
  const offsets = v.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw new EagleError(`${where}: data_offsets ${shortJson(offsets)} is not [begin, end]`);
  }
  const [begin, end] = offsets as number[];
  if (begin > end || end > dataBytes) {
    throw new EagleError(`${where}: data_offsets [${begin}, ${end}] outside the data section (${dataBytes} bytes)`);
  }
  const shape = v.shape as number[];
  const expected = shape.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[dtype];
  if (!Number.isSafeInteger(expected) || expected !== end - begin) {
    throw new EagleError(`${where}: holds ${end - begin} bytes but ${dtype} ${shortJson(shape)} needs ${expected}`);
  }
  return { name: entry.name, dtype, shape, file: path, offset: dataStart + begin, nbytes: end - begin };
}

function checkNoOverlap(tensors: TensorInfo[], path: string): void {
  // empty tensors occupy no bytes, so they cannot overlap anything
  const sorted = tensors.filter((t) => t.nbytes > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (sorted[i].offset < prev.offset + prev.nbytes) {
      throw new EagleError(`${path}: tensors "${prev.name}" and "${sorted[i].name}" overlap`);
    }
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function isCount(x: unknown): boolean {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

export function listModelTensors(dir: string): Map<string, TensorInfo> {
  const single = join(dir, "model.safetensors");
  if (existsSync(single)) return byName(readSafetensorsHeader(single), new Map());
  const indexPath = join(dir, "model.safetensors.index.json");
  if (!existsSync(indexPath)) {
    throw new EagleError(`${dir}: no model.safetensors or model.safetensors.index.json`);
  }
  const weightMap = readWeightMap(indexPath);
  const tensors = new Map<string, TensorInfo>();
  for (const shard of new Set(weightMap.values())) {
    const shardPath = join(dir, shard);
    if (!existsSync(shardPath)) throw new EagleError(`${indexPath}: shard ${shard} does not exist in ${dir}`);
    byName(readSafetensorsHeader(shardPath), tensors);
  }
  for (const [name, shard] of weightMap) {
    if (tensors.get(name)?.file !== join(dir, shard)) {
      throw new EagleError(`${indexPath}: tensor "${name}" is not in its shard ${shard}`);
    }
  }
  return tensors;
}

function byName(list: TensorInfo[], into: Map<string, TensorInfo>): Map<string, TensorInfo> {
  for (const t of list) {
    const seen = into.get(t.name);
    if (seen) throw new EagleError(`tensor "${t.name}" is in both ${seen.file} and ${t.file}`);
    into.set(t.name, t);
  }
  return into;
}

function readWeightMap(indexPath: string): Map<string, string> {
  const text = readTextFile(indexPath, "safetensors index");
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch (err) {
    throw new EagleError(`${indexPath}: not valid JSON: ${(err as Error).message}`);
  }
  const weightMap = isObject(index) ? index.weight_map : undefined;
  if (!isObject(weightMap)) throw new EagleError(`${indexPath}: weight_map missing or not an object`);
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== "string") throw new EagleError(`${indexPath}: weight_map["${name}"] is not a file name`);
    out.set(name, shard);
  }
  return out;
}

export function readTensorF32(info: TensorInfo): Float32Array {
  const fd = openForRead(info.file);
  try {
    const bytes = readBytes(fd, info.offset, info.nbytes, info.file);
    // copy into fresh arrays: the file offset need not be aligned for a typed-array view
    if (info.dtype === "F32") return new Float32Array(new Uint8Array(bytes).buffer);
    const raw = new Uint16Array(new Uint8Array(bytes).buffer);
    return info.dtype === "BF16" ? bf16ToF32(raw) : f16ToF32(raw);
  } finally {
    closeSync(fd);
  }
}

/** A tensor whose bytes are made only when the writer reaches it (one in memory at a time). */
export interface LazyTensorData {
  name: string;
  dtype: DType;
  shape: number[];
  data: () => Float32Array | Uint16Array;
}

export function writeSafetensors(path: string, tensors: TensorData[], metadata?: Record<string, string>): void {
  writeSafetensorsLazy(path, tensors.map((t) => ({ ...t, data: () => t.data })), metadata);
}

// tensors are laid out widest dtype first so every tensor starts aligned to its element size; the header
// comes from the shapes, then each tensor's bytes are made and written in turn
export function writeSafetensorsLazy(path: string, tensors: LazyTensorData[], metadata?: Record<string, string>): void {
  const ordered = [...tensors].sort((a, b) => ELEMENT_BYTES[b.dtype] - ELEMENT_BYTES[a.dtype]);
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const names = new Set<string>();
  let offset = 0;
  for (const t of ordered) {
    checkTensorShape(t, path, names);
    const bytes = t.shape.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header), "utf8");
  // pad with spaces so the data section starts 8-byte aligned
  const padded = Buffer.alloc(Math.ceil(json.length / 8) * 8, " ");
  json.copy(padded);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(padded.length));
  writeFileStreamed(path, (out) => {
    out.write(length);
    out.write(padded);
    for (const t of ordered) {
      const data = t.data();
      checkTensorData({ ...t, data }, path);
      out.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  });
}

function checkTensorShape(t: { name: string; dtype: DType; shape: number[] }, path: string, names: Set<string>): void {
  const where = `${path}: tensor "${t.name}"`;
  if (t.name === "__metadata__" || names.has(t.name)) throw new EagleError(`${where}: name is reserved or repeated`);
  names.add(t.name);
  if (!(t.dtype in ELEMENT_BYTES)) throw new EagleError(`${where}: unsupported dtype ${t.dtype}`);
  if (!Array.isArray(t.shape) || !t.shape.every(isCount)) throw new EagleError(`${where}: bad shape ${shortJson(t.shape)}`);
}

function checkTensorData(t: TensorData, path: string): void {
  const where = `${path}: tensor "${t.name}"`;
  const wantF32 = t.dtype === "F32";
  if (wantF32 !== t.data instanceof Float32Array || (!wantF32 && !(t.data instanceof Uint16Array))) {
    throw new EagleError(`${where}: ${t.dtype} data must be a ${wantF32 ? "Float32Array" : "Uint16Array"}`);
  }
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (count !== t.data.length) {
    throw new EagleError(`${where}: shape ${JSON.stringify(t.shape)} needs ${count} elements, data has ${t.data.length}`);
  }
}
