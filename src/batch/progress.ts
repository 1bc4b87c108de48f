// progress.ts — a one-line progress bar on stderr (items done / total, generated tokens per second),
// drawn only when stderr is a terminal; colour unless NO_COLOR is set. Silent when piped or redirected.

export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

const REDRAW_MS = 100;

export class Progress {
  readonly #enabled: boolean;
  readonly #color: boolean;
  readonly #start = performance.now();
  #done = 0;
  #tokens = 0;
  #lastDraw = 0;

  constructor(private readonly total: number, private readonly stream: ProgressStream = process.stderr,
    env: Record<string, string | undefined> = process.env) {
    this.#enabled = stream.isTTY === true;
    this.#color = this.#enabled && !env.NO_COLOR; // no-color.org: set and not empty
  }

  get tokens(): number { return this.#tokens; }

  /** Generated tokens per second of wall time since the run began. */
  get tokensPerSecond(): number {
    const seconds = (performance.now() - this.#start) / 1000;
    return seconds > 0 ? this.#tokens / seconds : 0;
  }

  token(): void {
    this.#tokens++;
    if (performance.now() - this.#lastDraw >= REDRAW_MS) this.#draw();
  }

  itemDone(): void {
    this.#done++;
    this.#draw();
  }

  /** A line of its own on stderr (above the bar on a terminal, which is redrawn at the next update). */
  message(text: string): void {
    if (this.#enabled) this.stream.write("\r\x1b[2K");
    this.stream.write(`${text}\n`);
  }

  /** Clears the bar, so what follows on stderr starts on a clean line. */
  finish(): void {
    if (this.#enabled) this.stream.write("\r\x1b[2K");
  }

  #draw(): void {
    if (!this.#enabled) return;
    this.#lastDraw = performance.now();
    const width = Math.max(10, Math.min(40, (this.stream.columns ?? 80) - 40));
    const filled = this.total > 0 ? Math.round((width * this.#done) / this.total) : width;
    const [done, todo] = ["#".repeat(filled), "-".repeat(width - filled)];
    const bar = this.#color ? `\x1b[32m${done}\x1b[2m${todo}\x1b[0m` : done + todo;
    this.stream.write(`\r\x1b[2Kbatch [${bar}] ${this.#done}/${this.total} | ${this.tokensPerSecond.toFixed(1)} tok/s`);
  }
}
