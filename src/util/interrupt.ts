// interrupt.ts — Ctrl-C as a request to stop: the first SIGINT asks the running loop to finish cleanly
// (flush what is done, print stats, exit 130); a second one exits at once. Long synchronous loops call
// poll() between steps: it takes a short break to the event loop (where signals are delivered) at most
// every POLL_MS, so checking costs nothing per step.
const POLL_MS = 20;

export class Interrupt {
  #requested = false;
  #lastBreak = performance.now();
  readonly #onSignal = () => {
    if (this.#requested) process.exit(130);
    this.#requested = true;
    this.onRequest();
  };

  /** `onRequest` runs on the first Ctrl-C (say what will happen). Remove with dispose(). */
  constructor(private readonly onRequest: () => void = () => {}) {
    process.on("SIGINT", this.#onSignal);
  }

  get requested(): boolean {
    return this.#requested;
  }

  /** True once Ctrl-C was pressed; lets a pending signal be delivered first. */
  async poll(): Promise<boolean> {
    if (performance.now() - this.#lastBreak >= POLL_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.#lastBreak = performance.now();
    }
    return this.#requested;
  }

  dispose(): void {
    process.off("SIGINT", this.#onSignal);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
