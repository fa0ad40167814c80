import type { TxnColumns } from './read-run.ts';

// Outlier windows: which probe samples overlap an outlier transaction.
//
// Sample row i covers the interval (t[i] - dt[i], t[i]] (a counter's delta is
// what happened since the previous sample). A transaction [start, end]
// overlaps the rows from the first with t >= start to the first with t >= end
// (the sample that covers the end; the last row if sampling ended earlier).
// One more row before that is included as well: a SYN is dropped when the
// transaction starts, and a sample boundary close to the start can put the
// drop's counters into the previous row.
//
// Mode 'edges' marks only the rows where a connect-time outlier leaves its
// traces: the row before the start, the row covering the start (a SYN or its
// ACK dropped) and the row covering the end (the retransmission that got
// through). With 1 s SYN timeouts and several connections in flight, 'span'
// windows can cover the whole workload and leave no normal rows to compare;
// 'edges' still can (see test/analysis-system-state.test.ts).
//
// Cost: two binary searches per outlier, then one pass over the rows
// (a difference array), so 1e6 outliers over 3e4 rows take milliseconds.

export interface OutlierWindows {
  /** Per probe row: 1 = inside some outlier's window, 0 = normal. */
  rows: Uint8Array;
  /** Per outlier (in the order given): first row of its window, -1 when no sample covers it. */
  first: Int32Array;
  /** Per outlier: last row of its window (inclusive), -1 when no sample covers it. */
  last: Int32Array;
  /** Rows marked 1. */
  marked: number;
  /** Outliers no probe sample covers (before the first sample's interval or after the last sample). */
  uncovered: number;
}

export type WindowMode = 'span' | 'edges';

export interface WindowOptions {
  /** 'span' (default): every row overlapping [start, end] plus the one before; 'edges': the rows at the start and at the end only. */
  mode?: WindowMode;
}

/** First index i with a[i] >= x (a sorted ascending); a.length if none. */
export function lowerBound(a: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface SampleTimes {
  rows: number;
  /** Sample times, ns since t0, ascending. */
  t: ArrayLike<number>;
  /** Interval each sample covers, ns. */
  dt: ArrayLike<number>;
}

/**
 * Mark the rows overlapping each window [startNs[k], endNs[k]] (ns since t0).
 * An end that is NaN (the transaction never finished) is taken as its start.
 */
export function markWindows(probes: SampleTimes, startNs: ArrayLike<number>, endNs: ArrayLike<number>, opts: WindowOptions = {}): OutlierWindows {
  const edges = opts.mode === 'edges';
  const { t, dt } = probes;
  const rows = Math.min(probes.rows, t.length);
  const n = startNs.length;
  const first = new Int32Array(n).fill(-1);
  const last = new Int32Array(n).fill(-1);
  const diff = new Int32Array(rows + 1);
  let uncovered = 0;
  const coverFrom = rows > 0 ? t[0] - Math.max(0, dt[0] || 0) : Infinity;
  for (let k = 0; k < n; k++) {
    const s = startNs[k];
    let e = endNs[k];
    if (!(e >= s)) e = s;
    if (rows === 0 || !Number.isFinite(s) || s > t[rows - 1] || e < coverFrom) {
      uncovered++;
      continue;
    }
    const atStart = lowerBound(t, s);
    const a = Math.max(0, atStart - 1);
    const b = Math.min(rows - 1, lowerBound(t, e));
    first[k] = a;
    last[k] = b;
    if (edges && b > atStart + 1) {
      diff[a]++;
      diff[atStart + 1]--;
      diff[b]++;
      diff[b + 1]--;
    } else {
      diff[a]++;
      diff[b + 1]--;
    }
  }
  const out = new Uint8Array(rows);
  let marked = 0;
  for (let i = 0, run = 0; i < rows; i++) {
    run += diff[i];
    if (run > 0) {
      out[i] = 1;
      marked++;
    }
  }
  return { rows: out, first, last, marked, uncovered };
}

/** Start and end (ns since t0) of the given transactions: actual start = intended + late; end = start + endUs. */
export function transactionSpans(
  txns: Pick<TxnColumns, 'intendedNs' | 'lateUs' | 'endUs'>,
  indices: ArrayLike<number>,
): { startNs: Float64Array; endNs: Float64Array } {
  const n = indices.length;
  const startNs = new Float64Array(n);
  const endNs = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const i = indices[k];
    const late = txns.lateUs[i];
    const s = txns.intendedNs[i] + (Number.isFinite(late) ? late * 1e3 : 0);
    startNs[k] = s;
    endNs[k] = s + txns.endUs[i] * 1e3;
  }
  return { startNs, endNs };
}

/** Indices of transactions whose latency from the intended start (lateUs + endUs) is at least thresholdUs. */
export function outlierIndices(txns: Pick<TxnColumns, 'n' | 'lateUs' | 'endUs'>, thresholdUs: number): Uint32Array {
  let count = 0;
  const total = (i: number): number => {
    const late = txns.lateUs[i];
    return (Number.isFinite(late) ? late : 0) + txns.endUs[i];
  };
  for (let i = 0; i < txns.n; i++) if (total(i) >= thresholdUs) count++;
  const out = new Uint32Array(count);
  for (let i = 0, k = 0; i < txns.n; i++) if (total(i) >= thresholdUs) out[k++] = i;
  return out;
}

/** The probe rows overlapping each outlier transaction (indices into txns), plus the row before each start. */
export function outlierWindows(
  probes: SampleTimes,
  txns: Pick<TxnColumns, 'intendedNs' | 'lateUs' | 'endUs'>,
  indices: ArrayLike<number>,
  opts: WindowOptions = {},
): OutlierWindows {
  const { startNs, endNs } = transactionSpans(txns, indices);
  return markWindows(probes, startNs, endNs, opts);
}

/** Row range of the k-th outlier's window (inclusive; in 'edges' mode the rows between are not marked), or null when no sample covers it. */
export function windowRange(w: OutlierWindows, k: number): { first: number; last: number } | null {
  return w.first[k] < 0 ? null : { first: w.first[k], last: w.last[k] };
}

/**
 * Rows that overlap the workload, [fromNs, toNs] (e.g. the first transaction's
 * start to the last one's end): compare outlier rows against normal rows of
 * the same load, not against the idle time before and after it.
 */
export function rowsWithin(probes: SampleTimes, fromNs: number, toNs: number): Uint8Array {
  const w = markWindows(probes, [fromNs], [toNs]);
  // markWindows adds the row before the start; drop it unless it overlaps.
  const first = w.first[0];
  if (first >= 0 && probes.t[first] < fromNs) w.rows[first] = 0;
  return w.rows;
}

/** The span of the transactions: first actual start to last end, ns since t0 (NaN when there are none). */
export function workloadSpan(txns: Pick<TxnColumns, 'n' | 'intendedNs' | 'lateUs' | 'endUs'>): { fromNs: number; toNs: number } {
  let fromNs = Infinity;
  let toNs = -Infinity;
  for (let i = 0; i < txns.n; i++) {
    const late = txns.lateUs[i];
    const s = txns.intendedNs[i] + (Number.isFinite(late) ? late * 1e3 : 0);
    const e = s + (Number.isFinite(txns.endUs[i]) ? txns.endUs[i] * 1e3 : 0);
    if (s < fromNs) fromNs = s;
    if (e > toNs) toNs = e;
  }
  return txns.n ? { fromNs, toNs } : { fromNs: NaN, toNs: NaN };
}

/** Fewer normal rows than this under 'span' windows: compare by 'edges'. */
const MIN_NORMAL_ROWS = 3;

/**
 * The one rule for which samples stand for the outliers when their state is
 * compared with the rest of the load (the system-state table and the causes
 * both use it): the rows of the workload (`consider`), and the outliers'
 * 'span' windows, or their 'edges' when spans leave fewer than 3 normal rows
 * to compare with. (The causes' evidence was validated on the scenarios with
 * this rule; switching to edges as soon as spans cover half the load made
 * CPU time around connect-time outliers outweigh the port-exhaustion
 * evidence of its own scenario.)
 */
export function comparisonWindows(
  probes: SampleTimes,
  txns: Pick<TxnColumns, 'n' | 'intendedNs' | 'lateUs' | 'endUs'>,
  outliers: ArrayLike<number>,
  /** workloadSpan(txns), when the caller has it (it is a pass over every transaction). */
  span: { fromNs: number; toNs: number } = workloadSpan(txns),
): { consider: Uint8Array; windows: OutlierWindows; mode: WindowMode } {
  const consider = rowsWithin(probes, span.fromNs, span.toNs);
  const windows = outlierWindows(probes, txns, outliers, { mode: 'span' });
  let normal = 0;
  for (let r = 0; r < probes.rows; r++) if (consider[r] === 1 && windows.rows[r] === 0) normal++;
  if (normal >= MIN_NORMAL_ROWS) return { consider, windows, mode: 'span' };
  return { consider, windows: outlierWindows(probes, txns, outliers, { mode: 'edges' }), mode: 'edges' };
}
