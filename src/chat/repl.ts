// repl.ts — the read-answer loop over node:readline. On a terminal: a `> ` prompt, Ctrl-C stops an
// answer (or clears the line; twice at an empty prompt leaves), Ctrl-D leaves. Piped: lines in, answers
// out, and end of input leaves.
import { createInterface, type Interface } from "node:readline";
import { EagleError } from "../util/errors.ts";
import { HELP, parseCommand, settingName } from "./commands.ts";
import { InputAssembler } from "./input.ts";
import { type ChatOutput, type ChatSession, formatAnswerStats, formatShow } from "./session.ts";

export interface ReplStyle {
  prompt: (s: string) => string; // colours for the prompt (stdout)
}

/** Lines from readline as a queue: the loop awaits one at a time while answers run in between. */
class LineQueue {
  private lines: string[] = [];
  private ended = false;
  private waiter: ((line: string | null) => void) | null = null;

  put(line: string): void {
    if (this.ended) return;
    if (this.waiter) this.take()(line);
    else this.lines.push(line);
  }

  /** No more lines; `discard` also drops the ones not yet read. */
  end(discard: boolean): void {
    this.ended = true;
    if (discard) this.lines = [];
    if (this.waiter) this.take()(null);
  }

  /** No more lines will come (they may still be queued). */
  get ending(): boolean {
    return this.ended;
  }

  next(): Promise<string | null> {
    if (this.lines.length > 0) return Promise.resolve(this.lines.shift()!);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  private take(): (line: string | null) => void {
    const w = this.waiter!;
    this.waiter = null;
    return w;
  }
}

export async function runRepl(session: ChatSession, out: ChatOutput, style: ReplStyle): Promise<void> {
  const tty = process.stdin.isTTY === true && process.stdout.isTTY === true; // else plain lines, no prompt
  const rl = createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty });
  const queue = new LineQueue();
  const input = new InputAssembler();
  let answering = false;
  let emptyInterrupts = 0; // Ctrl-Cs in a row at an empty prompt

  let leaving = false; // the loop is closing readline itself (/bye, Ctrl-C twice)
  const prompt = () => {
    if (!tty || queue.ending) return;
    rl.setPrompt(style.prompt(input.pending ? "... " : "> "));
    rl.prompt();
  };
  const onInterrupt = () => {
    if (answering) {
      session.interrupt();
      return;
    }
    if (tty) process.stdout.write("^C\n");
    if (input.pending || (tty && rl.line !== "")) {
      input.reset();
      if (tty) clearLine(rl);
      emptyInterrupts = 0;
    } else if (++emptyInterrupts >= 2) {
      queue.end(true);
      return;
    } else {
      out.notice("(Ctrl-C again, Ctrl-D or /bye to leave)");
    }
    prompt();
  };
  rl.on("line", (line) => queue.put(line));
  rl.on("close", () => {
    if (answering && tty) session.interrupt(); // Ctrl-D mid-answer: stop it and leave
    else if (tty && !leaving) process.stdout.write("\n"); // Ctrl-D at the prompt: the shell's prompt on a line of its own
    queue.end(false);
  });
  rl.on("SIGINT", onInterrupt); // a terminal: readline reads ^C as a key
  process.on("SIGINT", onInterrupt); // piped: a real signal

  try {
    for (;;) {
      prompt();
      const line = await queue.next();
      if (line === null) break;
      emptyInterrupts = 0;
      const step = input.push(line);
      if (step.kind === "more") continue;
      const text = step.text;
      if (text.trim() === "") continue;
      if (text.startsWith("/") && !text.includes("\n")) {
        if (!runCommand(text, session, out)) break;
        continue;
      }
      answering = true;
      try {
        await session.answer(text);
      } catch (e) {
        // a template that fails on this conversation ends the answer, not the chat
        if (!(e instanceof EagleError)) throw e;
        out.error(e.message);
      } finally {
        answering = false;
      }
    }
  } finally {
    process.off("SIGINT", onInterrupt);
    leaving = true;
    rl.close();
  }
}

/** Runs a slash command; false means leave. */
function runCommand(text: string, session: ChatSession, out: ChatOutput): boolean {
  const c = parseCommand(text);
  switch (c.kind) {
    case "help":
      out.notice(HELP);
      break;
    case "set":
      session.settings[c.key] = c.value;
      out.notice(`${settingName(c.key)} = ${c.value}`);
      break;
    case "spec":
      if (c.mode !== "none" && !session.hasHead) {
        out.error(`/spec ${c.mode}: no draft head loaded (start with --draft DIR, or put one at <model>-eagle)`);
      } else {
        session.setMode(c.mode);
        out.notice(`spec = ${c.mode}`);
      }
      break;
    case "stats":
      out.notice(formatAnswerStats(session.last));
      break;
    case "show":
      out.notice(formatShow(session));
      break;
    case "clear":
      session.conversation.clear();
      out.notice("(history cleared)");
      break;
    case "bye":
      return false;
    case "error":
      out.error(c.message);
      break;
  }
  return true;
}

// empties readline's line buffer: to the end, then delete to the start
function clearLine(rl: Interface): void {
  rl.write(null, { ctrl: true, name: "e" });
  rl.write(null, { ctrl: true, name: "u" });
}
