// eagle.ts — the EAGLE drafter: a draft head with its own cache that reads the target's features.
// Draft entry t pairs the target's feature f_t with token t+1 and sits at draft position t, so the
// stable draft cache is always as long as the target's, and its last entry (the root's) predicts the
// root's children. Tree levels are fed on top of it each round and dropped before the next commit.
import { draftForward, KvCache, StepOutput, type TopK } from "../native/engine.ts";
import type { LoadedDraft } from "../model/draft.ts";
import type { Proposer } from "./proposer.ts";
import type { DraftTree } from "./tree.ts";

/** One level of tree nodes fed to the draft in one forward. */
export interface DraftLevel {
  tokens: number[];
  featureRows: number[];    // per node: its parent's row in the previous draft output
  depth: number;            // tree depth of every node in the level
  ancestorSlots: number[][]; // per node: draft cache slots of its ancestors fed earlier this round
}

/** How a round's tree is grown: EAGLE-1's static plan or EAGLE-2's dynamic expansion. */
export interface TreeBuilder {
  readonly maxTreeNodes: number;
  readonly maxFedNodes: number;
  build(draft: EagleDrafter, root: number, maxNodes: number): DraftTree;
}

export class EagleDrafter implements Proposer {
  #kv: KvCache | null = null;
  readonly #out = StepOutput.create();
  #stable = 0;     // committed draft entries; the last is the root's
  #rootRow = 0;    // the root entry's row in #out after a commit
  #draftMs = 0;

  constructor(readonly head: LoadedDraft, private readonly builder: TreeBuilder) {}

  get #cache(): KvCache {
    if (!this.#kv) throw new Error("EagleDrafter used before start()");
    return this.#kv;
  }

  get maxTreeNodes(): number { return this.builder.maxTreeNodes; }
  get extraDraftSlots(): number { return this.builder.maxFedNodes; }
  get draftMs(): number { return this.#draftMs; }
  /** Slots of the draft cache, for builders: the next fed node lands at this slot. */
  get rootRow(): number { return this.#rootRow; }

  start(prompt: number[], target: StepOutput, root: number, capacity: number): void {
    this.#kv?.dispose();
    this.#kv = KvCache.create(this.head.model, capacity + this.extraDraftSlots);
    this.#stable = 0;
    // entries (f_0, t_1) ... (f_{P-1}, root)
    const tokens = [...prompt.slice(1), root];
    this.#catchUp(tokens, tokens.map((_, i) => i), target);
  }

  propose(root: number, maxNodes: number): DraftTree {
    const t0 = performance.now();
    const tree = this.builder.build(this, root, maxNodes);
    this.#draftMs += performance.now() - t0;
    return tree;
  }

  commit(tree: DraftTree, path: number[], bonus: number, target: StepOutput): void {
    // entries (f_root, a_1) ... (f_{a_k}, bonus): each accepted node's target feature, paired with the next token
    const tokens = [...path.slice(1).map((n) => tree.tokens[n]), bonus];
    this.#cache.truncate(this.#stable);
    this.#catchUp(tokens, path, target);
  }

  /** Top-k of the root entry: the candidates for depth 1. */
  rootTopK(k: number): TopK {
    return this.#out.topk(k, Int32Array.of(this.#rootRow));
  }

  /** Feeds one tree level; returns each node's top-k children (row after row) and its cache slot. */
  feed(level: DraftLevel, k: number): { top: TopK; slots: number[] } {
    const n = level.tokens.length;
    const len = this.#cache.length;
    const cols = len + n;
    const mask = new Uint8Array(n * cols);
    for (let i = 0; i < n; i++) {
      mask.fill(1, i * cols, i * cols + this.#stable); // the committed prefix
      for (const s of level.ancestorSlots[i]) mask[i * cols + s] = 1;
      mask[i * cols + len + i] = 1;
    }
    const position = this.#stable - 1 + level.depth; // the root entry sits at stable - 1
    draftForward(this.head.model, this.#cache, {
      tokens: Int32Array.from(level.tokens), positions: new Int32Array(n).fill(position), mask, maskCols: cols,
    }, this.#out, Int32Array.from(level.featureRows), this.#out);
    return { top: this.#out.topk(k), slots: Array.from({ length: n }, (_, i) => len + i) };
  }

  #catchUp(tokens: number[], featureRows: number[], target: StepOutput): void {
    const t0 = performance.now();
    const positions = Int32Array.from(tokens, (_, i) => this.#stable + i);
    draftForward(this.head.model, this.#cache, { tokens: Int32Array.from(tokens), positions }, target,
      Int32Array.from(featureRows), this.#out);
    this.#stable += tokens.length;
    this.#rootRow = tokens.length - 1;
    this.#draftMs += performance.now() - t0;
  }

  dispose(): void {
    this.#out.dispose();
    this.#kv?.dispose();
  }
}
