// eagle1.ts — EAGLE-1's tree: a static plan of child ranks, filled each round with the draft's top-k.
import type { DraftLevel, DraftSource, TreeBuilder } from "./eagle.ts";
import { instantiate, type StaticTreePlan, truncatePlan } from "./static-tree.ts";
import { chainTree, type DraftTree } from "./tree.ts";

export class StaticTreeBuilder implements TreeBuilder {
  readonly maxTreeNodes: number;
  readonly maxFedNodes: number;
  constructor(readonly plan: StaticTreePlan) {
    this.maxTreeNodes = plan.nodes.length;
    this.maxFedNodes = plan.expand.slice(1).reduce((n, level) => n + level.length, 0);
  }

  build(draft: DraftSource, root: number, maxNodes: number): DraftTree {
    if (maxNodes <= 1 || this.plan.nodes.length === 1) return chainTree([root]);
    const plan = maxNodes < this.plan.nodes.length ? truncatePlan(this.plan, maxNodes) : this.plan;
    const k = plan.topK;
    const ranked = new Map<number, Int32Array>([[0, draft.rootTopK(k).ids]]); // expanded node -> ranked child ids
    const row = new Map<number, number>([[0, draft.rootRow]]); // fed node -> its row in the latest draft output
    const slot = new Map<number, number>(); // fed node -> draft cache slot
    const tokenOf = (n: number) => ranked.get(plan.nodes[n].parent)![plan.nodes[n].rank];
    for (let d = 1; d < plan.expand.length && plan.expand[d].length > 0; d++) {
      const nodes = plan.expand[d];
      const level: DraftLevel = {
        tokens: nodes.map(tokenOf),
        featureRows: nodes.map((n) => row.get(plan.nodes[n].parent)!),
        depth: d,
        ancestorSlots: nodes.map((n) => ancestors(plan, n).map((a) => slot.get(a)!)),
      };
      const fed = draft.feed(level, k);
      nodes.forEach((n, i) => {
        ranked.set(n, fed.top.ids.subarray(i * k, (i + 1) * k));
        row.set(n, i);
        slot.set(n, fed.slots[i]);
      });
    }
    return instantiate(plan, root, (n) => ranked.get(n)!);
  }
}

// ancestors of n below the root (the root's entry is already in the committed draft cache)
function ancestors(plan: StaticTreePlan, n: number): number[] {
  const out: number[] = [];
  for (let a = plan.nodes[n].parent; a > 0; a = plan.nodes[a].parent) out.push(a);
  return out;
}
