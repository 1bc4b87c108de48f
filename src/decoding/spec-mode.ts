// spec-mode.ts — turning --spec and its knobs into a proposer for the decode loop, and finding the head.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadDraft, type LoadedDraft } from "../model/draft.ts";
import { EagleDrafter } from "./eagle.ts";
import { StaticTreeBuilder } from "./eagle1.ts";
import { type DynamicTreeParams, DynamicTreeBuilder, EAGLE2_DEFAULTS } from "./eagle2.ts";
import { EagleError } from "../util/errors.ts";
import type { LoadedModel } from "../model/loader.ts";
import { PlainProposer, type Proposer } from "./proposer.ts";
import { EAGLE1_DEFAULT_CHOICES, planStaticTree, readTreeFile, type StaticTreePlan } from "./static-tree.ts";

export type SpecMode = "none" | "eagle1" | "eagle2";

export interface SpecConfig {
  mode: SpecMode;
  tree: StaticTreePlan;       // EAGLE-1
  dynamic: DynamicTreeParams; // EAGLE-2
}

export interface SpecFlags {
  spec?: SpecMode;
  tree?: string;
  specDepth?: number;
  specTopk?: number;
  specTokens?: number;
}

export function specConfig(mode: SpecMode, f: SpecFlags): SpecConfig {
  const dynamic = {
    topK: f.specTopk ?? EAGLE2_DEFAULTS.topK,
    depth: f.specDepth ?? EAGLE2_DEFAULTS.depth,
    totalTokens: f.specTokens ?? EAGLE2_DEFAULTS.totalTokens,
  };
  new DynamicTreeBuilder(dynamic); // validates the knobs
  const tree = planStaticTree(f.tree ? readTreeFile(f.tree) : EAGLE1_DEFAULT_CHOICES);
  return { mode, tree, dynamic };
}

/** A fresh proposer for one run (each owns its draft cache for that run). */
export function makeProposer(c: SpecConfig, head: LoadedDraft | null): Proposer {
  if (c.mode === "none") return new PlainProposer();
  if (!head) throw new EagleError(`--spec ${c.mode} needs a draft head (--draft DIR)`, 2);
  const builder = c.mode === "eagle1" ? new StaticTreeBuilder(c.tree) : new DynamicTreeBuilder(c.dynamic);
  return new EagleDrafter(head, builder);
}

export function loadHeadFor(mode: SpecMode, draftDir: string | undefined, target: LoadedModel): LoadedDraft | null {
  if (mode === "none") return null;
  if (!draftDir) throw new EagleError(`--spec ${mode} needs a draft head (--draft DIR)`, 2);
  return loadDraft(draftDir, target);
}

export interface ResolvedSpec {
  config: SpecConfig;
  head: LoadedDraft | null;
}

/** The method and head a run uses: an explicit draft directory, else `<model>-eagle` beside the model. */
export function resolveSpec(f: SpecFlags & { draft?: string }, modelDir: string, target: LoadedModel): ResolvedSpec {
  const sibling = `${modelDir.replace(/\/+$/, "")}-eagle`;
  const draftDir = f.draft ?? (existsSync(join(sibling, "config.json")) ? sibling : undefined);
  const mode: SpecMode = f.spec ?? (draftDir ? "eagle2" : "none");
  const config = specConfig(mode, f);
  return { config, head: loadHeadFor(mode, draftDir, target) };
}
