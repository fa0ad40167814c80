// Statistical building blocks of the comparison (analysis/compare/variants.ts):
// latency bins, binomial and multinomial draws for resampling a binned run,
// Student's t quantiles for few repetitions, and the p-value and interval
// of a bootstrap distribution. Pure functions; randomness comes in as a
// seeded uniform source (lib/prng.ts), so a comparison is reproducible.

/** Relative width of a latency bin: 0.5 %, so a percentile read from bins is within 0.25 % of the exact one. */
export const BIN_GROWTH = 1.005;
const LOG_GROWTH = Math.log(BIN_GROWTH);
/** Bins cover 1 us .. 1 h. */
export const NBINS = Math.ceil(Math.log(3_600_000_000) / LOG_GROWTH) + 1;

/** Bin of a latency in microseconds (values under 1 us share bin 0). */
export function binOf(us: number): number {
  if (!(us > 1)) return 0;
  return Math.min(NBINS - 1, Math.floor(Math.log(us) / LOG_GROWTH));
}

/** The value a bin stands for: its geometric middle, us. */
export const binValue = (b: number): number => Math.exp((b + 0.5) * LOG_GROWTH);

/** A standard normal deviate (Box-Muller) from a uniform source. */
export function normal(rand: () => number): number {
  const u = 1 - rand(); // (0, 1]
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/**
 * A Binomial(n, p) draw. Exact inversion where the smaller tail's mean is
 * under 30 (where outliers live: rare categories must stay exact), the
 * normal approximation elsewhere (the bulk, where it is accurate).
 */
export function binomial(n: number, p: number, rand: () => number): number {
  if (n <= 0 || p <= 0) return 0;
  if (p >= 1) return n;
  if (p > 0.5) return n - binomial(n, 1 - p, rand);
  if (n * p < 30) {
    // inversion by the pmf recurrence (Kachitvichyanukul & Schmeiser's BINV)
    const q = 1 - p;
    const s = p / q;
    const a = (n + 1) * s;
    let r = Math.exp(n * Math.log(q));
    let u = rand();
    let x = 0;
    while (u > r) {
      u -= r;
      x++;
      if (x > n) return n;
      r *= a / x - s;
      if (r <= 0) return x;
    }
    return x;
  }
  const x = Math.round(n * p + Math.sqrt(n * p * (1 - p)) * normal(rand));
  return Math.max(0, Math.min(n, x));
}

/**
 * Draw a multinomial resample of `total` items over categories with the
 * given counts (sum = total) and add it into out[keys[i]]: the same as
 * drawing `total` items with replacement, in O(categories).
 */
export function addMultinomial(keys: Uint32Array, counts: Float64Array, total: number, out: Float64Array, rand: () => number): void {
  let left = total;
  let mass = total;
  for (let i = 0; i < keys.length && left > 0; i++) {
    const c = counts[i];
    const x = i === keys.length - 1 || c >= mass ? left : binomial(left, c / mass, rand);
    out[keys[i]] += x;
    left -= x;
    mass -= c;
  }
}

/**
 * Two-sided P(|T| < t) for Student's t with integer df (Abramowitz & Stegun
 * 26.7.3 and 26.7.4, exact finite series).
 */
export function studentTAbsCdf(t: number, df: number): number {
  const th = Math.atan(Math.abs(t) / Math.sqrt(df));
  const c2 = Math.cos(th) ** 2;
  const s = Math.sin(th);
  if (df % 2 === 1) {
    let sum = 0;
    if (df > 1) {
      let term = Math.cos(th);
      sum = term;
      for (let k = 3; k <= df - 2; k += 2) {
        term *= (c2 * (k - 1)) / k;
        sum += term;
      }
    }
    return (2 / Math.PI) * (th + s * sum);
  }
  let term = 1;
  let sum = 1;
  for (let k = 2; k <= df - 2; k += 2) {
    term *= (c2 * (k - 1)) / k;
    sum += term;
  }
  return s * sum;
}

/** The two-sided critical value t such that P(|T| < t) = level (bisection). */
export function studentTCritical(level: number, df: number): number {
  let lo = 0;
  let hi = 1000;
  for (let i = 0; i < 80; i++) {
    const mid = (lo + hi) / 2;
    if (studentTAbsCdf(mid, df) < level) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Sample variance of bootstrap replicates. */
export function varianceOf(reps: Float64Array): number {
  const B = reps.length;
  if (B < 2) return 0;
  let mean = 0;
  for (let i = 0; i < B; i++) mean += reps[i];
  mean /= B;
  let v = 0;
  for (let i = 0; i < B; i++) v += (reps[i] - mean) ** 2;
  return v / (B - 1);
}

/**
 * The variance of a variant's statistic over repetitions and transactions,
 * from two bootstraps of its n runs: `hier` resampling runs and then
 * transactions within them, `within` resampling only transactions (each
 * run once). The hierarchical bootstrap counts the transactions' noise
 * twice (once inside each run's deviation, once by resampling within it)
 * and sees only (n - 1) / n of the runs' spread; for a mean, E[hier] =
 * (n - 1) / n x true + within, so true = (hier - within) x n / (n - 1),
 * never less than the transactions' own noise. With one run: within only.
 */
export function twoStageVariance(hier: number, within: number, n: number): number {
  if (n < 2) return within;
  return Math.max(within, ((hier - within) * n) / (n - 1));
}

/**
 * 95 % interval and two-sided p-value of an observed difference with
 * standard error `se`, on Student's t with df degrees of freedom (at least
 * 1), so few repetitions give wide intervals rather than false alarms.
 * p = 1 when the difference and its error are both zero; `pFloor` when the
 * error is zero and the difference is not.
 */
export function tInterval(observed: number, se: number, df: number, pFloor: number): { ci: [number, number]; pValue: number } {
  const d = Math.max(1, df);
  const t = studentTCritical(0.95, d);
  const pValue = se > 0 ? Math.max(pFloor, 1 - studentTAbsCdf(observed / se, d)) : observed === 0 ? 1 : pFloor;
  return { ci: [observed - t * se, observed + t * se], pValue };
}

/** Holm's step-down adjustment of a family of p-values (same order out as in). */
export function holm(p: number[]): number[] {
  const order = p.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(p.length);
  let running = 0;
  order.forEach(([v, i], rank) => {
    running = Math.max(running, Math.min(1, v * (p.length - rank)));
    out[i] = running;
  });
  return out;
}
