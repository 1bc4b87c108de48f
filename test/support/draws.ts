// scripted random draws for tests that pass the draws in: handed out in order, and the test can check all
// of them were used
export function script(draws: number[]): { draw: () => number; left: () => number } {
  let i = 0;
  return {
    draw: () => {
      if (i >= draws.length) throw new Error("ran out of draws");
      return draws[i++];
    },
    left: () => draws.length - i,
  };
}
