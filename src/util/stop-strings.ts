// stop-strings.ts — ending generated text at the first of some strings (generate/chat --stop, batch's
// `stop`), as llama.cpp's server does: text that could still become a stop string is held back until the
// next piece says whether it does, so a stop string is never shown, even when it spans several tokens.

export class StopStrings {
  #pending = ""; // text not shown yet: the longest tail that is the start of a stop string
  #stopped = false;
  readonly #longest: number;

  constructor(readonly stops: readonly string[]) {
    if (stops.some((s) => s === "")) throw new Error("StopStrings: an empty stop string");
    this.#longest = Math.max(0, ...stops.map((s) => s.length));
  }

  /** True once the text so far contains a stop string: the run should end. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** The next piece of generated text in; out, what can be shown now (the text before a stop string, once one appears). */
  push(piece: string): string {
    if (this.#stopped) return "";
    const text = this.#pending + piece;
    const at = this.#firstStop(text);
    if (at >= 0) {
      this.#stopped = true;
      this.#pending = "";
      return text.slice(0, at);
    }
    const keep = this.#heldTail(text);
    this.#pending = text.slice(text.length - keep);
    return text.slice(0, text.length - keep);
  }

  /** The end of the run: its last piece (a stream decoder's flush), then the text held back, which never
   * became a stop string; nothing once stopped. */
  finish(last = ""): string {
    const text = this.push(last) + this.#pending;
    this.#pending = "";
    return text;
  }

  // where the earliest stop string starts in `text`, or -1 (earlier text never held a whole one)
  #firstStop(text: string): number {
    let first = -1;
    for (const s of this.stops) {
      const at = text.indexOf(s);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    return first;
  }

  // the length of the longest tail of `text` that some stop string starts with
  #heldTail(text: string): number {
    for (let n = Math.min(text.length, this.#longest - 1); n > 0; n--) {
      const tail = text.slice(text.length - n);
      if (this.stops.some((s) => s.startsWith(tail))) return n;
    }
    return 0;
  }
}

/** A run's end reason with its stop strings counted: "stop" once one appeared (whatever the loop then saw
 * end it: the stop callback, the context), else the loop's own reason. */
export function withStopStrings<R extends string>(reason: R, stops: StopStrings): R | "stop" {
  return stops.stopped ? "stop" : reason;
}

/** OpenAI's finish reason for a run's end: "stop" for an end-of-sequence token or a stop string, "length" for
 * the token limit or the context, null for a run cut short (Ctrl-C, a client gone), which each caller names. */
export function openAiFinish(reason: string, stops: StopStrings): "stop" | "length" | null {
  if (stops.stopped || reason === "eos") return "stop";
  if (reason === "max_tokens" || reason === "context") return "length";
  return null;
}
