import { build, type Histogram } from 'hdr-histogram-js';
import type { PhaseStats } from '../lib/types.ts';

// Latency distributions in integer microseconds, through HdrHistogram
// (3 significant digits, 1 us .. 1 h), so percentiles match what other
// HdrHistogram tools would print from the same encoding.

export const newHistogram = (): Histogram =>
  build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });

const MAX_US = 3_600_000_000;

export function record(h: Histogram, us: number): void {
  if (!(us >= 0)) return; // NaN: phase not reached
  h.recordValue(Math.min(MAX_US, Math.max(1, Math.round(us))));
}

/** Values below this (us) are counted in an array and added to the histogram once per distinct value. */
const DIRECT_US = 1 << 16;

/**
 * A histogram fed a million values: HdrHistogram's recordValue costs ~1 us
 * each in JavaScript, so values under 65 ms are counted per integer
 * microsecond in a typed array and added once per distinct value
 * (recordValueWithCount), which gives the same histogram. Call histogram()
 * once every value is in.
 */
export class LatencyRecorder {
  private readonly h = newHistogram();
  private readonly counts = new Uint32Array(DIRECT_US);
  private pending = 0;

  record(us: number): void {
    if (!(us >= 0)) return; // NaN: phase not reached
    const v = Math.min(MAX_US, Math.max(1, Math.round(us)));
    if (v < DIRECT_US) {
      this.counts[v]++;
      this.pending++;
    } else this.h.recordValue(v);
  }

  histogram(): Histogram {
    if (this.pending > 0) {
      const c = this.counts;
      for (let v = 1; v < DIRECT_US; v++) if (c[v] !== 0) this.h.recordValueWithCount(v, c[v]);
      c.fill(0);
      this.pending = 0;
    }
    return this.h;
  }
}

export function phaseStats(h: Histogram): PhaseStats {
  if (h.totalCount === 0) return { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  // HdrHistogram reports the top of a value's bucket: never above the max seen
  const at = (p: number): number => Math.min(h.getValueAtPercentile(p), h.maxValue);
  return {
    count: h.totalCount,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    p999: at(99.9),
    max: h.maxValue,
    mean: Math.round(h.mean),
  };
}

/** The k-th smallest of v (quickselect, O(n); v is reordered): the element a sort would put at k. */
export function nth(v: Float64Array, k: number): number {
  let lo = 0;
  let hi = v.length - 1;
  while (lo < hi) {
    const pivot = v[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (v[i] < pivot) i++;
      while (v[j] > pivot) j--;
      if (i <= j) {
        const x = v[i];
        v[i] = v[j];
        v[j] = x;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return v[k];
  }
  return v[k];
}

/** The median of v (NaN when empty; v is reordered): as of the sorted values, the mean of the middle two for an even count. */
export function medianInPlace(v: Float64Array): number {
  const n = v.length;
  if (n === 0) return NaN;
  const h = n >> 1;
  const upper = nth(v, h);
  if (n % 2 === 1) return upper;
  // quickselect leaves the smaller half before h
  let lower = -Infinity;
  for (let k = 0; k < h; k++) if (v[k] > lower) lower = v[k];
  return (lower + upper) / 2;
}
