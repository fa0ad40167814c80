import { TXN_FLAG_REUSED } from '../lib/records.ts';
import type { TxnColumns } from './read-run.ts';
import { medianInPlace } from './latency.ts';

// Which phase of an outlier holds its excess time. Phases of transaction i:
//   late start  lateUs (open loop: actual start behind the schedule)
//   connect     connectUs (none on a reused keepalive connection)
//   exchange k  exchangeUs[k-1] minus the previous phase's end
//   close       endUs minus the last exchange
// A transaction that failed part way has no time for the phases it never
// reached; the phase it was stuck in runs until its end (endUs). Each phase
// is compared with its median over normal transactions; the phase with the
// largest excess is the dominant one. Memory: a few arrays per phase of at
// most MEDIAN_SAMPLE numbers for the normal medians, and O(outliers).

/** Normal medians come from an evenly spaced sample of at most this many normal transactions. */
export const MEDIAN_SAMPLE = 200_000;

export interface PhaseMedians {
  late: number;
  connect: number;
  exchanges: number[];
  close: number;
}

export interface DominantPhase {
  phase: string;
  /** The phase's duration minus its normal median, us. */
  excessUs: number;
  /** The transaction never finished this phase (failed while in it). */
  unfinished: boolean;
}

export interface PhaseRow {
  phase: string;
  /** Outliers whose dominant phase this is. */
  outliers: number;
  share: number;
  /** Median excess in this phase over the outliers it dominates, us (0 when none). */
  medianExcessUs: number;
  /** Median duration of the phase in normal transactions, us (NaN: no normal transaction has it). */
  normalMedianUs: number;
  /** Of `outliers`, those that never finished this phase. */
  unfinished: number;
}

export interface PhaseBreakdown {
  phases: PhaseRow[];
  /** The phase that dominates most outliers (null: no outliers). */
  dominant: string | null;
}

/** Phase names in order: late start, connect, exchange 1..E, close. */
export function phaseNames(exchanges: number): string[] {
  return ['late start', 'connect', ...Array.from({ length: exchanges }, (_, k) => `exchange ${k + 1}`), 'close'];
}

let scratch = new Float64Array(8);

/**
 * Fill out[0 .. E+2] with the phase durations of transaction i (NaN: the
 * phase does not apply or was never reached). Returns the index of the
 * phase the transaction was stuck in, or -1 when it reached its end.
 */
export function phaseDurations(c: TxnColumns, i: number, out: Float64Array): number {
  const E = c.exchanges;
  out.fill(NaN, 0, E + 3);
  out[0] = c.lateUs[i];
  const end = c.endUs[i];
  const reused = (c.flags[i] & TXN_FLAG_REUSED) !== 0;
  let prev = 0;
  if (!reused) {
    const cu = c.connectUs[i];
    if (Number.isNaN(cu)) {
      out[1] = end;
      return 1;
    }
    out[1] = cu;
    prev = cu;
  } else if (!Number.isNaN(c.connectUs[i])) prev = c.connectUs[i];
  for (let e = 0; e < E; e++) {
    const x = c.exchangeUs[e][i];
    if (Number.isNaN(x)) {
      out[2 + e] = end - prev;
      return 2 + e;
    }
    out[2 + e] = x - prev;
    prev = x;
  }
  out[E + 2] = end - prev;
  return Number.isNaN(end) ? E + 2 : -1;
}

/** Per-phase medians over the normal transactions (a deterministic sample of at most MEDIAN_SAMPLE). */
export function normalPhaseMedians(c: TxnColumns, normal: Uint32Array | number[]): PhaseMedians {
  const E = c.exchanges;
  const P = E + 3;
  const len = normal.length;
  const take = Math.min(len, MEDIAN_SAMPLE);
  const cols = Array.from({ length: P }, () => new Float64Array(take));
  const fill = new Uint32Array(P);
  const d = new Float64Array(P);
  for (let j = 0; j < take; j++) {
    const i = normal[take === len ? j : Math.floor((j * len) / take)];
    phaseDurations(c, i, d);
    for (let p = 0; p < P; p++) if (Number.isFinite(d[p])) cols[p][fill[p]++] = d[p];
  }
  const med = cols.map((col, p) => medianInPlace(col.subarray(0, fill[p])));
  return { late: med[0], connect: med[1], exchanges: med.slice(2, 2 + E), close: med[E + 2] };
}

function median(sorted: Float64Array | number[]): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = n >> 1;
  return n % 2 === 1 ? sorted[h] : (sorted[h - 1] + sorted[h]) / 2;
}

/** The normal median of phase p (in phaseDurations' order) of a run with E exchanges. */
export function phaseMedian(m: PhaseMedians, p: number, E: number): number {
  return p === 0 ? m.late : p === 1 ? m.connect : p === E + 2 ? m.close : m.exchanges[p - 2];
}

/** The phase of transaction i holding the most time beyond its normal median. */
export function dominantPhase(c: TxnColumns, i: number, normalMedians: PhaseMedians): DominantPhase {
  const E = c.exchanges;
  if (scratch.length < E + 3) scratch = new Float64Array(E + 3);
  const stuck = phaseDurations(c, i, scratch);
  let best = -1;
  let bestEx = -Infinity;
  for (let p = 0; p < E + 3; p++) {
    const dur = scratch[p];
    if (!Number.isFinite(dur)) continue;
    const m = phaseMedian(normalMedians, p, E);
    const ex = dur - (Number.isFinite(m) ? m : 0);
    if (ex > bestEx) {
      bestEx = ex;
      best = p;
    }
  }
  if (best < 0) {
    // Nothing measurable (a record with no times): blame the stuck phase if any.
    const p = stuck >= 0 ? stuck : 1;
    return { phase: phaseNames(E)[p], excessUs: NaN, unfinished: stuck >= 0 };
  }
  return { phase: phaseNames(E)[best], excessUs: bestEx, unfinished: best === stuck };
}

/** Which phase holds the excess time of the outliers, against the normal transactions. */
export function phaseBreakdown(
  c: TxnColumns,
  outliers: Uint32Array | number[],
  normal: Uint32Array | number[],
  /** normalPhaseMedians(c, normal), when the caller has them already. */
  medians?: PhaseMedians,
): PhaseBreakdown {
  const E = c.exchanges;
  const names = phaseNames(E);
  const med = medians ?? normalPhaseMedians(c, normal);
  const excess: number[][] = names.map(() => []);
  const unfinished = new Uint32Array(names.length);
  const index = new Map(names.map((n, k) => [n, k]));
  for (let j = 0; j < outliers.length; j++) {
    const d = dominantPhase(c, outliers[j], med);
    const k = index.get(d.phase) as number;
    excess[k].push(d.excessUs);
    if (d.unfinished) unfinished[k]++;
  }
  const n = outliers.length;
  const phases: PhaseRow[] = names.map((phase, k) => {
    const ex = excess[k].filter(Number.isFinite).sort((a, b) => a - b);
    return {
      phase,
      outliers: excess[k].length,
      share: n > 0 ? excess[k].length / n : 0,
      medianExcessUs: ex.length > 0 ? median(ex) : 0,
      normalMedianUs: phaseMedian(med, k, E),
      unfinished: unfinished[k],
    };
  });
  let dominant: string | null = null;
  let most = 0;
  for (const r of phases)
    if (r.outliers > most) {
      most = r.outliers;
      dominant = r.phase;
    }
  return { phases, dominant };
}
