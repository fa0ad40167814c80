import type { TimerConstant } from './timers.ts';
import { formatUs } from '../lib/format.ts';

// Cluster outlier latencies into modes and name each against the kernel timer
// constants it matches. Works on the excess latency (latency minus the normal
// median) on a log scale, since the timers are spread over three decades
// (40 ms .. 67 s).
//
// 1. Sort (O(n log n)); split where consecutive excesses are more than a
//    factor `gapFactor` apart (single linkage on log excess).
// 2. Within a piece that is still wide, split at the valleys of a smoothed
//    log-histogram (a 1-D kernel density) between well-separated peaks: the
//    1, 2, 3, 4, 5 s SYN retransmission clusters of a new kernel are only
//    a factor 1.25 apart and jitter can close the gap between them.
// 3. Pieces too small to stand alone are not split off; at most `maxModes`
//    modes (the closest neighbours merge).
// Deterministic: no sampling, no randomness.

export interface Mode {
  count: number;
  /** Of all outliers given. */
  share: number;
  minUs: number;
  medianUs: number;
  maxUs: number;
  /** Median latency minus the baseline (the normal median), us. */
  medianExcessUs: number;
  /** The timer this mode is, or null. */
  match: TimerConstant | null;
  /** Other timers whose window also holds the mode's median (e.g. an RTO at the same time). */
  alsoMatches: TimerConstant[];
  label: string;
}

export interface ModeOptions {
  /** Split where consecutive excesses differ by more than this factor (default 1.15). */
  gapFactor?: number;
  /** At most this many modes (default 12). */
  maxModes?: number;
  /** Relative match tolerance (default 0.10). */
  tolerance?: number;
  /** Absolute match tolerance, us (default 15 000). */
  toleranceUs?: number;
}

const BIN = Math.log(1.02); // log-histogram bin width: 2 %
const KERNEL = [1, 2, 3, 2, 1];
const KSUM = 9;

/** The tolerance window of a timer: ±max(tolerance × its value, toleranceUs). */
export const matchTolerance = (t: TimerConstant, rel = 0.1, absUs = 15_000): number => Math.max(rel * t.us, absUs);

export function findModes(outlierUs: Float64Array | number[], baselineUs: number, timers: TimerConstant[], opts: ModeOptions = {}): Mode[] {
  const gapFactor = opts.gapFactor ?? 1.15;
  const maxModes = Math.max(1, opts.maxModes ?? 12);
  const rel = opts.tolerance ?? 0.1;
  const absTol = opts.toleranceUs ?? 15_000;
  const base = Number.isFinite(baselineUs) ? baselineUs : 0;

  let m = 0;
  const v = new Float64Array(outlierUs.length);
  for (let i = 0; i < outlierUs.length; i++) if (Number.isFinite(outlierUs[i])) v[m++] = outlierUs[i];
  if (m === 0) return [];
  const s = v.subarray(0, m).sort();
  // Log excess, floored at 1 us so a value at or under the baseline stays finite.
  const lx = (i: number): number => Math.log(Math.max(1, s[i] - base));

  // 1. Gap split.
  const logGap = Math.log(gapFactor);
  const cuts: number[] = []; // index where a new piece starts
  for (let i = 1; i < m; i++) if (lx(i) - lx(i - 1) > logGap) cuts.push(i);

  // 2. Valley split inside each piece.
  const starts = [0, ...cuts];
  const ends = [...cuts, m];
  const allCuts: number[] = [];
  for (let p = 0; p < starts.length; p++) {
    if (p > 0) allCuts.push(starts[p]);
    for (const c of valleyCuts(s, starts[p], ends[p], lx)) allCuts.push(c);
  }

  // Pieces as [start, end).
  let pieces: [number, number][] = [];
  let at = 0;
  for (const c of allCuts) {
    pieces.push([at, c]);
    at = c;
  }
  pieces.push([at, m]);

  // 3. At most maxModes: merge the closest neighbours (smallest log gap).
  while (pieces.length > maxModes) {
    let best = 1;
    let bestGap = Infinity;
    for (let k = 1; k < pieces.length; k++) {
      const g = lx(pieces[k][0]) - lx(pieces[k - 1][1] - 1);
      if (g < bestGap) {
        bestGap = g;
        best = k;
      }
    }
    pieces = [...pieces.slice(0, best - 1), [pieces[best - 1][0], pieces[best][1]], ...pieces.slice(best + 1)];
  }

  return pieces.map(([a, b]) => describe(s, a, b, m, base, timers, rel, absTol));
}

/** Split positions (absolute indices) at significant valleys of the log-density of s[a..b). */
function valleyCuts(s: Float64Array, a: number, b: number, lx: (i: number) => number): number[] {
  const n = b - a;
  if (n < 20) return [];
  const lo = lx(a);
  const hi = lx(b - 1);
  if (hi - lo < Math.log(1.2)) return [];
  const B = Math.floor((hi - lo) / BIN) + 1;
  const h = new Float64Array(B);
  for (let i = a; i < b; i++) h[Math.min(B - 1, Math.floor((lx(i) - lo) / BIN))]++;
  const d = new Float64Array(B);
  const r = (KERNEL.length - 1) / 2;
  for (let k = 0; k < B; k++) {
    let acc = 0;
    for (let j = -r; j <= r; j++) if (k + j >= 0 && k + j < B) acc += h[k + j] * KERNEL[j + r];
    d[k] = acc / KSUM;
  }
  const minPeak = Math.max(1, 0.005 * n); // about three points in neighbouring bins, at least
  const peaks: number[] = [];
  for (let k = 0; k < B; k++) {
    const left = k > 0 ? d[k - 1] : 0;
    const right = k < B - 1 ? d[k + 1] : 0;
    if (d[k] > left && d[k] >= right && d[k] >= minPeak) peaks.push(k);
  }
  const valleys: number[] = [];
  let cur = peaks[0];
  for (let q = 1; q < peaks.length; q++) {
    const p = peaks[q];
    let vb = cur + 1;
    for (let k = cur + 1; k < p; k++) if (d[k] < d[vb]) vb = k;
    const low = Math.min(d[cur], d[p]);
    // Deep (under half the lower peak) and beyond noise: a smoothed count
    // has a Poisson sd of about 0.5 sqrt(count), so ask for about 4 sd.
    if (d[vb] < 0.5 * low && low - d[vb] > 2 * Math.sqrt(low + d[vb])) {
      valleys.push(vb);
      cur = p;
    } else if (d[p] > d[cur]) cur = p;
  }
  // Valley bins to indices; keep only splits leaving a piece big enough on each side.
  const minPiece = Math.max(5, Math.ceil(0.01 * n));
  const out: number[] = [];
  let last = a;
  for (const vb of valleys) {
    const edge = lo + (vb + 0.5) * BIN;
    let l = a;
    let r2 = b;
    while (l < r2) {
      const mid = (l + r2) >>> 1;
      if (lx(mid) < edge) l = mid + 1;
      else r2 = mid;
    }
    if (l - last >= minPiece && b - l >= minPiece) {
      out.push(l);
      last = l;
    }
  }
  return out;
}

const quantile = (s: Float64Array, a: number, b: number, q: number): number => {
  const pos = a + (b - a - 1) * q;
  const i = Math.floor(pos);
  return i + 1 < b ? s[i] + (s[i + 1] - s[i]) * (pos - i) : s[i];
};

function describe(s: Float64Array, a: number, b: number, total: number, base: number, timers: TimerConstant[], rel: number, absTol: number): Mode {
  const count = b - a;
  const medianUs = quantile(s, a, b, 0.5);
  const ex = medianUs - base;
  const q1 = quantile(s, a, b, 0.25) - base;
  const q3 = quantile(s, a, b, 0.75) - base;
  const within: TimerConstant[] = [];
  for (const t of timers) if (Math.abs(ex - t.us) <= matchTolerance(t, rel, absTol)) within.push(t);
  // Closest first; ties keep the catalogue order (SYN before SYN-ACK before RTO).
  const ranked = within
    .map((t, i) => ({ t, i, d: Math.abs(ex - t.us) }))
    .sort((x, y) => x.d - y.d || x.i - y.i)
    .map((x) => x.t);
  let match: TimerConstant | null = null;
  let label: string;
  const range = `${formatUs(s[a])}–${formatUs(s[b - 1])}`;
  if (ranked.length > 0) {
    const t = ranked[0];
    const tol = matchTolerance(t, rel, absTol);
    // The middle half of the mode must sit in the window too, or a broad
    // spread whose median happens to fall near a timer would be named for it.
    if (q1 >= t.us - tol && q3 <= t.us + tol) {
      match = t;
      label = `${t.label}: median excess ${formatUs(ex)}`;
    } else {
      label = `no kernel timer: spread ${range} too wide for ${t.label} (median excess ${formatUs(ex)})`;
    }
  } else {
    label = `no kernel timer matches (median excess ${formatUs(ex)}, ${range})`;
  }
  return {
    count,
    share: count / total,
    minUs: s[a],
    medianUs,
    maxUs: s[b - 1],
    medianExcessUs: ex,
    match,
    alsoMatches: match === null ? [] : ranked.slice(1),
    label,
  };
}
