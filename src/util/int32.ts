// int32.ts — the few int32 arrays a round hands the shim (positions, cache slots), filled by plain loops:
// Int32Array.from with a map function costs a round of plain decoding several microseconds.

/** base, base + 1, .., base + n - 1. */
export function range(base: number, n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = base + i;
  return out;
}

/** base + values[i] for every i. */
export function offsetBy(values: ArrayLike<number>, base: number): Int32Array {
  const out = new Int32Array(values.length);
  for (let i = 0; i < out.length; i++) out[i] = base + values[i];
  return out;
}
