// eagle.ts — the EAGLE drafter: a draft head with its own cache that reads the target's features.
// Draft entry t pairs the target's feature f_t with token t+1 and sits at draft position t, so the
// committed draft cache follows the target's, and its last entry (the root's) predicts the root's
// children. Tree levels are fed on top of it each round and dropped before the next commit. A builder
// may let the drafter rest (plain rounds); on waking it feeds only the last few entries it missed, at
// their true positions, and the rest stay a gap in the draft's context.
import { KvCache, StepOutput, type TopK } from "../native/engine.ts";
import type { LoadedDraft } from "../model/draft.ts";
import type { DraftCall, Drafting, PlainRun, Prediction, Proposer, RunDraws } from "./proposer.ts";
import { chainTree, type DraftTree } from "./tree.ts";
import { range } from "../util/int32.ts";

/** One level of tree nodes fed to the draft in one forward. */
export interface DraftLevel {
  tokens: number[];
  featureRows: number[];    // per node: its parent's row in the previous draft output
  depth: number;            // tree depth of every node in the level
  ancestorSlots: number[][]; // per node: draft cache slots of its ancestors fed earlier this round
}

/** A fed level's results: each node's top-k children and its draft cache slot. */
export interface FedLevel {
  top: TopK;
  slots: number[];
}

/** What a tree builder asks of the draft within a round (EagleDrafter; calibration times a stand-in). */
export interface DraftSource {
  /** Top-k of the root entry: the candidates for depth 1. */
  rootTopK(k: number): TopK;
  /** Feeds one tree level (one draft forward, yielded); returns each node's top-k children (row after row; none
   * for k = 0) and its cache slot. */
  feed(level: DraftLevel, k: number): Drafting<FedLevel>;
  /** The root entry's row in the draft's latest output. */
  readonly rootRow: number;
  /** Cached context of the target (the root's position), for cost estimates. */
  readonly contextLength: number;
  /** Sequences sharing this round's forwards in a batch (1 alone), for cost estimates. */
  readonly sharing?: number;
  /** The whole logits row `row` of the draft's latest output (as rootRow and feed's rows number them), for
   * builders that sample from the draft's distribution; valid until the next call. Absent from stand-ins
   * that only rank. */
  draftRow?(row: number): Float32Array;
}

/** How a round's tree is grown: EAGLE-1's static plan, EAGLE-2's dynamic expansion, or auto's costed one. */
export interface TreeBuilder {
  readonly maxTreeNodes: number;
  readonly maxFedNodes: number;
  /** `draws`: the run's sampling and rng, for a builder that samples its tree at temperature > 0. */
  build(draft: DraftSource, root: number, maxNodes: number, draws?: RunDraws): Drafting<DraftTree>;
  /** After verification of a built tree: which nodes the target accepted. */
  observe?(tree: DraftTree, path: number[]): void;
  /** After a built round: true makes the drafter rest (plain rounds, no draft work) until wakes() says so. */
  rests?(): boolean;
  /** Before each round while resting, with the cached context length and the sequences sharing the round's
   * forwards: true to draft again. */
  wakes?(context: number, sharing: number): boolean;
  /** While resting: rounds until it wakes (entries older than WAKE_WINDOW rounds need no features). */
  restLeft?(): number;
  /** Before the first round, with the prompt's length, the sequences sharing the round's forwards and the
   * run's draws: true to rest from the start (the prompt not fed). */
  startsResting?(context: number, sharing: number, draws?: RunDraws): boolean;
  /** Before the run, with the contexts it spans (the prompt's length to the longest it may reach) and its
   * draws: a PlainRun when no draft as good as this pair's could pay at any of them even alone (see
   * Proposer.plainRun), else null. */
  plainRun?(from: number, to: number, draws?: RunDraws): PlainRun | null;
  /** A cost-aware builder's expectations of the rounds it built. */
  readonly stats?: { rounds: number; predictedTokens: number; predictedUs: number; plainUs: number };
}

// entries a resting drafter keeps to catch up on when it wakes: older ones are skipped (a gap in the
// draft's context, which only weakens its guesses)
const WAKE_WINDOW = 8;

export class EagleDrafter implements Proposer, DraftSource {
  #kv: KvCache | null = null;
  readonly #out = StepOutput.create();
  #stable = 0;     // committed draft entries (cache slots); the last is the root's
  #lastPos = -1;   // the position of the last committed entry (the root's): slots and positions part at a gap
  #rootRow = 0;    // the root entry's row in #out after a commit
  #draftMs = 0;
  // while resting: the entries not yet fed (the last WAKE_WINDOW), their features in #store
  #lag: { tokens: number[]; positions: number[]; next: number } | null = null;
  #store: StepOutput | null = null;
  #draws: RunDraws | undefined; // the run's, from start()
  #row: Float32Array | null = null; // draftRow's buffer
  #sharing = 1; // this round's, from propose()

  constructor(readonly head: LoadedDraft, private readonly builder: TreeBuilder) {}

  get #cache(): KvCache {
    if (!this.#kv) throw new Error("EagleDrafter used before start()");
    return this.#kv;
  }

  get maxTreeNodes(): number { return this.builder.maxTreeNodes; }
  get extraDraftSlots(): number { return this.builder.maxFedNodes; }
  get draftMs(): number { return this.#draftMs; }
  get prediction(): Prediction | undefined {
    const s = this.builder.stats;
    return s ? { tokens: s.predictedTokens, us: s.predictedUs, rounds: s.rounds, plainUs: s.plainUs } : undefined;
  }
  /** The root entry's row in the draft's latest output, for builders. */
  get rootRow(): number { return this.#rootRow; }
  /** Cached context of the target when drafting (the root's position), for cost estimates. */
  get contextLength(): number { return this.#lastPos + 1; }
  get sharing(): number { return this.#sharing; }

  plainRun(promptLength: number, maxNewTokens: number, draws?: RunDraws): PlainRun | null {
    return this.builder.plainRun?.(promptLength, promptLength + maxNewTokens, draws) ?? null;
  }

  *start(prompt: number[], target: StepOutput, root: number, capacity: number, draws?: RunDraws, sharing = 1): Drafting<void> {
    this.#draws = draws;
    this.#kv?.dispose();
    this.#kv = KvCache.create(this.head.model, capacity + this.extraDraftSlots);
    this.#stable = 0;
    this.#lastPos = -1;
    this.#lag = null;
    // entries (f_0, t_1) ... (f_{P-1}, root)
    const tokens = [...prompt.slice(1), root];
    const rows = tokens.map((_, i) => i);
    if (this.builder.startsResting?.(prompt.length, sharing, draws)) {
      this.#lag = { tokens: [], positions: [], next: 0 };
      this.#store ??= StepOutput.create();
      this.#rest(tokens, rows, target);
      return;
    }
    yield* this.#catchUp(tokens, Int32Array.from(rows), target);
  }

  *propose(root: number, maxNodes: number, sharing = 1): Drafting<DraftTree> {
    this.#sharing = sharing;
    if (this.#lag && !this.builder.wakes?.(this.#nextPosition(), sharing)) return chainTree([root]);
    const t0 = performance.now();
    if (this.#lag) yield* this.#wake();
    const tree = yield* this.builder.build(this, root, maxNodes, this.#draws);
    this.#draftMs += performance.now() - t0;
    return tree;
  }

  *commit(tree: DraftTree, path: number[], bonus: number, target: StepOutput): Drafting<void> {
    // resting and far from waking: only the position moves on (one entry per accepted node)
    if (this.#lag && (this.builder.restLeft?.() ?? 0) > WAKE_WINDOW) {
      this.#lag.next += path.length;
      return;
    }
    // entries (f_root, a_1) ... (f_{a_k}, bonus): each accepted node's target feature, paired with the next token
    const tokens = [...path.slice(1).map((n) => tree.tokens[n]), bonus];
    if (!this.#lag) {
      this.builder.observe?.(tree, path);
      this.#cache.truncate(this.#stable); // the tree levels fed this round
      if (!this.builder.rests?.()) {
        yield* this.#catchUp(tokens, Int32Array.from(path), target);
        return;
      }
      this.#lag = { tokens: [], positions: [], next: this.#lastPos + 1 };
      this.#store ??= StepOutput.create();
    }
    this.#rest(tokens, path, target);
  }

  /** A resting round: keep the entries (and their features) the draft would have been fed, the last few only. */
  #rest(tokens: number[], path: number[], target: StepOutput): void {
    const lag = this.#lag!;
    const first = this.#nextPosition();
    lag.next = first + tokens.length;
    // each round adds an entry at least, so only the last WAKE_WINDOW rounds' entries can be fed
    if ((this.builder.restLeft?.() ?? 0) > WAKE_WINDOW) return;
    const keep = Math.min(WAKE_WINDOW, lag.tokens.length + tokens.length);
    this.#store!.gather(target, Int32Array.from(path), keep);
    lag.tokens.push(...tokens);
    lag.positions.push(...tokens.map((_, i) => first + i));
    lag.tokens.splice(0, lag.tokens.length - keep);
    lag.positions.splice(0, lag.positions.length - keep);
  }

  /** The position of the next entry: after the last committed one, or after the last one seen while resting. */
  #nextPosition(): number {
    return this.#lag ? this.#lag.next : this.#lastPos + 1;
  }

  /** Back from resting: feed the kept entries at their true positions (earlier ones stay a gap). */
  *#wake(): Drafting<void> {
    const lag = this.#lag!;
    this.#lag = null;
    const n = lag.tokens.length;
    yield this.#call({ tokens: Int32Array.from(lag.tokens), positions: Int32Array.from(lag.positions) },
      this.#store!, range(0, n));
    this.#stable += n;
    this.#lastPos = lag.positions[n - 1];
    this.#rootRow = n - 1;
  }

  // a draft forward over this drafter's cache into its output
  #call(batch: DraftCall["batch"], features: StepOutput, featureRows: Int32Array): DraftCall {
    return { head: this.head.model, kv: this.#cache, batch, features, featureRows, out: this.#out };
  }

  draftRow(row: number): Float32Array {
    this.#row ??= new Float32Array(this.head.config.vocabSize);
    return this.#out.logitsRow(row, this.#row);
  }

  /** Top-k of the root entry: the candidates for depth 1. */
  rootTopK(k: number): TopK {
    return this.#out.topk(k, Int32Array.of(this.#rootRow));
  }

  /** Feeds one tree level; returns each node's top-k children (row after row; none for k = 0) and its cache slot. */
  *feed(level: DraftLevel, k: number): Drafting<FedLevel> {
    const n = level.tokens.length;
    const len = this.#cache.length;
    const cols = len + n;
    const mask = new Uint8Array(n * cols);
    for (let i = 0; i < n; i++) {
      mask.fill(1, i * cols, i * cols + this.#stable); // the committed prefix
      for (const s of level.ancestorSlots[i]) mask[i * cols + s] = 1;
      mask[i * cols + len + i] = 1;
    }
    const position = this.#lastPos + level.depth; // the root entry's position plus the node's depth
    yield this.#call({ tokens: Int32Array.from(level.tokens), positions: new Int32Array(n).fill(position), mask, maskCols: cols },
      this.#out, Int32Array.from(level.featureRows));
    const top = k > 0 ? this.#out.topk(k) : { ids: new Int32Array(0), logp: new Float32Array(0) };
    return { top, slots: Array.from({ length: n }, (_, i) => len + i) };
  }

  *#catchUp(tokens: number[], featureRows: Int32Array, target: StepOutput): Drafting<void> {
    const t0 = performance.now();
    const positions = range(this.#lastPos + 1, tokens.length);
    yield this.#call({ tokens: Int32Array.from(tokens), positions }, target, featureRows);
    this.#stable += tokens.length;
    this.#lastPos += tokens.length;
    this.#rootRow = tokens.length - 1;
    this.#draftMs += performance.now() - t0;
  }

  dispose(): void {
    this.#out.dispose();
    this.#store?.dispose();
    this.#kv?.dispose();
  }
}
