// input.ts — lines typed at the prompt into one message. A line ending in `\` continues on the next
// line; `"""` opens a block that runs until a line ending in `"""` (text on either fence line counts).
export type InputStep = { kind: "more" } | { kind: "done"; text: string };

const FENCE = '"""';

export class InputAssembler {
  private lines: string[] = [];
  private inBlock = false;

  /** true while a message is half-typed (the prompt shows the continuation marker). */
  get pending(): boolean {
    return this.inBlock || this.lines.length > 0;
  }

  reset(): void {
    this.lines = [];
    this.inBlock = false;
  }

  push(line: string): InputStep {
    if (this.inBlock) {
      if (!line.endsWith(FENCE)) return this.more(line);
      const last = line.slice(0, -FENCE.length);
      return this.done(last === "" ? undefined : last);
    }
    if (!this.pending && line.startsWith(FENCE)) {
      const rest = line.slice(FENCE.length);
      if (rest.length >= FENCE.length && rest.endsWith(FENCE)) return this.done(rest.slice(0, -FENCE.length));
      this.inBlock = true;
      return rest === "" ? { kind: "more" } : this.more(rest);
    }
    if (line.endsWith("\\")) return this.more(line.slice(0, -1));
    this.lines.push(line);
    return this.done();
  }

  private more(line: string): InputStep {
    this.lines.push(line);
    return { kind: "more" };
  }

  private done(last?: string): InputStep {
    if (last !== undefined) this.lines.push(last);
    const text = this.lines.join("\n");
    this.reset();
    return { kind: "done", text };
  }
}
