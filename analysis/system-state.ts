import type { ColumnKind } from '../probes/probe-files.ts';
import { prng } from '../lib/prng.ts';

// System state in outlier windows against normal windows, metric by metric.
//
// Values: counters as rates per second (delta / dt), gauges and fractions as
// sampled. A metric read every Nth sample comes spread over the rows it
// covers (probes/read.ts): its rate in a row is the rate over its read's
// span, and a gauge counts only in the rows where it was read. Per metric,
// the outlier rows and the normal rows are two samples:
//
// - effect: Cliff's delta, P(outlier > normal) - P(outlier < normal), in
//   [-1, 1] (equal to the rank-biserial correlation of the Mann-Whitney U).
//   Rank based, so it is not thrown by the heavy tails and the many zeros of
//   kernel counters, and comparable across metrics of any unit.
// - p: two-sided Mann-Whitney U (Wilcoxon rank-sum) test. Normal
//   approximation with tie correction and continuity correction when both
//   groups have at least `exactBelow` rows; otherwise a permutation test of
//   the rank sum (fixed seed, bounded iterations). Groups under `minGroup`
//   rows are not tested (pValue null, note says so).
// - multiple testing: Benjamini-Hochberg q-values over the tested metrics;
//   significant = q < alpha.
//
// The rank sums are computed by sorting each group once (typed-array sort)
// and merging, which is the same statistic as simple-statistics'
// wilcoxonRankSum (the tests check that) without an object per value:
// 400 columns x 3e4 rows take well under a second. A group of more than
// RANK_ROWS (32 768) rows, as a long run's 20 ms samples make, gives its rank
// statistics from that many rows at even strides (counts, sums and peaks
// from every row).
//
// Caveat stated in the report: probe rows are a time series; neighbouring
// rows are not independent, so p-values are optimistic. The effect size,
// the counts and the peaks are the evidence; p is a filter.

export interface SystemStateColumn {
  name: string;
  kind: ColumnKind;
  unit: string;
  fromRow?: number;
  toRow?: number | null;
}

/** What compareSystemState needs of ProbeData (a ProbeData is one). */
export interface SystemStateInput {
  rows: number;
  t: ArrayLike<number>;
  dt: ArrayLike<number>;
  columns: readonly SystemStateColumn[];
  get(name: string): ArrayLike<number> | null;
  /** When present (ProbeData), used instead of get() so no dense column is cached. */
  sparse?(name: string): { rows: ArrayLike<number>; values: ArrayLike<number>; fill?: number } | null;
}

export interface MetricEvidence {
  metric: string;
  /** Unit of the compared values: a counter's unit + '/s'. */
  unit: string;
  kind: ColumnKind;
  outlierMedian: number;
  normalMedian: number;
  outlierMean: number;
  normalMean: number;
  /** 90th percentile of each group. */
  outlierP90: number;
  normalP90: number;
  /** Cliff's delta (rank-biserial), -1..1: > 0 when the metric is higher in outlier windows. */
  effect: number;
  /** Two-sided p of the rank-sum test; null when a group was too small to test. */
  pValue: number | null;
  /** Benjamini-Hochberg adjusted p over all tested metrics; null when not tested. */
  qValue: number | null;
  /** qValue < alpha. */
  significant: boolean;
  test: 'normal-approx' | 'permutation' | 'none';
  /** Rows with a value in each group. */
  n: { outlier: number; normal: number };
  /** Rows whose value is non-zero, per group. */
  nonZero: { outlier: number; normal: number };
  /** Counters: events counted (sum of deltas) per group; null for gauges and fractions. */
  total: { outlier: number; normal: number } | null;
  /** Highest value in an outlier row (NaN tNs when the outlier group is empty). */
  peak: { tNs: number; value: number };
  /** The highest values in outlier rows, highest first (at most opts.topRows). */
  topRows: { tNs: number; value: number }[];
  /** Why this metric was not tested, or other remarks. */
  note?: string;
}

export interface SkippedMetric {
  metric: string;
  reason: 'no values' | 'constant' | 'excluded';
}

export interface SystemStateOptions {
  /** Significance level for the BH q-value (default 0.01). */
  alpha?: number;
  /** Fewer rows than this in a group: no test (default 3). */
  minGroup?: number;
  /** A group with fewer rows than this: permutation test instead of the normal approximation (default 20). */
  exactBelow?: number;
  /** Permutation iterations (default 9999). */
  permutations?: number;
  /** Seed of the permutation test (default 1). */
  seed?: number;
  /** How many top outlier rows to keep as evidence (default 5). */
  topRows?: number;
  /**
   * Rows to compare at all (1 = use): e.g. rowsWithin(workloadSpan) so the
   * idle time before and after the load does not count as normal. Default: all rows.
   */
  consider?: Uint8Array;
  /** Leave out metrics for which this returns true. */
  exclude?: (name: string) => boolean;
}

export interface SystemStateResult {
  /** Best first: significant by |effect|, then the rest by p. */
  metrics: MetricEvidence[];
  skipped: SkippedMetric[];
  rows: { outlier: number; normal: number };
}

/** Compare every metric in outlier rows (1 in outlierRows) against the others; best first. */
export function compareSystemState(probes: SystemStateInput, outlierRows: Uint8Array, opts: SystemStateOptions = {}): MetricEvidence[] {
  return analyzeSystemState(probes, outlierRows, opts).metrics;
}

/** compareSystemState, plus the metrics skipped and why. */
export function analyzeSystemState(probes: SystemStateInput, outlierRows: Uint8Array, opts: SystemStateOptions = {}): SystemStateResult {
  const alpha = opts.alpha ?? 0.01;
  const minGroup = Math.max(1, opts.minGroup ?? 3);
  const exactBelow = opts.exactBelow ?? 20;
  const permutations = Math.max(1, opts.permutations ?? 9999);
  const seed = opts.seed ?? 1;
  const topK = Math.max(1, opts.topRows ?? 5);
  const rows = Math.min(probes.rows, probes.t.length, outlierRows.length);
  const { t, dt } = probes;

  const consider = opts.consider;
  let nOut = 0;
  let nConsidered = 0;
  for (let i = 0; i < rows; i++) {
    if (consider && !consider[i]) continue;
    nConsidered++;
    if (outlierRows[i]) nOut++;
  }

  // per row: 0 not compared, 1 outlier, 2 normal
  const group = new Uint8Array(rows);
  for (let i = 0; i < rows; i++) if (!consider || consider[i]) group[i] = outlierRows[i] ? 1 : 2;
  const dtNs = Float64Array.from({ length: rows }, (_, i) => dt[i]);
  const stats = new Float64Array(10);
  const scratch = new Float64Array(rows);
  const xs = new Float64Array(rows);
  const xRow = new Uint32Array(rows);
  const ys = new Float64Array(rows);
  const ranks = new Float64Array(rows);
  const metrics: MetricEvidence[] = [];
  const skipped: SkippedMetric[] = [];

  probes.columns.forEach((col, ci) => {
    if (opts.exclude?.(col.name)) {
      skipped.push({ metric: col.name, reason: 'excluded' });
      return;
    }
    const v = dense(probes, col, rows, scratch);
    if (!v) {
      skipped.push({ metric: col.name, reason: 'no values' });
      return;
    }
    const counter = col.kind === 'counter';
    const top: { tNs: number; value: number }[] = [];
    const g = groupValues(v, group, dtNs, counter, xs, xRow, ys, stats);
    const [n1, n2, min, max, sum1, sum2, tot1, tot2, nz1, nz2] = g;
    // the highest values in outlier rows, in row order (ties: the earliest)
    for (let k = 0; k < n1; k++) {
      const x = xs[k];
      if (top.length < topK || x > top[top.length - 1].value) {
        let at = top.length;
        while (at > 0 && top[at - 1].value < x) at--;
        top.splice(at, 0, { tNs: t[xRow[k]], value: x });
        if (top.length > topK) top.pop();
      }
    }
    if (n1 + n2 === 0) {
      skipped.push({ metric: col.name, reason: 'no values' });
      return;
    }
    if (min === max) {
      skipped.push({ metric: col.name, reason: 'constant' });
      return;
    }
    // the rank statistics of a long run's groups on an evenly strided subset (see RANK_ROWS)
    const m1 = strided(xs, n1);
    const m2 = strided(ys, n2);
    const x = sortedWithZeros(xs, m1);
    const y = sortedWithZeros(ys, m2);
    const ev: MetricEvidence = {
      metric: col.name,
      unit: counter ? `${col.unit}/s` : col.unit,
      kind: col.kind,
      outlierMedian: quantileSorted(x, 0.5),
      normalMedian: quantileSorted(y, 0.5),
      outlierMean: n1 ? sum1 / n1 : NaN,
      normalMean: n2 ? sum2 / n2 : NaN,
      outlierP90: quantileSorted(x, 0.9),
      normalP90: quantileSorted(y, 0.9),
      effect: NaN,
      pValue: null,
      qValue: null,
      significant: false,
      test: 'none',
      n: { outlier: n1, normal: n2 },
      nonZero: { outlier: nz1, normal: nz2 },
      total: counter ? { outlier: tot1, normal: tot2 } : null,
      peak: top.length ? { ...top[0] } : { tNs: NaN, value: NaN },
      topRows: top,
    };
    if (n1 === 0 || n2 === 0) {
      ev.note = n1 === 0 ? 'no value in outlier windows: not tested' : 'no value in normal windows: not tested';
      metrics.push(ev);
      return;
    }
    const r = rankSum(x, y, ranks);
    const u1 = r.r1 - (m1 * (m1 + 1)) / 2;
    ev.effect = (2 * u1) / (m1 * m2) - 1;
    if (n1 < minGroup || n2 < minGroup) {
      ev.note = `too few rows to test (${n1} outlier, ${n2} normal; at least ${minGroup} each)`;
    } else if (Math.min(m1, m2) < exactBelow) {
      ev.pValue = permutationP(ranks, m1, m2, r.r1, permutations, (seed ^ Math.imul(ci + 1, 0x9e3779b1)) >>> 0);
      ev.test = 'permutation';
    } else {
      ev.pValue = normalApproxP(m1, m2, u1, r.ties);
      ev.test = 'normal-approx';
    }
    metrics.push(ev);
  });

  // Benjamini-Hochberg over the tested metrics.
  const tested = metrics.filter((m) => m.pValue !== null).sort((a, b) => b.pValue! - a.pValue!);
  let q = 1;
  tested.forEach((m, k) => {
    const rank = tested.length - k;
    q = Math.min(q, (m.pValue! * tested.length) / rank);
    m.qValue = Math.min(1, q);
    m.significant = m.qValue < alpha;
  });

  metrics.sort((a, b) => {
    if (a.significant !== b.significant) return a.significant ? -1 : 1;
    if (a.significant) {
      const d = Math.abs(b.effect) - Math.abs(a.effect);
      if (d !== 0) return d;
    }
    const pa = a.pValue ?? 2;
    const pb = b.pValue ?? 2;
    if (pa !== pb) return pa - pb;
    const e = (Math.abs(b.effect) || 0) - (Math.abs(a.effect) || 0);
    return e !== 0 ? e : a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : 0;
  });
  return { metrics, skipped, rows: { outlier: nOut, normal: nConsidered - nOut } };
}

/** A column's values over rows, without caching a dense copy when a sparse form is available. */
function dense(probes: SystemStateInput, col: SystemStateColumn, rows: number, scratch: Float64Array): ArrayLike<number> | null {
  if (probes.sparse && col.fromRow !== undefined) {
    const s = probes.sparse(col.name);
    if (!s) return null;
    const from = Math.min(rows, col.fromRow);
    const to = Math.min(rows, col.toRow ?? rows);
    scratch.fill(NaN, 0, from);
    // rows not listed: 0, or NaN for a gauge read every Nth sample (probes/read.ts)
    if (to > from) scratch.fill(s.fill ?? 0, from, to);
    scratch.fill(NaN, Math.max(from, to));
    for (let i = 0; i < s.rows.length; i++) {
      const r = s.rows[i];
      if (r < rows) scratch[r] = s.values[i];
    }
    return scratch;
  }
  return probes.get(col.name);
}

/**
 * A metric's values into the outlier group (xs, their rows in xRow) and the normal group (ys):
 * counters as rates per second, rows without a value (or a counter's row
 * without a span) left out. Returns, in `out`: n1, n2, min, max, sum1, sum2,
 * the counters' totals tot1, tot2 (raw deltas), and the non-zero counts nz1,
 * nz2. One loop of typed arrays, outside the per-column closure, so that V8
 * keeps it tight (it runs for every row of every column).
 */
function groupValues(
  v: ArrayLike<number>,
  group: Uint8Array,
  dtNs: Float64Array,
  counter: boolean,
  xs: Float64Array,
  xRow: Uint32Array,
  ys: Float64Array,
  out: Float64Array,
): Float64Array {
  let n1 = 0;
  let n2 = 0;
  let min = Infinity;
  let max = -Infinity;
  let sum1 = 0;
  let sum2 = 0;
  let tot1 = 0;
  let tot2 = 0;
  let nz1 = 0;
  let nz2 = 0;
  const rows = group.length;
  for (let i = 0; i < rows; i++) {
    const gi = group[i];
    if (gi === 0) continue;
    const raw = v[i];
    if (!Number.isFinite(raw)) continue;
    let x = raw;
    if (counter) {
      const d = dtNs[i];
      if (!(d > 0)) continue;
      x = (raw * 1e9) / d;
    }
    if (x < min) min = x;
    if (x > max) max = x;
    if (gi === 1) {
      xRow[n1] = i;
      xs[n1++] = x;
      sum1 += x;
      tot1 += raw;
      if (x !== 0) nz1++;
    } else {
      ys[n2++] = x;
      sum2 += x;
      tot2 += raw;
      if (x !== 0) nz2++;
    }
  }
  out[0] = n1;
  out[1] = n2;
  out[2] = min;
  out[3] = max;
  out[4] = sum1;
  out[5] = sum2;
  out[6] = tot1;
  out[7] = tot2;
  out[8] = nz1;
  out[9] = nz2;
  return out;
}

/**
 * Above this many rows in a group, the rank statistics (medians, p90,
 * effect, p) come from RANK_ROWS rows taken at even strides through the
 * group, in time order: 28 minutes of 20 ms samples are 84 000 rows a
 * metric, neighbouring rows are not independent anyway, and sorting every
 * row of 400 metrics was most of the analysis of a long run. Counts, sums,
 * means, totals and peaks use every row. Deterministic.
 */
export const RANK_ROWS = 32_768;

/** Keep RANK_ROWS values of a[0..n) at even strides, in place; returns how many are kept. */
function strided(a: Float64Array, n: number): number {
  if (n <= RANK_ROWS) return n;
  for (let k = 0; k < RANK_ROWS; k++) a[k] = a[Math.floor((k * n) / RANK_ROWS)];
  return RANK_ROWS;
}

/**
 * a[0..n) sorted ascending: kernel counters are 0 in most rows, so when most
 * values are 0 only the others are sorted and the zeros put back between the
 * negatives and the positives.
 */
function sortedWithZeros(a: Float64Array, n: number): Float64Array {
  const out = a.subarray(0, n);
  let nonZero = 0;
  for (let i = 0; i < n; i++) if (out[i] !== 0) nonZero++;
  if (nonZero * 2 > n) return out.sort();
  let k = 0;
  for (let i = 0; i < n; i++) if (out[i] !== 0) out[k++] = out[i];
  out.subarray(0, k).sort();
  let neg = 0;
  while (neg < k && out[neg] < 0) neg++;
  const zeros = n - k;
  // positives to the end, zeros between
  out.copyWithin(neg + zeros, neg, k);
  out.fill(0, neg, neg + zeros);
  return out;
}

function quantileSorted(a: Float64Array, p: number): number {
  const n = a.length;
  if (n === 0) return NaN;
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return a[lo] + (h - lo) * (a[hi] - a[lo]);
}

/**
 * Rank sum of x in the pooled sample (1-based ranks, ties averaged), the tie
 * term sum(t^3 - t), and the pooled ranks (x's first, then y's) into `ranks`.
 */
export function rankSum(x: Float64Array, y: Float64Array, ranks: Float64Array): { r1: number; ties: number } {
  const n1 = x.length;
  const n2 = y.length;
  let i = 0;
  let j = 0;
  let pos = 0;
  let r1 = 0;
  let ties = 0;
  while (i < n1 || j < n2) {
    const v = j >= n2 || (i < n1 && x[i] <= y[j]) ? x[i] : y[j];
    let a = 0;
    while (i + a < n1 && x[i + a] === v) a++;
    let b = 0;
    while (j + b < n2 && y[j + b] === v) b++;
    const tcount = a + b;
    const avg = pos + (tcount + 1) / 2;
    for (let k = 0; k < a; k++) ranks[i + k] = avg;
    for (let k = 0; k < b; k++) ranks[n1 + j + k] = avg;
    r1 += a * avg;
    if (tcount > 1) ties += tcount * tcount * tcount - tcount;
    i += a;
    j += b;
    pos += tcount;
  }
  return { r1, ties };
}

function normalApproxP(n1: number, n2: number, u1: number, ties: number): number {
  const N = n1 + n2;
  const mean = (n1 * n2) / 2;
  const variance = ((n1 * n2) / 12) * (N + 1 - ties / (N * (N - 1)));
  if (!(variance > 0)) return 1;
  const d = Math.abs(u1 - mean);
  const z = Math.max(0, d - 0.5) / Math.sqrt(variance);
  return Math.min(1, erfc(z / Math.SQRT2));
}

/** Two-sided permutation p of the rank sum of the first n1 of ranks (n1 + n2 values). */
function permutationP(ranks: Float64Array, n1: number, n2: number, r1: number, iterations: number, seed: number): number {
  const N = n1 + n2;
  const expected = (n1 * (N + 1)) / 2;
  const observed = Math.abs(r1 - expected) - 1e-9;
  // Draw the smaller group: a partial Fisher-Yates over a working copy.
  const m = Math.min(n1, n2);
  const expectedM = (m * (N + 1)) / 2;
  const pool = Float64Array.from(ranks.subarray(0, N));
  const rand = prng(seed);
  let hits = 0;
  for (let it = 0; it < iterations; it++) {
    let s = 0;
    for (let k = 0; k < m; k++) {
      const pick = k + Math.floor(rand() * (N - k));
      const tmp = pool[k];
      pool[k] = pool[pick];
      pool[pick] = tmp;
      s += pool[k];
    }
    // |R_small - E| equals |R_x - E_x| for either group (the total is fixed).
    if (Math.abs(s - expectedM) >= observed) hits++;
  }
  return (hits + 1) / (iterations + 1);
}

/** Complementary error function (Numerical Recipes erfcc; relative error < 1.2e-7, accurate in the far tail). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}
