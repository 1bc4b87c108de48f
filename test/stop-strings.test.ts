// stop strings on their own: text ends before the first stop string, which is never shown, also when it
// arrives over several pieces; text that only looked like its start is shown once it cannot be.
import { expect, test } from "bun:test";
import { openAiFinish, StopStrings, withStopStrings } from "../src/util/stop-strings.ts";

/** Every piece through `stops`, the last one through finish: what was shown after each. */
function run(stops: string[], pieces: string[]): { shown: string[]; stopped: boolean } {
  const s = new StopStrings(stops);
  const shown = [...pieces.slice(0, -1).map((p) => s.push(p)), s.finish(pieces.at(-1))];
  return { shown, stopped: s.stopped };
}

test("the text before a stop string inside a piece, and nothing after", () => {
  expect(run(["."], ["Once", " upon. A", " time"])).toEqual({ shown: ["Once", " upon", ""], stopped: true });
});

test("a stop string over several pieces: its start is held back, then dropped", () => {
  // "named Li" comes as "name", "d L", "ily": "name" could start it, "named L" still could, "named Lily" holds it
  expect(run(["named Li"], ["girl ", "name", "d L", "ily"])).toEqual({ shown: ["girl ", "", "", ""], stopped: true });
});

test("held-back text that does not become a stop string is shown with the next piece, or at the end", () => {
  expect(run(["\n\n"], ["one\n", "two\n", ""])).toEqual({ shown: ["one", "\ntwo", "\n"], stopped: false });
  expect(run(["\n\n"], ["one\n", "two\n"])).toEqual({ shown: ["one", "\ntwo\n"], stopped: false });
  expect(run(["Lily"], ["Li", "on", "s Li"])).toEqual({ shown: ["", "Lion", "s Li"], stopped: false });
});

test("the earliest of several stop strings wins, wherever it is listed", () => {
  expect(run(["Lily", "girl"], ["a little girl named Lily"])).toEqual({ shown: ["a little "], stopped: true });
  // "ab" starts at 0, "b" at 1: the text ends before "ab"
  expect(run(["b", "ab"], ["xab"])).toEqual({ shown: ["x"], stopped: true });
});

test("no stop strings: every piece as it comes", () => {
  expect(run([], ["a", "b"])).toEqual({ shown: ["a", "b"], stopped: false });
});

test("a run's reason with its stop strings counted", () => {
  const s = new StopStrings(["x"]);
  expect(withStopStrings("max_tokens", s)).toBe("max_tokens");
  expect(s.push("ax")).toBe("a");
  expect(withStopStrings("interrupted", s)).toBe("stop"); // the loop ended through the stop callback
  expect(s.push("more")).toBe("");
  expect(s.finish("and more")).toBe("");
  expect(() => new StopStrings([""])).toThrow(/empty/);
});

test("OpenAI's finish reason: stop for an end-of-sequence token or a stop string, length for the limits, null when cut short", () => {
  const none = new StopStrings(["x"]);
  expect(openAiFinish("eos", none)).toBe("stop");
  expect(openAiFinish("max_tokens", none)).toBe("length");
  expect(openAiFinish("context", none)).toBe("length");
  expect(openAiFinish("interrupted", none)).toBeNull();
  const hit = new StopStrings(["x"]);
  hit.push("x");
  expect(openAiFinish("interrupted", hit)).toBe("stop"); // the stop callback ended it: the stop string did
  expect(openAiFinish("context", hit)).toBe("stop");
});
