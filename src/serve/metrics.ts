// metrics.ts — the server's counters, and /metrics in Prometheus' text format (version 0.0.4).
// Acceptance figures are summed over every finished generation and use the field's definitions
// (decode.ts acceptanceStats): τ = 1 + accepted draft tokens per verification forward, and the
// per-position rate = rounds that accepted a draft token at that depth, over all rounds.
import type { BatchCounts } from "../decoding/batch-decode.ts";
import type { DecodeStats } from "../decoding/decode.ts";

export class Metrics {
  #requests = new Map<string, number>(); // "endpoint\tstatus" -> count
  #promptTokens = 0;
  #generatedTokens = 0;
  #rounds = 0;                 // verification forwards, over all generations
  #acceptedByDepth: number[] = [];
  #positions = 0;              // the deepest any generation's tree reached: one rate per position

  /** One answered HTTP request. Unknown paths count under "other", so the label set stays small. */
  request(endpoint: string, status: number): void {
    const key = `${endpoint}\t${status}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
  }

  /** One generation's figures, once it has ended. */
  generation(s: DecodeStats): void {
    this.#promptTokens += s.promptTokens;
    this.#generatedTokens += s.newTokens;
    this.#rounds += s.targetForwards;
    this.#positions = Math.max(this.#positions, s.proposedByDepth.length, s.acceptedByDepth.length);
    s.acceptedByDepth.forEach((n, d) => {
      this.#acceptedByDepth[d] = (this.#acceptedByDepth[d] ?? 0) + n;
    });
  }

  /** The exposition text; `queue`, `running` and `batches` are read from the scheduler at scrape time. */
  render(gauges: { queue: number; running: number; batches: BatchCounts }): string {
    const lines: string[] = [];
    const family = (name: string, type: string, help: string) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    family("eagle_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
    for (const [key, n] of [...this.#requests].sort()) {
      const [endpoint, status] = key.split("\t");
      lines.push(`eagle_requests_total{endpoint="${label(endpoint)}",status="${status}"} ${n}`);
    }
    family("eagle_prompt_tokens_total", "counter", "Prompt tokens of finished generations.");
    lines.push(`eagle_prompt_tokens_total ${this.#promptTokens}`);
    family("eagle_generation_tokens_total", "counter", "Tokens generated.");
    lines.push(`eagle_generation_tokens_total ${this.#generatedTokens}`);
    family("eagle_verification_steps_total", "counter", "Target verification forwards (speculation rounds).");
    lines.push(`eagle_verification_steps_total ${this.#rounds}`);
    const accepted = this.#acceptedByDepth.reduce((a, b) => a + b, 0);
    family("eagle_mean_acceptance_length", "gauge", "Tokens per verification forward: 1 + accepted draft tokens (0 before any).");
    lines.push(`eagle_mean_acceptance_length ${this.#rounds > 0 ? 1 + accepted / this.#rounds : 0}`);
    family("eagle_acceptance_rate", "gauge", "Rounds that accepted a draft token at this position (1 = first draft token), over all rounds.");
    for (let d = 0; d < this.#positions; d++) {
      const n = this.#acceptedByDepth[d] ?? 0;
      lines.push(`eagle_acceptance_rate{position="${d + 1}"} ${this.#rounds > 0 ? n / this.#rounds : 0}`);
    }
    family("eagle_queue_length", "gauge", "Requests waiting for their turn to decode.");
    lines.push(`eagle_queue_length ${gauges.queue}`);
    family("eagle_requests_in_flight", "gauge", "Requests being decoded now.");
    lines.push(`eagle_requests_in_flight ${gauges.running}`);
    const b = gauges.batches;
    family("eagle_target_forwards_total", "counter", "Batched target forwards (verifications and prefills, any number of requests each).");
    lines.push(`eagle_target_forwards_total ${b.targetCalls}`);
    family("eagle_target_forward_requests_total", "counter", "Requests those forwards stepped (over eagle_target_forwards_total: the mean batch).");
    lines.push(`eagle_target_forward_requests_total ${b.targetSequences}`);
    family("eagle_draft_forwards_total", "counter", "Batched draft-head passes.");
    lines.push(`eagle_draft_forwards_total ${b.draftCalls}`);
    family("eagle_draft_forward_requests_total", "counter", "Requests those passes stepped.");
    lines.push(`eagle_draft_forward_requests_total ${b.draftSequences}`);
    return `${lines.join("\n")}\n`;
  }
}

// a label value with Prometheus' three escapes
function label(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
