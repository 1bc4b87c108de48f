// eagle2.ts — EAGLE-2's context-aware dynamic tree (eagle.md §4): each pass feeds the K best frontier
// nodes by value (the product of draft confidences along the path, summed as log-probs), collects their
// K children each, and keeps the K best new children as the next frontier; at the end the best
// totalTokens - 1 candidates of every level are reranked into the tree.
import { ancestorsOf, type Candidate, rerankTree, selectFrontier } from "./dynamic-tree.ts";
import type { DraftSource, TreeBuilder } from "./eagle.ts";
import type { Drafting } from "./proposer.ts";
import { EagleError } from "../util/errors.ts";
import { chainTree, type DraftTree } from "./tree.ts";

export interface DynamicTreeParams {
  topK: number;        // children per expanded node, and nodes expanded per pass
  depth: number;       // expansion passes; the tree has up to depth + 1 draft levels
  totalTokens: number; // tree size the target verifies, root included
}

/** The official EAGLE-2 defaults (EAGLE repo main: top_k 10, depth 7, total_token 60). */
export const EAGLE2_DEFAULTS: DynamicTreeParams = { topK: 10, depth: 7, totalTokens: 60 };

export function checkDynamicParams(p: DynamicTreeParams): void {
  const bad = (flag: string, v: number, want: string) => {
    throw new EagleError(`--${flag} ${v}: must be ${want}`, 2);
  };
  if (!Number.isInteger(p.topK) || p.topK < 1 || p.topK > 64) bad("spec-topk", p.topK, "an integer in [1, 64]");
  if (!Number.isInteger(p.depth) || p.depth < 0 || p.depth > 32) bad("spec-depth", p.depth, "an integer in [0, 32]");
  const most = p.topK + p.topK * p.topK * p.depth + 1;
  if (!Number.isInteger(p.totalTokens) || p.totalTokens < 1 || p.totalTokens > Math.min(most, 1024)) {
    bad("spec-tokens", p.totalTokens, `an integer in [1, ${Math.min(most, 1024)}] (the candidates top-k and depth can make, plus the root)`);
  }
}

export class DynamicTreeBuilder implements TreeBuilder {
  readonly maxTreeNodes: number;
  readonly maxFedNodes: number;
  constructor(readonly params: DynamicTreeParams) {
    checkDynamicParams(params);
    this.maxTreeNodes = params.totalTokens;
    this.maxFedNodes = params.topK * params.depth;
  }

  *build(draft: DraftSource, root: number, maxNodes: number): Drafting<DraftTree> {
    const keep = Math.min(this.params.totalTokens, maxNodes) - 1;
    if (keep <= 0) return chainTree([root]);
    const K = this.params.topK;
    const first = draft.rootTopK(K);
    const candidates: Candidate[] = Array.from(first.ids, (token, j) => ({ token, parent: -1, logp: Math.min(first.logp[j], 0), depth: 1 }));
    let frontier = candidates.map((_, j) => j);
    let featureRows = frontier.map(() => draft.rootRow);
    const slot = new Map<number, number>();
    for (let pass = 1; pass <= this.params.depth; pass++) {
      const fed = yield* draft.feed({
        tokens: frontier.map((c) => candidates[c].token),
        featureRows,
        depth: pass,
        ancestorSlots: frontier.map((c) => ancestorsOf(candidates, c).map((a) => slot.get(a)!)),
      }, K);
      const base = candidates.length;
      frontier.forEach((c, j) => {
        slot.set(c, fed.slots[j]);
        for (let r = 0; r < K; r++) {
          const i = j * K + r;
          // a log-prob is <= 0; clamping keeps half-precision rounding from ranking a child above its parent
          const logp = candidates[c].logp + Math.min(fed.top.logp[i], 0);
          candidates.push({ token: fed.top.ids[i], parent: c, logp, depth: pass + 1 });
        }
      });
      const chosen = selectFrontier(candidates.slice(base).map((c) => c.logp), K);
      frontier = chosen.map((s) => base + s);
      featureRows = chosen.map((s) => Math.floor(s / K)); // the parent's row in this pass's output
    }
    return rerankTree(root, candidates, keep);
  }
}
