import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EagleError } from "../src/util/errors.ts";
import { bf16ToF32, f16ToF32 } from "../src/formats/half.ts";
import {
  f32ToBf16, f32ToF16, listModelTensors, readSafetensorsHeader, readTensorF32, writeSafetensors, type TensorData,
} from "../src/formats/safetensors.ts";

const dir = mkdtempSync(join(tmpdir(), "eagle-st-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const values = new Float32Array([0, 1, -2, 0.5, 3.25, -0.125]);
const sample: TensorData[] = [
  { name: "half", dtype: "F16", shape: [3], data: f32ToF16(values.subarray(0, 3)) },
  { name: "a.f32", dtype: "F32", shape: [2, 3], data: values },
  { name: "b.bf16", dtype: "BF16", shape: [3, 1], data: f32ToBf16(values.subarray(3)) },
  { name: "empty", dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
];

// a file with a hand-written header, to build the malformed cases
function rawFile(name: string, header: unknown, dataBytes: number, lengthOverride?: bigint): string {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
  return path;
}

function expectEagleError(fn: () => unknown, ...needles: string[]): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EagleError);
    for (const n of needles) expect((err as Error).message).toContain(n);
    return;
  }
  throw new Error("expected an EagleError");
}

describe("round trip", () => {
  const path = join(dir, "round.safetensors");
  writeSafetensors(path, sample, { format: "pt" });

  test("header lists every tensor with its dtype and shape", () => {
    const infos = readSafetensorsHeader(path);
    expect(infos.map((t) => t.name).sort()).toEqual(["a.f32", "b.bf16", "empty", "half"]);
    const byName = new Map(infos.map((t) => [t.name, t]));
    expect(byName.get("a.f32")).toMatchObject({ dtype: "F32", shape: [2, 3], nbytes: 24, file: path });
    expect(byName.get("half")).toMatchObject({ dtype: "F16", shape: [3], nbytes: 6 });
    expect(byName.get("b.bf16")).toMatchObject({ dtype: "BF16", shape: [3, 1], nbytes: 6 });
  });

  test("data starts 8-byte aligned and every tensor is aligned to its element size", () => {
    const bytes = readFileSync(path);
    expect((8 + Number(bytes.readBigUInt64LE(0))) % 8).toBe(0);
    for (const t of readSafetensorsHeader(path)) expect(t.offset % (t.dtype === "F32" ? 4 : 2)).toBe(0);
    expect(JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString()).__metadata__).toEqual({ format: "pt" });
  });

  test("values come back (16-bit types exactly, as these values are representable)", () => {
    const byName = new Map(readSafetensorsHeader(path).map((t) => [t.name, t]));
    expect(Array.from(readTensorF32(byName.get("a.f32")!))).toEqual(Array.from(values));
    expect(Array.from(readTensorF32(byName.get("half")!))).toEqual([0, 1, -2]);
    expect(Array.from(readTensorF32(byName.get("b.bf16")!))).toEqual([0.5, 3.25, -0.125]);
    expect(readTensorF32(byName.get("empty")!).length).toBe(0);
  });

  test("no temporary file is left behind", () => {
    expect(() => readFileSync(`${path}.tmp-${process.pid}`)).toThrow();
  });
});

describe("16-bit conversions", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const isNan = (h: number, expMask: number) => (h & expMask) === expMask && (h & ~expMask & 0x7fff) !== 0;

  test("every f16 and bf16 pattern survives a trip through f32", () => {
    const f16 = f32ToF16(f16ToF32(all));
    const bf16 = f32ToBf16(bf16ToF32(all));
    for (let i = 0; i < 65536; i++) {
      if (!isNan(i, 0x7c00)) expect(f16[i]).toBe(i);
      else expect(isNan(f16[i], 0x7c00)).toBe(true);
      if (!isNan(i, 0x7f80)) expect(bf16[i]).toBe(i);
      else expect(isNan(bf16[i], 0x7f80)).toBe(true);
    }
  });

  test("rounding is to nearest, ties to even", () => {
    // bf16 has 7 mantissa bits: 1 + 2^-8 is halfway between 1 and 1 + 2^-7
    const bf = f32ToBf16(new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20]));
    expect(Array.from(bf)).toEqual([0x3f80, 0x3f82, 0x3f81]);
    const h = f32ToF16(new Float32Array([1, 65504, 65519, 65520, 2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 1e-8, -2, Infinity, NaN]));
    expect(Array.from(h).slice(0, 10)).toEqual([0x3c00, 0x7bff, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x0001, 0x0000, 0xc000, 0x7c00]);
    expect(isNan(h[10], 0x7c00)).toBe(true);
  });
});

describe("sharded index", () => {
  const model = join(dir, "sharded");
  const writeShards = (weightMap: Record<string, string>) => {
    rmSync(model, { recursive: true, force: true });
    mkdirSync(model);
    writeSafetensors(join(model, "s1.safetensors"), sample.slice(0, 2));
    writeSafetensors(join(model, "s2.safetensors"), sample.slice(2));
    writeFileSync(join(model, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  };
  const goodMap = { half: "s1.safetensors", "a.f32": "s1.safetensors", "b.bf16": "s2.safetensors", empty: "s2.safetensors" };

  test("tensors from every shard, each pointing at its own file", () => {
    writeShards(goodMap);
    const tensors = listModelTensors(model);
    expect([...tensors.keys()].sort()).toEqual(["a.f32", "b.bf16", "empty", "half"]);
    expect(tensors.get("b.bf16")!.file).toBe(join(model, "s2.safetensors"));
    expect(Array.from(readTensorF32(tensors.get("a.f32")!))).toEqual(Array.from(values));
  });

  test("an index naming a missing shard, or the wrong shard, is an error", () => {
    writeShards({ ...goodMap, extra: "s3.safetensors" });
    expectEagleError(() => listModelTensors(model), "model.safetensors.index.json", "s3.safetensors");
    writeShards({ ...goodMap, half: "s2.safetensors" });
    expectEagleError(() => listModelTensors(model), "model.safetensors.index.json", '"half"');
  });

  test("a tensor in two shards is an error", () => {
    writeShards(goodMap);
    writeSafetensors(join(model, "s2.safetensors"), [...sample.slice(2), sample[0]]);
    expectEagleError(() => listModelTensors(model), '"half"', "s1.safetensors", "s2.safetensors");
  });

  test("a directory with neither file names both", () => {
    expectEagleError(() => listModelTensors(dir), dir, "model.safetensors", "model.safetensors.index.json");
  });

  test("a single model.safetensors is read directly", () => {
    const single = join(dir, "single");
    mkdirSync(single);
    writeSafetensors(join(single, "model.safetensors"), sample);
    expect(listModelTensors(single).size).toBe(4);
  });
});

describe("malformed files name the file and what is wrong", () => {
  const entry = (dtype: string, shape: number[], begin: number, end: number) => ({ dtype, shape, data_offsets: [begin, end] });

  test("missing file", () => expectEagleError(() => readSafetensorsHeader(join(dir, "nope.safetensors")), "nope.safetensors"));

  test("shorter than the length field", () => {
    const path = join(dir, "tiny.safetensors");
    writeFileSync(path, Buffer.alloc(5));
    expectEagleError(() => readSafetensorsHeader(path), path);
  });

  test("truncated data", () => {
    const path = rawFile("trunc.safetensors", { w: entry("F32", [4], 0, 16) }, 8);
    expectEagleError(() => readSafetensorsHeader(path), path, '"w"');
  });

  test("header length past the end of the file", () => {
    const path = rawFile("badlen.safetensors", { w: entry("F32", [1], 0, 4) }, 4, 1n << 40n);
    expectEagleError(() => readSafetensorsHeader(path), path, "header length");
  });

  test("bad JSON and non-object JSON", () => {
    expectEagleError(() => readSafetensorsHeader(rawFile("json1.safetensors", "{not json", 0)), "json1.safetensors", "JSON");
    expectEagleError(() => readSafetensorsHeader(rawFile("json2.safetensors", "[1, 2]", 0)), "json2.safetensors", "object");
  });

  test("overlapping tensors", () => {
    const path = rawFile("overlap.safetensors", { a: entry("F32", [2], 0, 8), b: entry("F32", [2], 4, 12) }, 12);
    expectEagleError(() => readSafetensorsHeader(path), path, "overlap", '"a"', '"b"');
  });

  test("offsets out of range or reversed", () => {
    const past = rawFile("range1.safetensors", { w: entry("F32", [2], 8, 16) }, 12);
    expectEagleError(() => readSafetensorsHeader(past), past, '"w"', "outside");
    const reversed = rawFile("range2.safetensors", { w: entry("F32", [0], 8, 4) }, 12);
    expectEagleError(() => readSafetensorsHeader(reversed), reversed, '"w"');
  });

  test("byte count that does not match the shape", () => {
    const path = rawFile("nbytes.safetensors", { w: entry("F16", [2, 3], 0, 8) }, 8);
    expectEagleError(() => readSafetensorsHeader(path), path, '"w"', "needs 12");
  });

  test("unsupported dtype names the tensor and dtype", () => {
    const path = rawFile("dtype.safetensors", { w: entry("I64", [1], 0, 8) }, 8);
    expectEagleError(() => readSafetensorsHeader(path), path, '"w"', "I64");
  });

  test("bad shape and bad offsets types", () => {
    const shape = rawFile("shape.safetensors", { w: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, 4);
    expectEagleError(() => readSafetensorsHeader(shape), shape, '"w"', "shape");
    const offs = rawFile("offs.safetensors", { w: { dtype: "F32", shape: [1], data_offsets: ["0", 4] } }, 4);
    expectEagleError(() => readSafetensorsHeader(offs), offs, '"w"', "data_offsets");
  });

  test("__metadata__ is skipped", () => {
    const path = rawFile("meta.safetensors", { __metadata__: { format: "pt" }, w: entry("F32", [1], 0, 4) }, 4);
    expect(readSafetensorsHeader(path).map((t) => t.name)).toEqual(["w"]);
  });

  test("writing mismatched data is refused", () => {
    const bad: TensorData = { name: "w", dtype: "F32", shape: [3], data: new Float32Array(2) };
    expectEagleError(() => writeSafetensors(join(dir, "bad.safetensors"), [bad]), "bad.safetensors", '"w"');
  });
});
