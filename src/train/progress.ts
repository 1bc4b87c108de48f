// progress.ts — training progress on stderr: on a terminal one redrawn line with a bar, step, smoothed
// loss and accuracy, speed and ETA; elsewhere (logs, CI) a plain line every `logEvery` steps.
import type { TrainStats } from "./trainer.ts";

export interface ProgressSink {
  write(text: string): void;
  tty: boolean;
}

export const stderrSink: ProgressSink = {
  write: (t) => void process.stderr.write(t),
  tty: process.stderr.isTTY === true,
};

const BAR = 24;
const REDRAW_MS = 100;

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  const [h, m] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60)];
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

export class Progress {
  #loss = NaN; // exponential moving averages over steps
  #acc = NaN;
  #lastDraw = 0;
  #drawn = false;
  readonly #t0 = performance.now();

  constructor(private readonly sink: ProgressSink, private readonly total: number, private readonly first: number,
    private readonly logEvery: number) {}

  update(step: number, s: TrainStats, lr: number): void {
    const a = Number.isNaN(this.#loss) ? 1 : 0.05;
    this.#loss = a * s.loss + (1 - a) * (Number.isNaN(this.#loss) ? 0 : this.#loss);
    this.#acc = a * s.acc + (1 - a) * (Number.isNaN(this.#acc) ? 0 : this.#acc);
    const now = performance.now();
    if (this.sink.tty) {
      if (now - this.#lastDraw < REDRAW_MS && step !== this.total) return;
      this.#lastDraw = now;
      this.sink.write(`\r\x1b[K${this.#line(step, lr, true)}`);
      this.#drawn = true;
    } else if (step % this.logEvery === 0 || step === this.total) {
      this.sink.write(`${this.#line(step, lr, false)}\n`);
    }
  }

  /** A line of its own (validation results, checkpoints), above the progress line on a terminal. */
  message(text: string): void {
    this.sink.write(this.sink.tty && this.#drawn ? `\r\x1b[K${text}\n` : `${text}\n`);
    this.#lastDraw = 0;
  }

  /** Ends the progress line. */
  done(): void {
    if (this.sink.tty && this.#drawn) this.sink.write("\n");
    this.#drawn = false;
  }

  #line(step: number, lr: number, bar: boolean): string {
    const elapsed = (performance.now() - this.#t0) / 1000;
    const rate = (step - this.first) / Math.max(elapsed, 1e-9);
    const eta = formatDuration((this.total - step) / rate);
    const filled = Math.round((BAR * step) / this.total);
    const head = bar ? `[${"#".repeat(filled)}${".".repeat(BAR - filled)}] ` : "";
    return `${head}step ${step}/${this.total} loss ${this.#loss.toFixed(4)} acc ${this.#acc.toFixed(3)} ` +
      `lr ${lr.toExponential(2)} | ${rate.toFixed(1)} steps/s, eta ${eta}`;
  }
}
