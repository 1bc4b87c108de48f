// files the tool writes appear whole or not at all: a write that fails part way leaves the old file as it
// was and no temporary file behind.
import { afterAll, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../src/util/atomic-write.ts";
import { EagleError } from "../src/util/errors.ts";
import { makeTempDir } from "../src/model/random-model.ts";

const root = makeTempDir("eagle-atomic-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

test("a new file replaces the old one whole", () => {
  const path = join(root, "a.json");
  writeFileSync(path, "old");
  writeFileAtomic(path, [Buffer.from("new "), Buffer.from("content")]);
  expect(readFileSync(path, "utf8")).toBe("new content");
  expect(readdirSync(root)).toEqual(["a.json"]);
});

test("a write that fails after its first chunk leaves the old file and no temporary file", () => {
  const path = join(root, "b.safetensors");
  writeFileSync(path, "the user's data");
  const broken = { byteLength: 8 } as unknown as Uint8Array; // writeSync refuses it, as a full disk would fail
  expect(() => writeFileAtomic(path, [Buffer.alloc(1 << 20, 1), broken])).toThrow(EagleError);
  expect(() => writeFileAtomic(path, [Buffer.alloc(1 << 20, 1), broken])).toThrow(/b\.safetensors: cannot write/);
  expect(readFileSync(path, "utf8")).toBe("the user's data");
  expect(readdirSync(root).sort()).toEqual(["a.json", "b.safetensors"]);
});

test("a folder that cannot be written is one clear error", () => {
  expect(() => writeFileAtomic(join(root, "missing", "c.json"), "{}")).toThrow(/missing\/c\.json: cannot write/);
});
