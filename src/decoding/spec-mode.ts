// spec-mode.ts — turning --spec and its knobs into a proposer for the decode loop, and finding the head.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadDraft, type LoadedDraft } from "../model/draft.ts";
import { AUTO_DEFAULTS, type AutoTreeParams, checkAutoParams, CostAwareTreeBuilder } from "./auto-tree.ts";
import { costsFor } from "./calibrate.ts";
import type { CostModel } from "./cost-model.ts";
import { EagleDrafter } from "./eagle.ts";
import { StaticTreeBuilder } from "./eagle1.ts";
import { type DynamicTreeParams, DynamicTreeBuilder, EAGLE2_DEFAULTS } from "./eagle2.ts";
import { EagleError } from "../util/errors.ts";
import type { LoadedModel, WeightDTypeName } from "../model/loader.ts";
import { PlainProposer, type Proposer } from "./proposer.ts";
import { siblingHeadDir } from "../util/paths.ts";
import { EAGLE1_DEFAULT_CHOICES, planStaticTree, readTreeFile, type StaticTreePlan } from "./static-tree.ts";

export type SpecMode = "none" | "eagle1" | "eagle2" | "auto";
export const SPEC_MODES: readonly SpecMode[] = ["none", "eagle1", "eagle2", "auto"];

export interface SpecConfig {
  mode: SpecMode;
  tree: StaticTreePlan;       // EAGLE-1
  dynamic: DynamicTreeParams; // EAGLE-2
  auto: AutoTreeParams;       // auto: the largest tree it may grow
  costs: CostModel | null;    // auto: this machine's step costs (measured once per target and head)
}

export interface SpecFlags {
  spec?: SpecMode;
  tree?: string;
  specDepth?: number;
  specTopk?: number;
  specTokens?: number;
  draftDtype?: WeightDTypeName; // the head's weights (default: the model's)
}

export function specConfig(mode: SpecMode, f: SpecFlags): SpecConfig {
  const dynamic = {
    topK: f.specTopk ?? EAGLE2_DEFAULTS.topK,
    depth: f.specDepth ?? EAGLE2_DEFAULTS.depth,
    totalTokens: f.specTokens ?? EAGLE2_DEFAULTS.totalTokens,
  };
  const auto = {
    topK: f.specTopk ?? AUTO_DEFAULTS.topK,
    maxDepth: f.specDepth ?? AUTO_DEFAULTS.maxDepth,
    maxNodes: f.specTokens ?? AUTO_DEFAULTS.maxNodes,
  };
  // the knobs are checked for the mode that uses them
  if (mode === "auto") checkAutoParams(auto);
  else new DynamicTreeBuilder(dynamic);
  const tree = planStaticTree(f.tree ? readTreeFile(f.tree) : EAGLE1_DEFAULT_CHOICES);
  return { mode, tree, dynamic, auto, costs: null };
}

/** The deepest draft token a mode's trees can hold: how many per-position figures its statistics show. */
export function treeDepth(c: SpecConfig): number {
  if (c.mode === "none") return 0;
  if (c.mode === "eagle1") return c.tree.maxDepth;
  return (c.mode === "auto" ? c.auto.maxDepth : c.dynamic.depth) + 1;
}

/** A fresh proposer for one run (each owns its draft cache for that run). */
export function makeProposer(c: SpecConfig, head: LoadedDraft | null): Proposer {
  if (c.mode === "none") return new PlainProposer();
  if (!head) throw new EagleError(`--spec ${c.mode} needs a draft head (--draft DIR)`, 2);
  if (c.mode === "auto" && !c.costs) throw new EagleError("--spec auto: no cost model (resolveSpec measures one)");
  const builder = c.mode === "eagle1" ? new StaticTreeBuilder(c.tree)
    : c.mode === "auto" ? new CostAwareTreeBuilder(c.auto, c.costs!) : new DynamicTreeBuilder(c.dynamic);
  return new EagleDrafter(head, builder);
}

export function loadHeadFor(mode: SpecMode, draftDir: string | undefined, target: LoadedModel,
  dtype?: WeightDTypeName): LoadedDraft | null {
  if (mode === "none") return null;
  if (!draftDir) throw new EagleError(`--spec ${mode} needs a draft head (--draft DIR)`, 2);
  return loadDraft(draftDir, target, dtype);
}

export interface ResolvedSpec {
  config: SpecConfig;
  head: LoadedDraft | null;
}

/** The method and head a run uses: an explicit draft directory, else `<model>-eagle` beside the model;
 * with a head and no --spec, auto. Auto's cost model is measured (or read from the cache) here. */
export function resolveSpec(f: SpecFlags & { draft?: string }, modelDir: string, target: LoadedModel): ResolvedSpec {
  const sibling = siblingHeadDir(modelDir);
  const draftDir = f.draft ?? (existsSync(join(sibling, "config.json")) ? sibling : undefined);
  const mode: SpecMode = f.spec ?? (draftDir ? "auto" : "none");
  const config = specConfig(mode, f);
  const head = loadHeadFor(mode, draftDir, target, f.draftDtype);
  if (mode === "auto" && head) config.costs = costsFor(target, head);
  return { config, head };
}

/** The same head under another mode (bench compares them): auto gets its cost model then. */
export function withMode(spec: ResolvedSpec, mode: SpecMode, target: LoadedModel): SpecConfig {
  const config = { ...spec.config, mode };
  if (mode === "auto" && !config.costs && spec.head) config.costs = costsFor(target, spec.head);
  return config;
}
