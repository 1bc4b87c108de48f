// grow — a model (and its EAGLE head) made larger without changing what it computes: see src/model/grow.ts.
import type { Argv } from "yargs";
import { DTYPES, growModel } from "../convert/grow.ts";
import { GROW_SHAPES, type GrowFactors } from "../model/grow.ts";
import { loadConfig } from "../model/config.ts";
import { EagleError } from "../util/errors.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { siblingHeadDir } from "../util/paths.ts";

interface GrowArgs {
  model: string;
  draft?: string;
  out: string;
  shape?: string;
  width?: number;
  headCopies?: number;
  kvHeads?: number;
  headDimScale?: number;
  mlpCopies?: number;
  layers?: number;
  dtype: string;
  force: boolean;
}

export function growFlags<T>(y: Argv<T>) {
  return y
    .option("model", { alias: "m", type: "string", demandOption: true, describe: "model directory to grow" })
    .option("draft", { type: "string", describe: "EAGLE head to grow with it (written to <out>-eagle)", defaultDescription: "<model>-eagle if it exists" })
    .option("out", { type: "string", demandOption: true, describe: "output model directory" })
    .option("shape", { type: "string", choices: Object.keys(GROW_SHAPES), describe: "named factors (from stories260K)" })
    .option("width", { type: "number", describe: "residual copies (hidden x width)" })
    .option("head-copies", { type: "number", describe: "copies of each query head" })
    .option("kv-heads", { type: "number", describe: "key/value heads of the grown model" })
    .option("head-dim-scale", { type: "number", describe: "head_dim x this" })
    .option("mlp-copies", { type: "number", describe: "intermediate x this" })
    .option("layers", { type: "number", describe: "total layers (extra ones are identity blocks)" })
    .option("dtype", { type: "string", choices: Object.keys(DTYPES), default: "f32", describe: "dtype of the written weights" })
    .option("force", { type: "boolean", default: false, describe: "replace existing output directories" });
}

function factorsOf(a: GrowArgs): GrowFactors {
  const c = loadConfig(a.model);
  const base: GrowFactors = a.shape ? GROW_SHAPES[a.shape]
    : { width: 1, headCopies: 1, kvHeads: c.nKvHeads, headDimScale: 1, mlpCopies: 1, layers: c.nLayers };
  const f: GrowFactors = {
    width: a.width ?? base.width, headCopies: a.headCopies ?? base.headCopies,
    kvHeads: a.kvHeads ?? (a.shape ? base.kvHeads : c.nKvHeads * (a.headCopies ?? 1)),
    headDimScale: a.headDimScale ?? base.headDimScale, mlpCopies: a.mlpCopies ?? base.mlpCopies, layers: a.layers ?? base.layers,
  };
  const given = [a.width, a.headCopies, a.kvHeads, a.headDimScale, a.mlpCopies, a.layers].some((v) => v !== undefined);
  if (!a.shape && !given) {
    throw new EagleError("grow: give --shape or a factor (--width, --head-copies, --kv-heads, --head-dim-scale, --mlp-copies, --layers)", 2);
  }
  return f;
}

export function runGrow(a: GrowArgs): void {
  const sibling = siblingHeadDir(a.model);
  const draft = a.draft ?? (existsSync(join(sibling, "config.json")) ? sibling : null);
  const t0 = performance.now();
  const out = growModel({ model: a.model, draft, out: a.out, factors: factorsOf(a), shapeName: a.shape ?? null,
    dtype: DTYPES[a.dtype], force: a.force });
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  process.stderr.write(`grew ${a.model} -> ${out.model}${out.head ? ` and ${draft} -> ${out.head}` : ""} in ${s} s\n`);
}
