// goodness-of-fit helpers for the sampling tests: a chi-square test whose p-value comes from the
// regularized upper incomplete gamma function Q(dof/2, x/2), and total variation distance.

export interface ChiSquare {
  statistic: number;
  dof: number; // cells after merging, minus 1
  pValue: number; // P(chi2_dof >= statistic); 0 when a count lands where nothing was expected
}

// log Γ(x) for x > 0 by the Lanczos approximation (g = 7, 9 terms), ~1e-15 relative
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x); // reflection
  x -= 1;
  let a = LANCZOS[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

const EPS = 1e-15;
const TINY = 1e-300;

// P(a, x) by its power series; converges fast for x < a + 1
function lowerSeries(a: number, x: number): number {
  let term = 1 / a;
  let sum = term;
  for (let n = 1; n < 10000; n++) {
    term *= x / (a + n);
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * EPS) break;
  }
  return sum * Math.exp(-x + a * Math.log(x) - logGamma(a));
}

// Q(a, x) by its continued fraction (modified Lentz); converges fast for x >= a + 1
function upperFraction(a: number, x: number): number {
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) break;
  }
  return Math.exp(-x + a * Math.log(x) - logGamma(a)) * h;
}

/** Regularized upper incomplete gamma Q(a, x) = Γ(a, x) / Γ(a), for a > 0, x >= 0. */
export function gammaQ(a: number, x: number): number {
  if (!(a > 0) || !(x >= 0)) throw new Error(`gammaQ: needs a > 0 and x >= 0, got a ${a}, x ${x}`);
  if (x === 0) return 1;
  return x < a + 1 ? 1 - lowerSeries(a, x) : upperFraction(a, x);
}

// cells expecting < 5 are pooled in ascending order of expectation until the pool expects >= 5;
// a last pool that never gets there joins the previous cell
function mergeCells(observed: number[], expected: number[]): { observed: number[]; expected: number[] } {
  const order = expected.map((_, i) => i).sort((a, b) => expected[a] - expected[b]);
  const out = { observed: [] as number[], expected: [] as number[] };
  let poolO = 0;
  let poolE = 0;
  for (const i of order) {
    poolO += observed[i];
    poolE += expected[i];
    if (poolE < 5) continue;
    out.observed.push(poolO);
    out.expected.push(poolE);
    poolO = poolE = 0;
  }
  if (poolE > 0 && out.expected.length > 0) {
    out.observed[out.observed.length - 1] += poolO;
    out.expected[out.expected.length - 1] += poolE;
  } else if (poolE > 0) {
    out.observed.push(poolO);
    out.expected.push(poolE);
  }
  return out;
}

// Pearson's statistic of one multinomial table after merging cells expecting < 5; dof = merged cells - 1.
// statistic Infinity when a count lands where nothing was expected.
function pearson(observed: ArrayLike<number>, expected: ArrayLike<number>): { statistic: number; dof: number } {
  const obs: number[] = [];
  const exp: number[] = [];
  for (let i = 0; i < observed.length; i++) {
    if (expected[i] > 0) {
      obs.push(observed[i]);
      exp.push(expected[i]);
    } else if (observed[i] > 0) return { statistic: Infinity, dof: 0 }; // impossible outcome seen
  }
  const cells = mergeCells(obs, exp);
  let statistic = 0;
  cells.expected.forEach((e, i) => (statistic += (cells.observed[i] - e) ** 2 / e));
  return { statistic, dof: Math.max(cells.expected.length - 1, 0) };
}

function withPValue(statistic: number, dof: number): ChiSquare {
  if (statistic === Infinity) return { statistic, dof, pValue: 0 };
  if (dof < 1) return { statistic, dof, pValue: 1 };
  return { statistic, dof, pValue: gammaQ(dof / 2, statistic / 2) };
}

/** Pearson's chi-square test of counts against expected counts (same total), merging cells expecting < 5. */
export function chiSquareTest(observed: ArrayLike<number>, expected: ArrayLike<number>): ChiSquare {
  if (observed.length !== expected.length)
    throw new Error(`chiSquareTest: ${observed.length} observed cells but ${expected.length} expected`);
  const { statistic, dof } = pearson(observed, expected);
  return withPValue(statistic, dof);
}

export interface SequentialChiSquare extends ChiSquare {
  byPosition: ChiSquare[]; // [j]: the part of the test at the j-th token (0-based) alone
  contexts: number; // prefixes whose next-token table took part (dof >= 1)
}

/**
 * The chi-square test of sampled token sequences against a sequential law: for every prefix the samples
 * share, the tokens that follow it are tested against n * next(prefix), n the samples that went on past
 * it (a sequence may end early: at a stop token, say; its end is not tested). Given the prefixes, those
 * tables are independent multinomials, so their statistics and degrees of freedom add (the test of a
 * Markov chain's transition law). Under the law, a sequence's probability is the product of next() along
 * it, which is what the test checks, position by position, with the samples sharing a prefix pooled.
 */
export function sequentialChiSquare(sequences: ArrayLike<number>[], next: (prefix: number[]) => ArrayLike<number>): SequentialChiSquare {
  const tables = new Map<string, { prefix: number[]; counts: number[] }>();
  for (const seq of sequences) {
    for (let j = 0; j < seq.length; j++) {
      const prefix = Array.from({ length: j }, (_, i) => seq[i]);
      const key = prefix.join(",");
      let table = tables.get(key);
      if (table === undefined) tables.set(key, (table = { prefix, counts: [] }));
      table.counts[seq[j]] = (table.counts[seq[j]] ?? 0) + 1;
    }
  }
  const parts: { statistic: number; dof: number }[] = [];
  let contexts = 0;
  for (const { prefix, counts } of tables.values()) {
    const law = next(prefix);
    let mass = 0;
    for (let i = 0; i < law.length; i++) mass += law[i];
    if (counts.length > law.length) return { ...withPValue(Infinity, 0), byPosition: [], contexts }; // a token outside the vocabulary
    const n = counts.reduce((a, b) => a + (b ?? 0), 0);
    const observed = Array.from(law, (_, i) => counts[i] ?? 0);
    const part = pearson(observed, Array.from(law, (p) => (n * p) / mass));
    parts[prefix.length] ??= { statistic: 0, dof: 0 };
    parts[prefix.length].statistic += part.statistic;
    parts[prefix.length].dof += part.dof;
    if (part.dof > 0) contexts++;
  }
  const byPosition = Array.from(parts, (p) => withPValue(p?.statistic ?? 0, p?.dof ?? 0));
  const statistic = byPosition.reduce((a, p) => a + p.statistic, 0);
  const dof = byPosition.reduce((a, p) => a + p.dof, 0);
  return { ...withPValue(statistic, dof), byPosition, contexts };
}

/** Total variation distance between two distributions, each normalised by its own sum (counts work). */
export function totalVariation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`totalVariation: lengths ${a.length} and ${b.length} differ`);
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < a.length; i++) (sa += a[i]), (sb += b[i]);
  let tv = 0;
  for (let i = 0; i < a.length; i++) tv += Math.abs(a[i] / sa - b[i] / sb);
  return tv / 2;
}
