// test-only writer for torch.save's zip checkpoints, byte for byte the way torch lays them out:
// a stored zip under one folder, every entry's data 64-byte aligned by an "FB" padding extra field
// in the local header only, and data.pkl pickled at protocol 2 the way CPython's pickler does it
// (memo puts after every string, global and non-empty tuple; SETITEM for one item, MARK..SETITEMS for more).
import { writeFileSync } from "node:fs";
import { deflateRawSync } from "node:zlib";
import type { DType, TensorData } from "../../src/formats/safetensors.ts";

export interface StorageSpec {
  className: string; // "FloatStorage", "HalfStorage", "BFloat16Storage", or anything to test rejection
  data: Float32Array | Uint16Array | BigInt64Array;
}

export interface ViewSpec {
  name: string;
  storage: number; // index into storages; its key in the archive is String(index)
  offset?: number; // in elements
  shape: number[];
  stride?: number[]; // default: contiguous
}

export interface ZipOptions {
  prefix?: string; // the archive folder, default "archive"
  zip64?: boolean; // force zip64 records and extra fields even for a small file
  deflate?: (name: string) => boolean; // entries to compress (torch never does)
}

export interface ZipInput {
  name: string;
  data: Uint8Array;
}

const STORAGE_CLASS: Record<DType, string> = { F32: "FloatStorage", F16: "HalfStorage", BF16: "BFloat16Storage" };

// one storage per tensor, as torch.save(state_dict) writes for independent parameters
export function writeTorchZip(path: string, tensors: TensorData[], options: ZipOptions = {}): void {
  const storages = tensors.map((t) => ({ className: STORAGE_CLASS[t.dtype], data: t.data }));
  const views = tensors.map((t, i) => ({ name: t.name, storage: i, shape: t.shape }));
  writeFileSync(path, torchZipBytes(stateDictPickle(storages, views), storages, options));
}

// the archive torch writes around a pickle: data.pkl, byteorder, data/<key>..., version, serialization id
export function torchZipBytes(pickle: Uint8Array, storages: StorageSpec[], options: ZipOptions = {}): Buffer {
  const prefix = options.prefix ?? "archive";
  const text = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
  const entries: ZipInput[] = [
    { name: `${prefix}/data.pkl`, data: pickle },
    { name: `${prefix}/byteorder`, data: text("little") },
    ...storages.map((s, i) => ({ name: `${prefix}/data/${i}`, data: bytesOf(s.data) })),
    { name: `${prefix}/version`, data: text("3\n") },
    { name: `${prefix}/.data/serialization_id`, data: text("1234567890123456789012345678901234567890") },
  ];
  return zipBytes(entries, options);
}

function bytesOf(a: Float32Array | Uint16Array | BigInt64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

// ---- pickle, protocol 2

class PickleWriter {
  out: number[] = [];
  puts = 0; // the next memo index
  memo = new Map<string, number>(); // CPython memoizes by identity; torch's repeated strings and classes are the same objects

  op(...bytes: number[]): void {
    this.out.push(...bytes);
  }

  u32(n: number): number[] {
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
  }

  put(key: string | null): void {
    const index = this.puts++;
    if (key !== null) this.memo.set(key, index);
    if (index < 256) this.op(0x71, index); // BINPUT
    else this.op(0x72, ...this.u32(index)); // LONG_BINPUT
  }

  // returns true when the object was already memoized and a BINGET was written instead
  get(key: string): boolean {
    const index = this.memo.get(key);
    if (index === undefined) return false;
    if (index < 256) this.op(0x68, index); // BINGET
    else this.op(0x6a, ...this.u32(index)); // LONG_BINGET
    return true;
  }

  str(s: string): void {
    if (this.get(`s:${s}`)) return;
    const b = Buffer.from(s, "utf8");
    this.op(0x58, ...this.u32(b.length), ...b); // BINUNICODE
    this.put(`s:${s}`);
  }

  global(module: string, name: string): void {
    if (this.get(`g:${module}.${name}`)) return;
    this.op(0x63, ...Buffer.from(`${module}\n${name}\n`, "latin1")); // GLOBAL
    this.put(`g:${module}.${name}`);
  }

  int(n: number): void {
    if (n >= 0 && n < 0x100) return this.op(0x4b, n); // BININT1
    if (n >= 0 && n < 0x10000) return this.op(0x4d, n & 0xff, n >>> 8); // BININT2
    if (n >= -(2 ** 31) && n < 2 ** 31) return this.op(0x4a, ...this.u32(n)); // BININT
    const bytes: number[] = []; // LONG1: minimal two's complement, little-endian
    let v = BigInt(n);
    do {
      bytes.push(Number(v & 0xffn));
      v >>= 8n;
    } while (!((v === 0n && !(bytes[bytes.length - 1] & 0x80)) || (v === -1n && bytes[bytes.length - 1] & 0x80)));
    this.op(0x8a, bytes.length, ...bytes);
  }

  // a tuple of ints: EMPTY_TUPLE (never memoized), TUPLE1..3, or MARK ... TUPLE
  intTuple(items: number[]): void {
    if (items.length === 0) return this.op(0x29);
    if (items.length > 3) this.op(0x28);
    for (const n of items) this.int(n);
    this.op(items.length > 3 ? 0x74 : 0x84 + items.length);
    this.put(null);
  }

  orderedDict(): void {
    this.global("collections", "OrderedDict");
    this.op(0x29, 0x52); // EMPTY_TUPLE REDUCE
    this.put(null);
  }
}

export function stateDictPickle(storages: StorageSpec[], views: ViewSpec[], withMetadata = false): Uint8Array {
  const w = new PickleWriter();
  w.op(0x80, 2); // PROTO 2
  w.orderedDict();
  for (let start = 0; start < views.length; start += 1000) {
    const batch = views.slice(start, start + 1000);
    if (batch.length > 1) w.op(0x28); // MARK
    for (const v of batch) {
      w.str(v.name);
      tensor(w, storages, v);
    }
    w.op(batch.length > 1 ? 0x75 : 0x73); // SETITEMS or SETITEM
  }
  if (withMetadata) metadataState(w);
  w.op(0x2e); // STOP
  return new Uint8Array(w.out);
}

// _rebuild_tensor_v2(persistent storage, offset, size, stride, requires_grad=False, hooks=OrderedDict())
function tensor(w: PickleWriter, storages: StorageSpec[], v: ViewSpec): void {
  const storage = storages[v.storage];
  w.global("torch._utils", "_rebuild_tensor_v2");
  w.op(0x28); // MARK for the argument tuple
  w.op(0x28); // MARK for the persistent id tuple
  w.str("storage");
  w.global("torch", storage.className);
  w.str(String(v.storage));
  w.str("cpu");
  w.int(storage.data.length);
  w.op(0x74); // TUPLE
  w.put(null);
  w.op(0x51); // BINPERSID
  w.int(v.offset ?? 0);
  w.intTuple(v.shape);
  w.intTuple(v.stride ?? contiguousStride(v.shape));
  w.op(0x89); // NEWFALSE
  w.orderedDict();
  w.op(0x74); // TUPLE
  w.put(null);
  w.op(0x52); // REDUCE
  w.put(null);
}

// module.state_dict() carries _metadata as instance state: {'_metadata': OrderedDict('' -> {'version': 1})}
function metadataState(w: PickleWriter): void {
  w.op(0x7d); // EMPTY_DICT
  w.put(null);
  w.str("_metadata");
  w.orderedDict();
  w.str("");
  w.op(0x7d);
  w.put(null);
  w.str("version");
  w.int(1);
  w.op(0x73, 0x73, 0x73, 0x62); // SETITEM x3, BUILD
}

export function contiguousStride(shape: number[]): number[] {
  const stride = shape.map(() => 1);
  for (let d = shape.length - 2; d >= 0; d--) stride[d] = stride[d + 1] * shape[d + 1];
  return stride;
}

// ---- zip

const ALIGN = 64;

export function zipBytes(entries: ZipInput[], options: ZipOptions = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let cursor = 0;
  for (const e of entries) {
    const deflated = options.deflate?.(e.name) ?? false;
    const data = deflated ? deflateRawSync(e.data) : Buffer.from(e.data);
    const record = { name: Buffer.from(e.name, "utf8"), method: deflated ? 8 : 0, crc: crc32(e.data), size: e.data.length, csize: data.length, offset: cursor };
    const local = localHeader(record, !!options.zip64);
    parts.push(local, data);
    central.push(centralHeader(record, !!options.zip64));
    cursor += local.length + data.length;
  }
  const dir = Buffer.concat(central);
  parts.push(dir, ...endRecords(entries.length, dir.length, cursor, !!options.zip64));
  return Buffer.concat(parts);
}

interface ZipRecord { name: Buffer; method: number; crc: number; size: number; csize: number; offset: number }

// torch's padding: an "FB" extra field whose 'Z' bytes push the data to the next 64-byte boundary
function localHeader(r: ZipRecord, zip64: boolean): Buffer {
  const wide = zip64 ? extra(0x0001, [r.size, r.csize]) : Buffer.alloc(0);
  const start = r.offset + 30 + r.name.length + wide.length + 4;
  const pad = (ALIGN - (start % ALIGN)) % ALIGN;
  const padding = Buffer.concat([fields([[2, 0x4246], [2, pad]]), Buffer.alloc(pad, "Z")]);
  const head = fields([
    [4, 0x04034b50], [2, zip64 ? 45 : 20], [2, 0], [2, r.method], [2, 0], [2, 0x21], [4, r.crc],
    [4, zip64 ? 0xffffffff : r.csize], [4, zip64 ? 0xffffffff : r.size], [2, r.name.length], [2, wide.length + padding.length],
  ]);
  return Buffer.concat([head, r.name, wide, padding]);
}

function centralHeader(r: ZipRecord, zip64: boolean): Buffer {
  const wide = zip64 ? extra(0x0001, [r.size, r.csize, r.offset]) : Buffer.alloc(0);
  const big = (n: number) => (zip64 ? 0xffffffff : n);
  const head = fields([
    [4, 0x02014b50], [2, 0x031e], [2, zip64 ? 45 : 20], [2, 0], [2, r.method], [2, 0], [2, 0x21], [4, r.crc],
    [4, big(r.csize)], [4, big(r.size)], [2, r.name.length], [2, wide.length], [2, 0], [2, 0], [2, 0], [4, 0], [4, big(r.offset)],
  ]);
  return Buffer.concat([head, r.name, wide]);
}

function endRecords(count: number, dirSize: number, dirOffset: number, zip64: boolean): Buffer[] {
  const eocd = (n: number, size: number, offset: number) =>
    fields([[4, 0x06054b50], [2, 0], [2, 0], [2, n], [2, n], [4, size], [4, offset], [2, 0]]);
  if (!zip64) return [eocd(count, dirSize, dirOffset)];
  const recordAt = dirOffset + dirSize;
  const record = fields([[4, 0x06064b50], [8, 44], [2, 45], [2, 45], [4, 0], [4, 0], [8, count], [8, count], [8, dirSize], [8, dirOffset]]);
  const locator = fields([[4, 0x07064b50], [4, 0], [8, recordAt], [4, 1]]);
  return [record, locator, eocd(0xffff, 0xffffffff, 0xffffffff)];
}

function extra(id: number, values: number[]): Buffer {
  return fields([[2, id], [2, values.length * 8], ...values.map((v): [number, number] => [8, v])]);
}

// little-endian fields of 2, 4 or 8 bytes
function fields(list: [number, number][]): Buffer {
  const buf = Buffer.alloc(list.reduce((a, [w]) => a + w, 0));
  let at = 0;
  for (const [width, value] of list) {
    if (width === 2) buf.writeUInt16LE(value, at);
    else if (width === 4) buf.writeUInt32LE(value >>> 0, at);
    else buf.writeBigUInt64LE(BigInt(value), at);
    at += width;
  }
  return buf;
}

let crcTable: Uint32Array | undefined;

function crc32(data: Uint8Array): number {
  crcTable ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let crc = 0xffffffff;
  for (const b of data) crc = crcTable[(crc ^ b) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
