import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EagleError } from "../src/util/errors.ts";
import { bf16ToF32, f16ToF32 } from "../src/formats/half.ts";
import { unpickle, type PickleHooks } from "../src/formats/pickle.ts";
import { Rng } from "../src/util/rng.ts";
import { f32ToBf16, f32ToF16, readTensorF32, type TensorData } from "../src/formats/safetensors.ts";
import { readTorchZip } from "../src/formats/torch-zip.ts";
import {
  stateDictPickle, torchZipBytes, writeTorchZip, zipBytes, type StorageSpec, type ViewSpec,
} from "./support/torch-zip-writer.ts";

const dir = mkdtempSync(join(tmpdir(), "eagle-tz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ascii = (s: string) => [...Buffer.from(s, "latin1")];
const range = (n: number, scale = 0.25) => Float32Array.from({ length: n }, (_, i) => i * scale - 1);

function file(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

function expectEagleError(fn: () => unknown, ...needles: string[]): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EagleError);
    expect((err as Error).message.startsWith(needles[0])).toBe(true);
    for (const n of needles) expect((err as Error).message).toContain(n);
    return;
  }
  throw new Error("expected an EagleError");
}

const sample: TensorData[] = [
  { name: "embed.weight", dtype: "F32", shape: [4, 3], data: range(12) },
  { name: "norm.weight", dtype: "F16", shape: [3], data: f32ToF16(range(3, 0.5)) },
  { name: "fc.weight", dtype: "BF16", shape: [2, 3], data: f32ToBf16(range(6, 0.125)) },
  { name: "scalar", dtype: "F32", shape: [], data: new Float32Array([7.5]) },
  { name: "deep", dtype: "F32", shape: [1, 2, 1, 2], data: range(4) },
  { name: "empty", dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
];

function expected(t: TensorData): Float32Array {
  if (t.dtype === "F32") return t.data as Float32Array;
  return t.dtype === "F16" ? f16ToF32(t.data as Uint16Array) : bf16ToF32(t.data as Uint16Array);
}

function expectSample(path: string): void {
  const infos = readTorchZip(path);
  expect(infos.map((t) => t.name)).toEqual(sample.map((t) => t.name));
  for (const [i, info] of infos.entries()) {
    expect(info).toMatchObject({ dtype: sample[i].dtype, shape: sample[i].shape, file: path });
    expect(info.offset % 64).toBe(0); // torch aligns every record
    expect(readTensorF32(info)).toEqual(expected(sample[i]));
  }
}

describe("round trip through the writer", () => {
  test("F32, F16 and BF16 tensors, scalar, 4-d and empty", () => {
    const path = join(dir, "sample.bin");
    writeTorchZip(path, sample);
    expectSample(path);
  });

  test("state_dict _metadata (BUILD), another folder name, deflated data.pkl", () => {
    const storages = sample.map((t) => ({ className: { F32: "FloatStorage", F16: "HalfStorage", BF16: "BFloat16Storage" }[t.dtype], data: t.data }));
    const views = sample.map((t, i) => ({ name: t.name, storage: i, shape: t.shape }));
    const pickle = stateDictPickle(storages, views, true);
    expectSample(file("meta.bin", torchZipBytes(pickle, storages, { prefix: "pytorch_model", deflate: (n) => n.endsWith("data.pkl") })));
  });

  test("zip64 records and extra fields", () => {
    const path = join(dir, "zip64.bin");
    writeTorchZip(path, sample, { zip64: true });
    expectSample(path);
  });

  test("1001 tensors: LONG_BINPUT memo indices and two SETITEMS batches", () => {
    const many = Array.from({ length: 1001 }, (_, i): TensorData => ({ name: `t${i}`, dtype: "F32", shape: [1], data: new Float32Array([i]) }));
    const path = join(dir, "many.bin");
    writeTorchZip(path, many);
    const infos = readTorchZip(path);
    expect(infos.length).toBe(1001);
    expect(readTensorF32(infos[1000])).toEqual(new Float32Array([1000]));
  });
});

// torch.save(OrderedDict(fc.weight=torch.zeros(2, 3))) as CPython's pickler writes it at protocol 2:
// every string, global and non-empty tuple is memoized; the second OrderedDict global is a BINGET;
// a single dict item ends with SETITEM (MARK ... SETITEMS only for two or more)
const REFERENCE_PICKLE = new Uint8Array([
  0x80, 0x02, // PROTO 2
  0x63, ...ascii("collections\nOrderedDict\n"), 0x71, 0x00, // GLOBAL, BINPUT 0
  0x29, 0x52, 0x71, 0x01, // EMPTY_TUPLE, REDUCE: the state dict; BINPUT 1
  0x58, 9, 0, 0, 0, ...ascii("fc.weight"), 0x71, 0x02, // BINUNICODE key
  0x63, ...ascii("torch._utils\n_rebuild_tensor_v2\n"), 0x71, 0x03,
  0x28, // MARK: _rebuild_tensor_v2 arguments
  0x28, // MARK: persistent id
  0x58, 7, 0, 0, 0, ...ascii("storage"), 0x71, 0x04,
  0x63, ...ascii("torch\nFloatStorage\n"), 0x71, 0x05,
  0x58, 1, 0, 0, 0, ...ascii("0"), 0x71, 0x06, // storage key
  0x58, 3, 0, 0, 0, ...ascii("cpu"), 0x71, 0x07, // location
  0x4b, 6, // BININT1: numel
  0x74, 0x71, 0x08, // TUPLE, BINPUT 8
  0x51, // BINPERSID
  0x4b, 0, // storage offset
  0x4b, 2, 0x4b, 3, 0x86, 0x71, 0x09, // size (2, 3): TUPLE2
  0x4b, 3, 0x4b, 1, 0x86, 0x71, 0x0a, // stride (3, 1)
  0x89, // NEWFALSE: requires_grad
  0x68, 0x00, 0x29, 0x52, 0x71, 0x0b, // BINGET 0, EMPTY_TUPLE, REDUCE: backward hooks OrderedDict()
  0x74, 0x71, 0x0c, // TUPLE: six arguments
  0x52, 0x71, 0x0d, // REDUCE: the tensor
  0x73, // SETITEM
  0x2e, // STOP
]);

describe("hand-assembled reference pickle", () => {
  const weights = range(6);
  const storages: StorageSpec[] = [{ className: "FloatStorage", data: weights }];

  test("reads the reference opcode stream", () => {
    const path = file("reference.bin", torchZipBytes(REFERENCE_PICKLE, storages));
    const [info, ...rest] = readTorchZip(path);
    expect(rest).toEqual([]);
    expect(info).toMatchObject({ name: "fc.weight", dtype: "F32", shape: [2, 3], nbytes: 24 });
    expect(readTensorF32(info)).toEqual(weights);
  });

  test("the writer emits exactly the reference bytes", () => {
    const pickle = stateDictPickle(storages, [{ name: "fc.weight", storage: 0, shape: [2, 3] }]);
    expect([...pickle]).toEqual([...REFERENCE_PICKLE]);
  });
});

describe("shared storages", () => {
  test("views at different offsets into one storage", () => {
    const storages: StorageSpec[] = [{ className: "FloatStorage", data: range(10) }, { className: "HalfStorage", data: f32ToF16(range(4)) }];
    const views: ViewSpec[] = [
      { name: "a", storage: 0, shape: [2, 2] },
      { name: "b", storage: 0, offset: 4, shape: [3] },
      { name: "c", storage: 0, offset: 7, shape: [3, 1], stride: [1, 99] }, // a size-1 dim may carry any stride
      { name: "h", storage: 1, offset: 2, shape: [2] },
    ];
    const path = file("shared.bin", torchZipBytes(stateDictPickle(storages, views), storages));
    const [a, b, c, h] = readTorchZip(path);
    expect(b.offset - a.offset).toBe(16);
    expect(c.offset - a.offset).toBe(28);
    expect(readTensorF32(b)).toEqual(range(10).subarray(4, 7));
    expect(readTensorF32(c)).toEqual(range(10).subarray(7, 10));
    expect(readTensorF32(h)).toEqual(f16ToF32(f32ToF16(range(4))).subarray(2, 4));
  });
});

describe("pickle interpreter", () => {
  const hooks: PickleHooks = {
    global: (m, n) => `${m}.${n}`,
    call: () => null,
    persistentLoad: (pid) => pid,
  };

  test("ints, floats, constants and lists", () => {
    const bytes = new Uint8Array([
      0x80, 2, 0x28, 0x4a, 0xff, 0xff, 0xff, 0xff, 0x8a, 5, 0, 0, 0, 0, 1, 0x8a, 0, 0x8a, 1, 0xff, 0x4d, 0x34, 0x12,
      0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x88, 0x4e, 0x8c, 2, ...ascii("hi"), 0x5d, 0x28, 0x4b, 1, 0x4b, 2, 0x65, 0x74, 0x2e,
    ]);
    expect(unpickle(bytes, hooks, "x")).toEqual([-1, 2 ** 32, 0, -1, 0x1234, 1.5, true, null, "hi", [1, 2]]);
  });

  test("stack underflow, missing STOP, unknown memo, unknown opcode", () => {
    expectEagleError(() => unpickle(new Uint8Array([0x80, 2, 0x74]), hooks, "p.pkl"), "p.pkl", "MARK");
    expectEagleError(() => unpickle(new Uint8Array([0x80, 2, 0x4e]), hooks, "p.pkl"), "p.pkl", "without STOP");
    expectEagleError(() => unpickle(new Uint8Array([0x68, 3, 0x2e]), hooks, "p.pkl"), "p.pkl", "memo entry 3");
    expectEagleError(() => unpickle(new Uint8Array([0x80, 2, 0xff, 0x2e]), hooks, "p.pkl"), "p.pkl", "0xff", "offset 2");
    expectEagleError(() => unpickle(new Uint8Array([0x58, 0xff, 0xff, 0, 0, 0x41]), hooks, "p.pkl"), "p.pkl", "more bytes");
  });
});

describe("malformed checkpoints", () => {
  const valid = (() => {
    const path = join(dir, "valid.bin");
    writeTorchZip(path, sample);
    return readFileSync(path);
  })();
  const f32: StorageSpec[] = [{ className: "FloatStorage", data: range(6) }];
  const withPickle = (name: string, pickle: number[] | Uint8Array, storages = f32) =>
    file(name, torchZipBytes(new Uint8Array(pickle), storages));

  test("not a zip, truncated at several points", () => {
    const text = file("text.bin", new Uint8Array(Buffer.from("hello, not a zip archive at all")));
    expectEagleError(() => readTorchZip(text), text, "not a zip");
    for (const length of [0, 10, 100, 700, valid.length - 22, valid.length - 1]) {
      const path = file(`cut${length}.bin`, valid.subarray(0, length));
      expectEagleError(() => readTorchZip(path), path);
    }
    expectEagleError(() => readTorchZip(join(dir, "absent.bin")), join(dir, "absent.bin"), "cannot open");
  });

  test("corrupted end-of-central-directory", () => {
    const bad = Buffer.from(valid);
    bad.writeUInt32LE(0x7fffffff, bad.length - 6); // directory offset
    const path = file("eocd.bin", bad);
    expectEagleError(() => readTorchZip(path), path, "end-of-central-directory");
  });

  test("wrong local header signature", () => {
    const bad = Buffer.from(valid);
    bad.writeUInt32LE(0x04034b51, 0); // data.pkl is the first record
    const path = file("local.bin", bad);
    expectEagleError(() => readTorchZip(path), path, "archive/data.pkl", "local header signature");
  });

  test("missing data.pkl", () => {
    const path = file("nopkl.bin", zipBytes([{ name: "archive/version", data: new Uint8Array([0x33, 0x0a]) }]));
    expectEagleError(() => readTorchZip(path), path, "data.pkl");
  });

  test("compressed storage entry", () => {
    const path = join(dir, "deflated.bin");
    writeTorchZip(path, sample, { deflate: (n) => n.includes("/data/") });
    expectEagleError(() => readTorchZip(path), path, "embed.weight", "archive/data/0", "compressed");
  });

  test("disallowed global", () => {
    const path = withPickle("os.bin", [0x80, 2, 0x63, ...ascii("os\nsystem\n"), 0x58, 2, 0, 0, 0, ...ascii("ls"), 0x85, 0x52, 0x2e]);
    expectEagleError(() => readTorchZip(path), path, "os.system", "not allowed");
  });

  test("unknown opcode", () => {
    const path = withPickle("opcode.bin", [0x80, 2, 0xfe, 0x2e]);
    expectEagleError(() => readTorchZip(path), path, "archive/data.pkl", "0xfe", "offset 2");
  });

  test("missing storage entry", () => {
    const two: StorageSpec[] = [...f32, { className: "FloatStorage", data: range(6) }];
    const views: ViewSpec[] = [{ name: "a", storage: 0, shape: [6] }, { name: "b", storage: 1, shape: [6] }];
    const path = withPickle("nostorage.bin", stateDictPickle(two, views), f32);
    expectEagleError(() => readTorchZip(path), path, `tensor "b"`, "archive/data/1", "missing");
  });

  test("non-contiguous strides, view past its storage, int64 storage", () => {
    const strided = withPickle("strided.bin", stateDictPickle(f32, [{ name: "w", storage: 0, shape: [2, 3], stride: [1, 2] }]));
    expectEagleError(() => readTorchZip(strided), strided, `tensor "w"`, "not contiguous");
    const past = withPickle("past.bin", stateDictPickle(f32, [{ name: "w", storage: 0, offset: 2, shape: [2, 3] }]));
    expectEagleError(() => readTorchZip(past), past, `tensor "w"`, "exceed");
    const long: StorageSpec[] = [{ className: "LongStorage", data: new BigInt64Array([1n, 2n]) }];
    const ints = withPickle("long.bin", stateDictPickle(long, [{ name: "ids", storage: 0, shape: [2] }]), long);
    expectEagleError(() => readTorchZip(ints), ints, `tensor "ids"`, "torch.LongStorage");
  });
});

const FUZZ_CASES = 2000;

// each mutant must parse or throw EagleError: never another exception, a hang or a huge allocation
test(`fuzz: ${FUZZ_CASES} mutated or truncated checkpoints parse or throw EagleError`, () => {
  const source = join(dir, "fuzz-source.bin");
  writeTorchZip(source, sample.slice(0, 3));
  const storages = sample.slice(0, 3).map((t, i) => ({ className: ["FloatStorage", "HalfStorage", "BFloat16Storage"][i], data: t.data }));
  const views = sample.slice(0, 3).map((t, i) => ({ name: t.name, storage: i, shape: t.shape }));
  const valid = torchZipBytes(stateDictPickle(storages, views, true), storages);
  const pickleEnd = 64 + stateDictPickle(storages, views, true).length; // data.pkl's bytes start at 64
  const rng = new Rng(20240611);
  const path = join(dir, "fuzz.bin");
  let parsed = 0;
  for (let i = 0; i < FUZZ_CASES; i++) {
    const bytes = Buffer.from(valid);
    const flips = 1 + (rng.nextU32() % 4);
    for (let k = 0; k < flips; k++) {
      // half the flips land in data.pkl, where the interpreter gets exercised
      const at = rng.next() < 0.5 ? 64 + (rng.nextU32() % (pickleEnd - 64)) : rng.nextU32() % bytes.length;
      bytes[at] = rng.next() < 0.3 ? 0xff : rng.nextU32() & 0xff;
    }
    const length = rng.next() < 0.2 ? rng.nextU32() % bytes.length : bytes.length;
    writeFileSync(path, bytes.subarray(0, length));
    try {
      readTorchZip(path);
      parsed++;
    } catch (err) {
      if (!(err instanceof EagleError)) throw new Error(`mutant ${i}: ${(err as Error).stack}`);
      expect(err.message.startsWith(path)).toBe(true);
    }
  }
  expect(parsed).toBeGreaterThan(0);
  expect(parsed).toBeLessThan(FUZZ_CASES);
});
