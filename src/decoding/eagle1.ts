// eagle1.ts — EAGLE-1's tree: a static plan of child ranks, filled each round with the draft's top-k, or,
// at temperature > 0, with children the draft samples (the official v1's drafting).
import type { DraftLevel, DraftSource, TreeBuilder } from "./eagle.ts";
import type { Drafting, RunDraws } from "./proposer.ts";
import { drawDistinct, targetDistribution } from "./sampling.ts";
import { type DrawnChildren, instantiate, instantiateDrawn, type StaticTreePlan, truncatePlan } from "./static-tree.ts";
import { fail } from "../util/errors.ts";
import { chainTree, type DraftTree } from "./tree.ts";

export class StaticTreeBuilder implements TreeBuilder {
  readonly maxTreeNodes: number;
  readonly maxFedNodes: number;
  constructor(readonly plan: StaticTreePlan) {
    this.maxTreeNodes = plan.nodes.length;
    this.maxFedNodes = plan.expand.slice(1).reduce((n, level) => n + level.length, 0);
  }

  *build(draft: DraftSource, root: number, maxNodes: number, draws?: RunDraws): Drafting<DraftTree> {
    if (maxNodes <= 1 || this.plan.nodes.length === 1) return chainTree([root]);
    const plan = maxNodes < this.plan.nodes.length ? truncatePlan(this.plan, maxNodes) : this.plan;
    if (draws && draws.sampling.temperature > 0) return yield* sampledTree(draft, plan, root, draws);
    const k = plan.topK;
    const ranked = new Map<number, Int32Array>([[0, draft.rootTopK(k).ids]]); // expanded node -> ranked child ids
    const row = new Map<number, number>([[0, draft.rootRow]]); // fed node -> its row in the latest draft output
    const slot = new Map<number, number>(); // fed node -> draft cache slot
    const tokenOf = (n: number) => ranked.get(plan.nodes[n].parent)![plan.nodes[n].rank];
    for (let d = 1; d < plan.expand.length && plan.expand[d].length > 0; d++) {
      const nodes = plan.expand[d];
      const fed = yield* draft.feed(levelOf(plan, nodes, d, tokenOf, row, slot), k);
      nodes.forEach((n, i) => {
        ranked.set(n, fed.top.ids.subarray(i * k, (i + 1) * k));
        row.set(n, i);
        slot.set(n, fed.slots[i]);
      });
    }
    return instantiate(plan, root, (n) => ranked.get(n)!);
  }
}

/**
 * Sampled drafting, as the official EAGLE-1 (v1) at temperature > 0: each expanded node's children are
 * drawn one after another without replacement from q, the draft's distribution at the node processed as
 * the target's is (temperature, top-k, top-p), as many as the plan gives it; the tree carries q per node
 * and verification (verify.ts) accepts each child with r(x) / q_j(x). When q's support runs out the node
 * gets fewer children and the plan under the missing ones is dropped. Draws come from the run's rng.
 */
function* sampledTree(draft: DraftSource, plan: StaticTreePlan, root: number, draws: RunDraws): Drafting<DraftTree> {
  if (!draft.draftRow) fail("sampled drafting needs the draft's logits rows");
  const drawn = new Map<number, DrawnChildren>(); // expanded node -> its drawn children
  const live = new Uint8Array(plan.nodes.length); // plan nodes that got a draw
  const drawChildren = (n: number, row: number) => {
    const q = targetDistribution(draft.draftRow!(row), draws.sampling);
    const ids = drawDistinct(q, plan.children[n].length, () => draws.rng.next());
    drawn.set(n, { ids, q });
    for (let j = 0; j < ids.length; j++) live[plan.children[n][j]] = 1;
  };
  drawChildren(0, draft.rootRow); // before the first feed: rootRow is in the committed output
  const row = new Map<number, number>([[0, draft.rootRow]]);
  const slot = new Map<number, number>();
  const tokenOf = (n: number) => drawn.get(plan.nodes[n].parent)!.ids[plan.place[n]];
  for (let d = 1; d < plan.expand.length; d++) {
    const nodes = plan.expand[d].filter((n) => live[n] === 1);
    if (nodes.length === 0) break;
    // no top-k read: the rows are read whole. (it would also leave the CPU slow at Math.exp until the next
    // forward: et_out_topk's vector code seems to skip vzeroupper, see the report of issue 14)
    const fed = yield* draft.feed(levelOf(plan, nodes, d, tokenOf, row, slot), 0);
    nodes.forEach((n, i) => {
      row.set(n, i);
      slot.set(n, fed.slots[i]);
      drawChildren(n, i);
    });
  }
  return instantiateDrawn(plan, root, drawn);
}

// the level of `nodes` (all at depth d) fed to the draft: their tokens, their parents' rows, their ancestors' slots
function levelOf(plan: StaticTreePlan, nodes: number[], d: number, tokenOf: (n: number) => number,
  row: Map<number, number>, slot: Map<number, number>): DraftLevel {
  return {
    tokens: nodes.map(tokenOf),
    featureRows: nodes.map((n) => row.get(plan.nodes[n].parent)!),
    depth: d,
    ancestorSlots: nodes.map((n) => ancestors(plan, n).map((a) => slot.get(a)!)),
  };
}

// ancestors of n below the root (the root's entry is already in the committed draft cache)
function ancestors(plan: StaticTreePlan, n: number): number[] {
  const out: number[] = [];
  for (let a = plan.nodes[n].parent; a > 0; a = plan.nodes[a].parent) out.push(a);
  return out;
}
