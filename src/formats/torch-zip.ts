// torch.save checkpoints (pytorch_model.bin, torch >= 1.6): a zip with one folder holding
// data.pkl, the pickled state dict, and data/<key>, the raw bytes of each storage.
// a tensor in the pickle is _rebuild_tensor_v2(storage, offset, size, stride, ...), where storage
// is a persistent id ('storage', torch.FloatStorage, key, location, numel). we map each tensor to
// a byte range of the file, so loading is the same as for safetensors.
import { closeSync } from "node:fs";
import { openRegularFile } from "../util/files.ts";
import { inflateRawSync } from "node:zlib";
import { EagleError } from "../util/errors.ts";
import { unpickle, type PickleHooks } from "./pickle.ts";
import type { DType, TensorInfo } from "./safetensors.ts";
import { entryDataOffset, openZip, readBytes, type ZipArchive, type ZipEntry } from "./zip.ts";

const STORAGE_DTYPES: Record<string, DType> = { FloatStorage: "F32", HalfStorage: "F16", BFloat16Storage: "BF16" };
const ELEMENT_BYTES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2 };
const MAX_PICKLE_BYTES = 256 * 1024 * 1024;

// the only globals a checkpoint may name. they become inert records: nothing is ever imported
const CALLABLES = new Set([
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
  "torch._utils._rebuild_parameter_with_state",
]);
const INERT = new Set(["torch.float32", "torch.float16", "torch.bfloat16", "torch.strided"]);
const STORAGE_CLASS = /^[A-Z][A-Za-z0-9]*Storage$/; // any torch.XStorage; unsupported ones fail per tensor

interface GlobalRef { kind: "global"; name: string } // "module.name"
interface StorageRef { kind: "storage"; className: string; key: string; numel: number }
interface TensorRef { kind: "tensor"; args: readonly unknown[] } // _rebuild_tensor_v2 arguments

interface Checkpoint {
  path: string;
  zip: ZipArchive;
  prefix: string; // "archive/": the folder holding data.pkl
  entries: Map<string, ZipEntry>; // by name
  dataOffsets: Map<string, number>; // storage key -> absolute offset, read once per storage
}

export function readTorchZip(path: string): TensorInfo[] {
  const fd = openRegularFile(path, "torch checkpoint");
  try {
    const zip = openZip(fd, path);
    const pickle = findPickle(zip);
    const prefix = pickle.name.slice(0, -"data.pkl".length);
    checkByteOrder(zip, prefix);
    const root = unpickle(readPickle(zip, pickle), torchHooks(`${path}: ${pickle.name}`), `${path}: ${pickle.name}`);
    const entries = new Map(zip.entries.map((e) => [e.name, e]));
    return resolveStateDict({ path, zip, prefix, entries, dataOffsets: new Map() }, root);
  } finally {
    closeSync(fd);
  }
}

function findPickle(zip: ZipArchive): ZipEntry {
  const found = zip.entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (found.length === 0) throw new EagleError(`${zip.path}: no <folder>/data.pkl entry: not a torch.save zip checkpoint`);
  if (found.length > 1) throw new EagleError(`${zip.path}: several data.pkl entries (${found.map((e) => e.name).join(", ")})`);
  return found[0];
}

function readPickle(zip: ZipArchive, entry: ZipEntry): Buffer {
  const where = `${zip.path}: entry "${entry.name}"`;
  if (entry.compressedSize > MAX_PICKLE_BYTES || entry.size > MAX_PICKLE_BYTES) {
    throw new EagleError(`${where}: larger than ${MAX_PICKLE_BYTES} bytes`);
  }
  const raw = readBytes(zip.fd, entryDataOffset(zip, entry), entry.compressedSize, zip.path);
  if (entry.method === 0) return raw;
  if (entry.method !== 8) throw new EagleError(`${where}: unsupported compression method ${entry.method}`);
  let out: Buffer;
  try {
    out = inflateRawSync(raw, { maxOutputLength: MAX_PICKLE_BYTES });
  } catch (err) {
    throw new EagleError(`${where}: cannot inflate: ${(err as Error).message}`);
  }
  if (out.length !== entry.size) throw new EagleError(`${where}: inflated to ${out.length} bytes, directory says ${entry.size}`);
  return out;
}

// torch writes "little" here; a missing file means little-endian too (older torch)
function checkByteOrder(zip: ZipArchive, prefix: string): void {
  const entry = zip.entries.find((e) => e.name === `${prefix}byteorder`);
  if (!entry || entry.method !== 0 || entry.size > 16) return;
  const order = readBytes(zip.fd, entryDataOffset(zip, entry), entry.size, zip.path).toString("latin1");
  if (order !== "little") throw new EagleError(`${zip.path}: entry "${entry.name}": byte order "${order}" is not supported`);
}

function torchHooks(where: string): PickleHooks {
  return {
    global(module, name) {
      const full = `${module}.${name}`;
      const allowed = CALLABLES.has(full) || INERT.has(full) || (module === "torch" && STORAGE_CLASS.test(name));
      if (!allowed) throw new EagleError(`${where}: global ${quote(full)} is not allowed`);
      return { kind: "global", name: full } satisfies GlobalRef;
    },
    call(callable, args) {
      const name = isGlobal(callable) ? callable.name : "a non-global";
      if (name === "collections.OrderedDict" && args.length === 0) return new Map();
      if (name === "torch._utils._rebuild_tensor_v2") return { kind: "tensor", args } satisfies TensorRef;
      // Parameter(data, requires_grad, hooks[, state]): the weights are the data tensor
      if (name.startsWith("torch._utils._rebuild_parameter")) return args[0];
      throw new EagleError(`${where}: cannot call ${name} with ${args.length} arguments`);
    },
    persistentLoad(pid) {
      const [tag, cls, key, location, numel] = Array.isArray(pid) ? pid : [];
      if (!Array.isArray(pid) || pid.length !== 5 || tag !== "storage" || !isGlobal(cls) || !cls.name.startsWith("torch.")
        || typeof key !== "string" || typeof location !== "string" || !isCount(numel)) {
        throw new EagleError(`${where}: persistent id is not ('storage', class, key, location, numel)`);
      }
      return { kind: "storage", className: cls.name.slice("torch.".length), key, numel } satisfies StorageRef;
    },
  };
}

function resolveStateDict(ckpt: Checkpoint, root: unknown): TensorInfo[] {
  if (!(root instanceof Map)) throw new EagleError(`${ckpt.path}: data.pkl does not hold a dict of tensors`);
  const tensors: TensorInfo[] = [];
  for (const [name, value] of root) {
    if (typeof name !== "string") throw new EagleError(`${ckpt.path}: state dict has a key that is not a string`);
    if (!isTensor(value)) throw new EagleError(`${ckpt.path}: entry "${name}" is not a tensor`);
    tensors.push(resolveTensor(ckpt, name, value));
  }
  return tensors;
}

function resolveTensor(ckpt: Checkpoint, name: string, ref: TensorRef): TensorInfo {
  const where = `${ckpt.path}: tensor "${name}"`;
  const [storage, storageOffset, size, stride] = ref.args;
  if (ref.args.length < 4 || !isStorage(storage)) throw new EagleError(`${where}: _rebuild_tensor_v2 has no storage`);
  const dtype = STORAGE_DTYPES[storage.className];
  if (!dtype) throw new EagleError(`${where}: unsupported storage type torch.${storage.className} (want Float, Half or BFloat16)`);
  if (!isCount(storageOffset)) throw new EagleError(`${where}: storage offset is not a non-negative integer`);
  if (!isCounts(size) || !isCounts(stride) || size.length !== stride.length) {
    throw new EagleError(`${where}: size and stride are not matching tuples of counts`);
  }
  if (!isContiguous(size, stride)) throw new EagleError(`${where}: strides [${stride}] for size [${size}] are not contiguous`);
  const numel = size.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(numel) || storageOffset + numel > storage.numel) {
    throw new EagleError(`${where}: ${numel} elements at offset ${storageOffset} exceed its storage of ${storage.numel}`);
  }
  const elem = ELEMENT_BYTES[dtype];
  const start = storageStart(ckpt, where, storage, elem);
  return { name, dtype, shape: [...size], file: ckpt.path, offset: start + storageOffset * elem, nbytes: numel * elem };
}

// absolute offset of a storage's bytes; the entry must be stored (uncompressed) to be mapped
function storageStart(ckpt: Checkpoint, where: string, storage: StorageRef, elem: number): number {
  const known = ckpt.dataOffsets.get(storage.key);
  if (known !== undefined) return known;
  const entryName = `${ckpt.prefix}data/${storage.key}`;
  const entry = ckpt.entries.get(entryName);
  if (!entry) throw new EagleError(`${where}: storage entry "${entryName}" is missing`);
  if (entry.method !== 0) throw new EagleError(`${where}: storage entry "${entryName}" is compressed (method ${entry.method})`);
  if (entry.compressedSize < storage.numel * elem) {
    throw new EagleError(`${where}: storage entry "${entryName}" has ${entry.compressedSize} bytes, needs ${storage.numel * elem}`);
  }
  const start = entryDataOffset(ckpt.zip, entry);
  ckpt.dataOffsets.set(storage.key, start);
  return start;
}

// row-major; a dimension of size 1 may carry any stride, and an empty tensor has no layout
function isContiguous(size: number[], stride: number[]): boolean {
  if (size.includes(0)) return true;
  let expected = 1;
  for (let d = size.length - 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== expected) return false;
    expected *= size[d];
  }
  return true;
}

// names come from untrusted bytes: keep error messages one short line
function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}...` : s);
}

function isGlobal(x: unknown): x is GlobalRef {
  return typeof x === "object" && x !== null && (x as GlobalRef).kind === "global";
}

function isStorage(x: unknown): x is StorageRef {
  return typeof x === "object" && x !== null && (x as StorageRef).kind === "storage";
}

function isTensor(x: unknown): x is TensorRef {
  return typeof x === "object" && x !== null && (x as TensorRef).kind === "tensor";
}

function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function isCounts(x: unknown): x is number[] {
  return Array.isArray(x) && x.every(isCount);
}
