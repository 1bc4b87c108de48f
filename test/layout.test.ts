// src/ by subsystem, and imports that point down the stack only:
// entry points -> commands -> the command rooms -> bench -> decoding -> model -> native / formats -> util
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { REPO_ROOT } from "../src/util/paths.ts";

const SRC = join(REPO_ROOT, "src");

// a folder may import from folders of a lower rank and from itself, never from its own rank or above
const RANK: Record<string, number> = {
  util: 0,
  formats: 1, native: 1,
  model: 2,
  decoding: 3,
  bench: 4,
  chat: 5, batch: 5, train: 5, convert: 5, serve: 5,
  commands: 6,
  ".": 7, // cli.ts, standalone.ts
};
const ENTRY_FILES = ["cli.ts", "embedded.d.ts", "standalone.ts"];

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sources(path, out);
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** The folder under src/ a file lives in ("." for the top), or null when it is outside src/. */
function folderOf(file: string): string | null {
  const rel = relative(SRC, file);
  if (rel.startsWith("..")) return null;
  const parts = rel.split("/");
  return parts.length === 1 ? "." : parts[0];
}

function relativeImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.[^"]+)"/g)].map((m) => m[1]);
  return specs.map((s) => resolve(dirname(file), s));
}

test("every folder under src/ has a rank, and the top holds only the entry points", () => {
  const top = readdirSync(SRC).filter((n) => !statSync(join(SRC, n)).isDirectory());
  expect(top.sort()).toEqual(ENTRY_FILES);
  const folders = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory());
  for (const f of folders) expect(RANK[f], `src/${f} has no rank in this test`).toBeDefined();
});

test("imports point down the stack only", () => {
  const upward: string[] = [];
  for (const file of sources(SRC)) {
    const from = folderOf(file)!;
    for (const target of relativeImports(file)) {
      const to = folderOf(target);
      if (to === null || to === from) continue; // the shipped files the executable embeds; the same room
      if (RANK[to] >= RANK[from]) upward.push(`${relative(REPO_ROOT, file)} -> ${relative(REPO_ROOT, target)}`);
    }
  }
  expect(upward).toEqual([]);
});

test("the scan sees the imports it judges (so an empty list of upward imports means something)", () => {
  expect(relativeImports(join(SRC, "cli.ts"))).toContain(join(SRC, "commands", "generate.ts"));
  expect(relativeImports(join(SRC, "decoding", "decode.ts"))).toContain(join(SRC, "native", "engine.ts"));
  const all = sources(SRC).flatMap(relativeImports);
  expect(all.length).toBeGreaterThan(200);
});
